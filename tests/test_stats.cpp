// stats: painting and power spectra against independent truths (analytic fields, brute-force DFT
// and mode counts, direct kernel sums, a Zel'dovich mode, Poisson shot noise).
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <cmath>
#include <complex>
#include <functional>
#include <limits>
#include <map>
#include <numbers>

#include "error_of.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/grid.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/stats/paint.hpp"
#include "fieldflow/stats/power_spectrum.hpp"

using namespace ff;
using std::numbers::pi;

namespace {

Grid white_noise(int n, double box, uint64_t seed) {
  Grid g(n, box);
  CounterRng rng(seed);
  for (size_t i = 0; i < g.size(); i += 2) {
    const auto [a, b] = rng.normal_pair(i / 2);
    g.values[i] = a;
    if (i + 1 < g.size()) g.values[i + 1] = b;
  }
  return g;
}

// Gaussian random field with power spectrum p(k): white noise convolved with the filter
// sqrt(p(k) N^3 / L^3) (so that <(L^3/N^6) |delta_k|^2> = p(k)), built with the bare FFT.
Grid gaussian_field(int n, double box, uint64_t seed, const std::function<double(double)>& p) {
  Grid g = white_noise(n, box, seed);
  RealFft3d<double> fft(n);
  std::copy(g.values.begin(), g.values.end(), fft.real());
  fft.forward();
  const int nc = n / 2 + 1;
  const double kf = 2 * pi / box;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c < nc; ++c) {
        const double kx = fft_wavenumber(a, n), ky = fft_wavenumber(b, n), kz = c;
        const double k = kf * std::sqrt(kx * kx + ky * ky + kz * kz);
        const double filter = k == 0 ? 0.0 : std::sqrt(p(k) * n * n * n / (box * box * box));
        fft.complex()[(size_t(a) * n + b) * nc + c] *= filter;
      }
  fft.inverse();
  for (size_t i = 0; i < g.size(); ++i) g.values[i] = fft.real()[i] / (double(n) * n * n);
  return g;
}

// Brute force over the full complex cube: calls f(nx, ny, nz) for every mode with 0 < |n| <= N/2.
void for_each_mode(int n, const std::function<void(int, int, int)>& f) {
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c < n; ++c) {
        const int x = fft_wavenumber(a, n), y = fft_wavenumber(b, n), z = fft_wavenumber(c, n);
        const int s = x * x + y * y + z * z;
        if (s > 0 && 4 * s <= n * n) f(x, y, z);
      }
}

// The documented binning, written independently: bin i holds i <= |n| / W < i + 1, except that
// the last bin is closed at k_N: |n| = N/2 on an edge (W divides N/2) joins the bin below.
int brute_bin(int x, int y, int z, double width, int n) {
  const int s = x * x + y * y + z * z;
  const double ratio = std::sqrt(double(s)) / width;
  const int bin = int(std::floor(ratio + 1e-9));
  const bool on_nyquist_edge = 4 * s == n * n && std::abs(ratio - std::round(ratio)) < 1e-9;
  return on_nyquist_edge ? bin - 1 : bin;
}

double sinc(double x) {
  return x == 0 ? 1.0 : std::sin(x) / x;
}

std::vector<std::array<double, 3>> uniform_particles(size_t count, double lo, double hi,
                                                     uint64_t seed) {
  CounterRng rng(seed);
  std::vector<std::array<double, 3>> pos(count);
  for (size_t i = 0; i < count; ++i) {
    const auto [u, v] = rng.uniform_pair(2 * i);
    const double w = rng.uniform(2 * i + 1);
    pos[i] = {lo + (hi - lo) * u, lo + (hi - lo) * v, lo + (hi - lo) * w};
  }
  return pos;
}

}  // namespace

// ---- power spectrum ----

TEST(PowerSpectrum, GaussianFieldRecoversPowerLawWithin3SigmaPerBin) {
  const int n = 64;
  const double box = 256.0;
  auto p = [](double k) { return 2000.0 * std::pow(k / 0.1, -1.5); };
  const Grid field = gaussian_field(n, box, 42, p);
  const PowerSpectrum got = measure_power_spectrum(field);
  const GridF field_f = [&] {
    GridF f(n, box);
    for (size_t i = 0; i < field.size(); ++i) f.values[i] = float(field.values[i]);
    return f;
  }();
  const PowerSpectrum got_f = measure_power_spectrum(field_f);
  ASSERT_EQ(got.k.size(), got_f.k.size());

  // Expected per bin: the mean of p(|k|) over the bin's modes, counted by brute force.
  const double kf = 2 * pi / box;
  std::vector<double> sum_p(n, 0.0), count(n, 0.0);
  for_each_mode(n, [&](int x, int y, int z) {
    const int bin = brute_bin(x, y, z, 1.0, n);
    sum_p[bin] += p(kf * std::sqrt(double(x * x + y * y + z * z)));
    count[bin] += 1;
  });
  const double k_half_nyquist = 0.5 * pi * n / box;
  int checked = 0;
  for (size_t i = 0; i < got.k.size(); ++i) {
    if (got.k[i] >= k_half_nyquist) break;
    const int bin = int(std::floor(got.k[i] / kf));
    ASSERT_EQ(got.nmodes[i], count[bin]);
    const double expected = sum_p[bin] / count[bin];
    const double sigma = expected * std::sqrt(2.0 / got.nmodes[i]);
    EXPECT_NEAR(got.pk[i], expected, 3 * sigma) << "bin " << bin << ", k = " << got.k[i];
    EXPECT_NEAR(got_f.pk[i], got.pk[i], 1e-5 * got.pk[i]);
    ++checked;
  }
  EXPECT_GE(checked, 14);
}

TEST(PowerSpectrum, PlaneWaveLandsInItsBinWithHandComputedPower) {
  // delta = A cos(k.x) has |delta_k|^2 = (A N^3 / 2)^2 at +k and -k and nothing elsewhere, so
  // its bin holds P = 2 (L^3 / N^6) (A N^3 / 2)^2 / nmodes = L^3 A^2 / (2 nmodes).
  const int n = 32;
  const double box = 100.0, amplitude = 0.3;
  const int mx = 3, my = -2, mz = 1;  // |n| = sqrt(14) = 3.74: bin 3
  Grid g(n, box);
  GridF gf(n, box);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k) {
        g(i, j, k) = amplitude * std::cos(2 * pi * (mx * i + my * j + mz * k) / n);
        gf(i, j, k) = float(g(i, j, k));
      }
  double nmodes3 = 0, length3 = 0;
  for_each_mode(n, [&](int x, int y, int z) {
    if (brute_bin(x, y, z, 1.0, n) != 3) return;
    nmodes3 += 1;
    length3 += std::sqrt(double(x * x + y * y + z * z));
  });
  const double expected = box * box * box * amplitude * amplitude / (2 * nmodes3);
  for (const PowerSpectrum& got : {measure_power_spectrum(g), measure_power_spectrum(gf)}) {
    bool found = false;
    for (size_t i = 0; i < got.k.size(); ++i) {
      const int bin = int(std::floor(got.k[i] / (2 * pi / box) + 1e-9));
      if (bin == 3) {
        found = true;
        EXPECT_NEAR(got.pk[i], expected, 1e-5 * expected);
        EXPECT_EQ(got.nmodes[i], nmodes3);
        EXPECT_NEAR(got.k[i], 2 * pi / box * length3 / nmodes3, 1e-12);
      } else {
        EXPECT_LT(std::abs(got.pk[i]), 1e-9 * expected) << "bin " << bin;
      }
    }
    EXPECT_TRUE(found);
  }
  // With a CIC window divided out the same bin is larger by 1 / prod sinc^4(pi n_i / N).
  PowerSpectrumOptions opts;
  opts.mas = MassAssignment::cic;
  const PowerSpectrum cic = measure_power_spectrum(g, opts);
  const double w = sinc(pi * mx / n) * sinc(pi * my / n) * sinc(pi * mz / n);
  for (size_t i = 0; i < cic.k.size(); ++i) {
    if (int(std::floor(cic.k[i] / (2 * pi / box))) == 3) {
      EXPECT_NEAR(cic.pk[i], expected / std::pow(w, 4), 1e-9 * expected);
    }
  }
}

TEST(PowerSpectrum, MatchesBruteForceDftOnTinyGrid) {
  const int n = 8;
  const double box = 50.0;
  const Grid f1 = white_noise(n, box, 3), f2 = white_noise(n, box, 4);
  for (double width : {1.0, 1.5}) {
    for (MassAssignment mas : {MassAssignment::none, MassAssignment::cic, MassAssignment::tsc}) {
      // Direct DFT of every mode of the full cube, binned by brute force.
      const int bins = 8;
      std::vector<double> p1(bins), p2(bins), p12(bins), len(bins), cnt(bins);
      for_each_mode(n, [&](int x, int y, int z) {
        std::complex<double> d1 = 0, d2 = 0;
        for (int i = 0; i < n; ++i)
          for (int j = 0; j < n; ++j)
            for (int k = 0; k < n; ++k) {
              const auto e = std::polar(1.0, -2 * pi * (x * i + y * j + z * k) / n);
              d1 += f1(i, j, k) * e;
              d2 += f2(i, j, k) * e;
            }
        const int p = window_order(mas);
        const double w2 = std::pow(sinc(pi * x / n) * sinc(pi * y / n) * sinc(pi * z / n), 2 * p);
        const int bin = brute_bin(x, y, z, width, n);
        p1[bin] += std::norm(d1) / w2;
        p2[bin] += std::norm(d2) / w2;
        p12[bin] += (d1 * std::conj(d2)).real() / w2;
        len[bin] += 2 * pi / box * std::sqrt(double(x * x + y * y + z * z));
        cnt[bin] += 1;
      });
      const double norm = std::pow(box, 3) / std::pow(n, 6);
      PowerSpectrumOptions opts;
      opts.mas = mas;
      opts.kbin_width = width;
      const PowerSpectrum auto1 = measure_power_spectrum(f1, opts);
      const CrossSpectrum cross = measure_cross_spectrum(f1, f2, opts);
      size_t row = 0;
      for (int bin = 0; bin < bins; ++bin) {
        if (cnt[bin] == 0) continue;
        ASSERT_LT(row, auto1.k.size());
        EXPECT_EQ(auto1.nmodes[row], cnt[bin]);
        EXPECT_NEAR(auto1.k[row], len[bin] / cnt[bin], 1e-12);
        EXPECT_NEAR(auto1.pk[row], norm * p1[bin] / cnt[bin], 1e-10 * norm * p1[bin] / cnt[bin]);
        EXPECT_NEAR(cross.pk1[row], norm * p1[bin] / cnt[bin], 1e-10 * norm * p1[bin] / cnt[bin]);
        EXPECT_NEAR(cross.pk2[row], norm * p2[bin] / cnt[bin], 1e-10 * norm * p2[bin] / cnt[bin]);
        EXPECT_NEAR(cross.pk12[row], norm * p12[bin] / cnt[bin], 1e-10 * norm * p1[bin] / cnt[bin]);
        EXPECT_NEAR(cross.r[row], p12[bin] / std::sqrt(p1[bin] * p2[bin]), 1e-10);
        EXPECT_EQ(cross.nmodes[row], cnt[bin]);
        ++row;
      }
      EXPECT_EQ(row, auto1.k.size()) << "width " << width;
    }
  }
}

TEST(PowerSpectrum, ModeCountsMatchBruteForceForAnyBinWidth) {
  for (int n : {8, 16, 32}) {
    const Grid f = white_noise(n, 10.0, 5);
    for (double width : {1.0, 0.7, 2.5}) {
      std::vector<double> cnt(4 * n, 0.0);
      double total = 0;
      for_each_mode(n, [&](int x, int y, int z) {
        cnt[brute_bin(x, y, z, width, n)] += 1;
        total += 1;
      });
      PowerSpectrumOptions opts;
      opts.kbin_width = width;
      const PowerSpectrum got = measure_power_spectrum(f, opts);
      double sum = 0;
      size_t row = 0;
      for (size_t bin = 0; bin < cnt.size(); ++bin) {
        if (cnt[bin] == 0) continue;
        ASSERT_LT(row, got.nmodes.size());
        EXPECT_EQ(got.nmodes[row], cnt[bin]) << "n " << n << " width " << width << " bin " << bin;
        ++row;
      }
      for (double m : got.nmodes) sum += m;
      EXPECT_EQ(sum, total) << "n " << n << " width " << width;
    }
  }
}

TEST(PowerSpectrum, LastBinIsClosedAtNyquist) {
  // With W = 1 the last bin is [k_N - k_F, k_N]: the three axis modes at |k| = k_N join it
  // instead of making a bin of their own.
  const int n = 32;
  const double box = 100.0, kf = 2 * pi / box;
  const PowerSpectrum got = measure_power_spectrum(white_noise(n, box, 9));
  double last_shell = 0;  // modes with n/2 - 1 <= |n| <= n/2, counted directly
  for_each_mode(n, [&](int x, int y, int z) {
    const int s = x * x + y * y + z * z;
    if (s >= (n / 2 - 1) * (n / 2 - 1)) last_shell += 1;
  });
  ASSERT_EQ(got.k.size(), size_t(n / 2 - 1));  // bins 1 ... n/2 - 1
  EXPECT_EQ(got.nmodes.back(), last_shell);
  EXPECT_GT(got.k.back(), (n / 2 - 1) * kf);
  EXPECT_LT(got.k.back(), (n / 2) * kf);
  // A width that does not divide N/2 leaves k_N inside a bin: nothing to close.
  PowerSpectrumOptions opts;
  opts.kbin_width = 0.7;
  const PowerSpectrum narrow = measure_power_spectrum(white_noise(n, box, 9), opts);
  EXPECT_EQ(int(std::floor(narrow.k.back() / (0.7 * kf))), int(std::floor((n / 2) / 0.7)));
}

TEST(PowerSpectrum, CorrelationIsOneWithItselfAndSmallForIndependentFields) {
  const int n = 32;
  const Grid a = white_noise(n, 100.0, 11), b = white_noise(n, 100.0, 12);
  const CrossSpectrum self = measure_cross_spectrum(a, a);
  for (size_t i = 0; i < self.k.size(); ++i) {
    EXPECT_NEAR(self.r[i], 1.0, 1e-12);
    EXPECT_NEAR(self.pk12[i], self.pk1[i], 1e-12 * self.pk1[i]);
  }
  const CrossSpectrum indep = measure_cross_spectrum(a, b);
  double mean_abs = 0;
  for (size_t i = 0; i < indep.k.size(); ++i) {
    // r of independent Gaussian fields scatters with sigma ~ sqrt(2 / nmodes) about 0.
    EXPECT_LT(std::abs(indep.r[i]), 4 * std::sqrt(2.0 / indep.nmodes[i])) << "k " << indep.k[i];
    mean_abs += std::abs(indep.r[i]) / double(indep.k.size());
  }
  EXPECT_LT(mean_abs, 0.1);
  const PowerSpectrum pa = measure_power_spectrum(a);
  for (size_t i = 0; i < pa.k.size(); ++i) EXPECT_NEAR(indep.pk1[i], pa.pk[i], 1e-12 * pa.pk[i]);
}

TEST(PowerSpectrum, ShotNoiseIsSubtractedFromAutoSpectraOnly) {
  const Grid a = white_noise(16, 100.0, 1), b = white_noise(16, 100.0, 2);
  PowerSpectrumOptions opts;
  opts.shot_noise = 123.0;
  const PowerSpectrum raw = measure_power_spectrum(a), sub = measure_power_spectrum(a, opts);
  for (size_t i = 0; i < raw.k.size(); ++i) EXPECT_NEAR(sub.pk[i], raw.pk[i] - 123.0, 1e-9);
  const CrossSpectrum craw = measure_cross_spectrum(a, b),
                      csub = measure_cross_spectrum(a, b, opts);
  for (size_t i = 0; i < craw.k.size(); ++i) {
    EXPECT_NEAR(csub.pk1[i], craw.pk1[i] - 123.0, 1e-9);
    EXPECT_NEAR(csub.pk2[i], craw.pk2[i] - 123.0, 1e-9);
    EXPECT_EQ(csub.pk12[i], craw.pk12[i]);
  }
}

TEST(PowerSpectrum, IndependentOfThreadCount) {
  const Grid f = white_noise(32, 100.0, 8);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const PowerSpectrum one = measure_power_spectrum(f);
  omp_set_num_threads(2);
  const PowerSpectrum two = measure_power_spectrum(f);
  omp_set_num_threads(saved);
  ASSERT_EQ(one.k.size(), two.k.size());
  for (size_t i = 0; i < one.k.size(); ++i) {
    EXPECT_EQ(one.k[i], two.k[i]);
    EXPECT_EQ(one.nmodes[i], two.nmodes[i]);
    EXPECT_NEAR(one.pk[i], two.pk[i], 1e-12 * one.pk[i]);  // FFTW may split work differently
  }
}

TEST(PowerSpectrum, RejectsBadInput) {
  EXPECT_NE(error_of([] { measure_power_spectrum(Grid(9, 10.0)); }).find("even"),
            std::string::npos);
  EXPECT_NE(error_of([] { measure_power_spectrum(Grid(8, 0.0)); }).find("box size"),
            std::string::npos);
  EXPECT_NE(error_of([] { measure_cross_spectrum(Grid(8, 10.0), Grid(16, 10.0)); }).find("differ"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              PowerSpectrumOptions o;
              o.kbin_width = -1;
              measure_power_spectrum(Grid(8, 10.0), o);
            }).find("bin width"),
            std::string::npos);
  Grid short_grid(8, 10.0);
  short_grid.values.resize(10);
  EXPECT_NE(error_of([&] { measure_power_spectrum(short_grid); }).find("values"),
            std::string::npos);
}

TEST(PowerSpectrum, HugeFloat32ValuesGiveTheScaledFinitePower) {
  // P is quadratic in the field: P(a x) = a^2 P(x). A float32 field of values near 1e38 overflows
  // a float32 transform (n^3 x 1e38 > 3.4e38), yet its power is representable: it must come out
  // as a^2 times the power of the unscaled field, not as NaN or inf.
  const int n = 16;
  const Grid unit = white_noise(n, 100.0, 21);
  GridF small(n, 100.0), huge(n, 100.0);
  const double a = 1e37;
  for (size_t i = 0; i < unit.size(); ++i) {
    small.values[i] = float(unit.values[i]);
    huge.values[i] = float(a * double(small.values[i]));
  }
  const PowerSpectrum ps = measure_power_spectrum(small), ph = measure_power_spectrum(huge);
  ASSERT_EQ(ps.k.size(), ph.k.size());
  for (size_t i = 0; i < ps.k.size(); ++i) {
    ASSERT_TRUE(std::isfinite(ph.pk[i])) << "bin " << i;
    // float32 rounding of a x and of the transform: a few 1e-6 relative.
    EXPECT_NEAR(ph.pk[i] / (a * a), ps.pk[i], 1e-4 * ps.pk[i]) << "bin " << i;
  }
  // A constant 1e38 field (the probe): all power at k = 0, which is excluded, so every
  // bin is (numerically) zero and finite.
  GridF flat(n, 100.0);
  std::fill(flat.values.begin(), flat.values.end(), 1e38f);
  for (double p : measure_power_spectrum(flat).pk) EXPECT_TRUE(std::isfinite(p));
  const CrossSpectrum c = measure_cross_spectrum(huge, huge);
  for (size_t i = 0; i < c.k.size(); ++i) {
    EXPECT_NEAR(c.pk12[i] / (a * a), ps.pk[i], 1e-4 * ps.pk[i]);
    EXPECT_NEAR(c.r[i], 1.0, 1e-6);
  }
}

TEST(PowerSpectrum, PowerBeyondDoublePrecisionIsRefused) {
  // float64 values of 1e300 have a power near L^3 1e600: not representable, so refused.
  Grid g = white_noise(8, 10.0, 3);
  for (double& v : g.values) v *= 1e300;
  const std::string message = error_of([&] { measure_power_spectrum(g); });
  EXPECT_NE(message.find("power spectrum: P(k) exceeds double precision"), std::string::npos)
      << message;
}

TEST(PowerSpectrum, TinyBinWidthCostsOneBinPerShellAtMost) {
  // --kbin 5e-8 once asked for 1.6e8 bins (24 GB). Bins exist only where modes fall: one per
  // distinct |n|, with the brute-force mode counts of each shell.
  const int n = 16;
  const Grid f = white_noise(n, 10.0, 5);
  PowerSpectrumOptions opts;
  opts.kbin_width = 5e-8;
  const PowerSpectrum got = measure_power_spectrum(f, opts);
  std::map<int, double> shells;  // |n|^2 -> modes
  for_each_mode(n, [&](int x, int y, int z) { shells[x * x + y * y + z * z] += 1; });
  ASSERT_EQ(got.k.size(), shells.size());
  size_t row = 0;
  for (const auto& [s, count] : shells) {
    EXPECT_EQ(got.nmodes[row], count) << "|n|^2 " << s;
    EXPECT_NEAR(got.k[row], 2 * pi / 10.0 * std::sqrt(double(s)), 1e-12) << "|n|^2 " << s;
    ++row;
  }
  opts.kbin_width = 1e300;  // one bin holding every mode
  const PowerSpectrum one = measure_power_spectrum(f, opts);
  ASSERT_EQ(one.k.size(), 1u);
}

// ---- painting ----

TEST(Paint, MatchesDirectKernelSumsOnTinyGrid) {
  // Each grid point's mass, summed directly over particles with the kernel of the periodic
  // distance (in cells): NGP 1 within half a cell, CIC 1 - |d|, TSC the quadratic spline.
  auto kernel = [](MassAssignment mas, double d) {
    d = std::abs(d);
    switch (mas) {
      case MassAssignment::ngp:
        return d < 0.5 ? 1.0 : 0.0;
      case MassAssignment::cic:
        return d < 1.0 ? 1.0 - d : 0.0;
      default:
        return d < 0.5 ? 0.75 - d * d : d < 1.5 ? 0.5 * (1.5 - d) * (1.5 - d) : 0.0;
    }
  };
  const int n = 8;
  const double box = 20.0, cell = box / n;
  const auto pos = uniform_particles(50, -box, 2 * box, 17);  // also outside the box
  for (MassAssignment mas : {MassAssignment::ngp, MassAssignment::cic, MassAssignment::tsc}) {
    Painter painter(n, box, mas);
    painter.add(pos);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        for (int k = 0; k < n; ++k) {
          double expected = 0;
          for (const auto& x : pos) {
            double w = 1;
            const int idx[3] = {i, j, k};
            for (int d = 0; d < 3; ++d) {
              double dist = x[d] / cell - idx[d];
              dist -= n * std::round(dist / n);  // nearest periodic image
              w *= kernel(mas, dist);
            }
            expected += w;
          }
          EXPECT_NEAR(painter.mass()(i, j, k), expected, 1e-12) << to_string(mas);
        }
  }
}

TEST(Paint, ConservesMassForEveryScheme) {
  auto pos = uniform_particles(5000, -50.0, 150.0, 23);
  pos.push_back({0.0, 0.0, 0.0});
  pos.push_back({100.0, 100.0, 100.0});  // exactly L: wraps to 0
  pos.push_back({-1e-17, 99.99999999999999, -100.0});
  for (MassAssignment mas : {MassAssignment::ngp, MassAssignment::cic, MassAssignment::tsc}) {
    for (bool interlaced : {false, true}) {
      Painter painter(16, 100.0, mas, interlaced);
      painter.add(pos);
      double total = 0;
      for (double m : painter.mass().values) {
        EXPECT_GE(m, 0.0);
        total += m;
      }
      EXPECT_NEAR(total, double(pos.size()), 1e-9) << to_string(mas);
      EXPECT_EQ(painter.particle_count(), pos.size());
      const Grid delta = painter.delta();
      EXPECT_NEAR(delta.mean(), 0.0, 1e-12) << to_string(mas) << " interlaced " << interlaced;
    }
  }
}

TEST(Paint, IndependentOfThreadCountAndChunking) {
  const auto pos = uniform_particles(40000, 0.0, 64.0, 29);
  const int saved = omp_get_max_threads();
  for (MassAssignment mas : {MassAssignment::ngp, MassAssignment::cic, MassAssignment::tsc}) {
    std::vector<Grid> results;
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      Painter painter(32, 64.0, mas, true);
      painter.add(pos);
      results.push_back(painter.mass());
      EXPECT_EQ(results.back().values, results.front().values)
          << to_string(mas) << " with " << threads << " threads";
      const Grid d = painter.delta();
      if (threads == 1) results.push_back(d);
    }
    omp_set_num_threads(2);
    Painter chunked(32, 64.0, mas, true);
    const std::span<const std::array<double, 3>> all(pos);
    chunked.add(all.subspan(0, 12345));
    chunked.add(all.subspan(12345));
    // Chunks change the order of the sums into a cell: equal up to rounding.
    for (size_t i = 0; i < chunked.mass().size(); ++i)
      ASSERT_NEAR(chunked.mass().values[i], results.front().values[i], 1e-12) << to_string(mas);
    const Grid d2 = chunked.delta();
    for (size_t i = 0; i < d2.size(); ++i) ASSERT_NEAR(d2.values[i], results[1].values[i], 1e-12);
  }
  omp_set_num_threads(saved);
}

// Particles on a lattice displaced by one Zel'dovich mode psi = e (A / k) sin(k q) along axis e:
// delta_lin = -div psi = -A cos(k q). The exact Zel'dovich density's component at k is
// -2 J_1(A) cos(k x) (Jacobi-Anger), so |delta_k| = J_1(A) N^3 at +-k.
double zeldovich_amplitude(MassAssignment mas, bool interlaced, int axis, double offset_cells,
                           double amplitude, int mode = 2, bool divide_window = true) {
  const int n = 64;
  const double box = 128.0, cell = box / n;
  const double k = 2 * pi * mode / box;
  std::vector<std::array<double, 3>> pos;
  pos.reserve(size_t(n) * n * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int l = 0; l < n; ++l) {
        std::array<double, 3> q{(i + offset_cells) * cell, (j + offset_cells) * cell,
                                (l + offset_cells) * cell};
        q[axis] += amplitude / k * std::sin(k * q[axis]);
        pos.push_back(q);
      }
  Painter painter(n, box, mas, interlaced);
  painter.add(pos);
  PowerSpectrumOptions opts;
  opts.mas = divide_window ? mas : MassAssignment::none;
  const PowerSpectrum p = measure_power_spectrum(painter.delta(), opts);
  // The mode's bin holds P = L^3 A^2 / (2 nmodes) for delta = A cos.
  for (size_t i = 0; i < p.k.size(); ++i)
    if (int(std::floor(p.k[i] / (2 * pi / box))) == mode)
      return std::sqrt(2 * p.pk[i] * p.nmodes[i] / (box * box * box));
  return 0;
}

TEST(Paint, ZeldovichModeAmplitudeRecoveredWithWindowDividedOut) {
  for (int axis = 0; axis < 3; ++axis) {
    // CIC: lattice at cell centres keeps every particle within the kernel's linear part;
    // TSC: lattice on grid points likewise (|psi| < H / 2 crosses no kink).
    const double a = 0.05, expected = 2 * std::cyl_bessel_j(1.0, a);
    EXPECT_NEAR(zeldovich_amplitude(MassAssignment::cic, false, axis, 0.5, a), expected,
                0.01 * expected)
        << "cic axis " << axis;
    EXPECT_NEAR(zeldovich_amplitude(MassAssignment::tsc, false, axis, 0.0, a), expected,
                0.01 * expected)
        << "tsc axis " << axis;
    const double b = 0.04, expected_b = 2 * std::cyl_bessel_j(1.0, b);
    EXPECT_NEAR(zeldovich_amplitude(MassAssignment::cic, true, axis, 0.25, b), expected_b,
                0.01 * expected_b)
        << "interlaced cic axis " << axis;
  }
  // A shorter mode (|n| = 4) shows the window matters: TSC's sinc^3 suppression is 2.6% in
  // amplitude there; divided out, what is left (the lattice's own finite difference) is < 1%.
  const double a = 0.05, expected = 2 * std::cyl_bessel_j(1.0, a);
  const double raw = zeldovich_amplitude(MassAssignment::tsc, false, 1, 0.0, a, 4, false);
  const double divided = zeldovich_amplitude(MassAssignment::tsc, false, 1, 0.0, a, 4, true);
  EXPECT_LT(raw, 0.98 * expected);
  EXPECT_NEAR(divided, expected, 0.01 * expected);
}

TEST(Paint, InterlacingReducesAliasingOfShotNoiseNearNyquist) {
  // Poisson particles: the true spectrum is flat, P = L^3 / NP. Aliased images of the CIC
  // window raise the compensated spectrum near k_N; interlacing cancels the odd images.
  const int n = 32;
  const double box = 100.0;
  const size_t count = size_t(2) * n * n * n;
  const auto pos = uniform_particles(count, 0.0, box, 31);
  const double shot = box * box * box / double(count);
  PowerSpectrumOptions opts;
  opts.mas = MassAssignment::cic;
  double dev_plain = 0, dev_interlaced = 0;
  int bins = 0;
  for (bool interlaced : {false, true}) {
    Painter painter(n, box, MassAssignment::cic, interlaced);
    painter.add(pos);
    const PowerSpectrum p = measure_power_spectrum(painter.delta(), opts);
    const double k_nyquist = pi * n / box;
    for (size_t i = 0; i < p.k.size(); ++i) {
      // (the bin at exactly k_N holds 3 modes only: too noisy to judge)
      if (p.k[i] < 0.6 * k_nyquist || p.nmodes[i] < 100) continue;
      (interlaced ? dev_interlaced : dev_plain) += std::abs(p.pk[i] / shot - 1);
      if (!interlaced) ++bins;
    }
  }
  dev_plain /= bins;
  dev_interlaced /= bins;
  EXPECT_GT(dev_plain, 0.1);
  EXPECT_LT(dev_interlaced, 0.5 * dev_plain);
  EXPECT_LT(dev_interlaced, 0.05);
}

TEST(Paint, RejectsBadInput) {
  EXPECT_NE(error_of([] { parse_mass_assignment("cloud"); }).find("cloud"), std::string::npos);
  EXPECT_EQ(parse_mass_assignment("TSC"), MassAssignment::tsc);
  EXPECT_NE(error_of([] { Painter(0, 10.0, MassAssignment::cic); }).find("grid size"),
            std::string::npos);
  EXPECT_NE(error_of([] { Painter(8, -1.0, MassAssignment::cic); }).find("box size"),
            std::string::npos);
  EXPECT_NE(error_of([] { Painter(8, 1.0, MassAssignment::none); }).find("ngp, cic or tsc"),
            std::string::npos);
  EXPECT_NE(error_of([] { Painter(9, 1.0, MassAssignment::cic, true); }).find("even"),
            std::string::npos);
  EXPECT_NE(error_of([] { Painter(8, 1.0, MassAssignment::cic).delta(); }).find("no particles"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              Painter p(8, 1.0, MassAssignment::cic);
              // many good particles and a few bad ones, so a miscounted sort would overrun
              auto pos = uniform_particles(1000, 0.0, 1.0, 5);
              pos[3][1] = std::nan("");
              pos[500][0] = std::numeric_limits<double>::infinity();
              pos[999][2] = -std::numeric_limits<double>::infinity();
              p.add(pos);
            }).find("not finite"),
            std::string::npos);
}

// RealFft3d::forward(input), added for the P(k) path (no copy into real()), against the copy path.
TEST(Fft, ForwardFromExternalInputMatchesCopyThenForward) {
  const int n = 16;
  const Grid g = white_noise(n, 1.0, 9);
  std::vector<float> padded(g.size() + 1);  // data() + 1: misaligned, takes the copying path
  for (size_t i = 0; i < g.size(); ++i) padded[i + 1] = float(g.values[i]);
  const std::vector<float> aligned(padded.begin() + 1, padded.end());
  RealFft3d<float> reference(n), direct(n), shifted(n);
  std::copy(aligned.begin(), aligned.end(), reference.real());
  reference.forward();
  direct.forward(aligned.data());
  shifted.forward(padded.data() + 1);
  for (size_t i = 0; i < reference.complex_size(); ++i) {
    ASSERT_EQ(direct.complex()[i], reference.complex()[i]);
    ASSERT_EQ(shifted.complex()[i], reference.complex()[i]);
  }
  EXPECT_EQ(std::vector<float>(padded.begin() + 1, padded.end()), aligned);  // input untouched
}

TEST(PowerSpectrum, CallerTransformGivesTheSameResultAndMustMatchTheGrid) {
  const Grid f = white_noise(16, 50.0, 13);
  RealFft3d<double> fft(16);
  const PowerSpectrum own = measure_power_spectrum(f), given = measure_power_spectrum(f, fft);
  EXPECT_EQ(own.pk, given.pk);
  EXPECT_EQ(own.nmodes, given.nmodes);
  RealFft3d<double> wrong(8);
  EXPECT_NE(error_of([&] { measure_power_spectrum(f, wrong); }).find("transform"),
            std::string::npos);
}

// The window deconvolution against sinc written out: 1 at k = 0, (pi/2)^power at the Nyquist
// wavenumber, symmetric in +-k, sin(x)/x elsewhere.
TEST(Paint, InverseWindowIsOneOverSincPower) {
  const int n = 8;
  for (int power : {0, 2, 4, 6}) {
    const std::vector<double> inv = inverse_window_per_axis(n, power);
    ASSERT_EQ(inv.size(), size_t(n));
    EXPECT_EQ(inv[0], 1.0);
    EXPECT_NEAR(inv[n / 2], std::pow(std::numbers::pi / 2, power), 1e-12);
    for (int i = 1; i < n; ++i) {
      EXPECT_DOUBLE_EQ(inv[i], inv[n - i]);
      const double x = std::numbers::pi * (i <= n / 2 ? i : i - n) / n;
      EXPECT_NEAR(inv[i] * std::pow(std::sin(x) / x, power), 1.0, 1e-12);
    }
  }
}

// Every group is painted exactly once, odd counts included (the last group alone at the end), and
// two groups running at the same time are never neighbours.
TEST(Paint, GroupsByParityPaintEachGroupOnceAndNeverNeighboursTogether) {
  for (int groups : {1, 2, 5, 8, 9}) {
    std::vector<int> painted(size_t(groups), 0);
    std::vector<std::atomic<int>> running(static_cast<size_t>(groups));
    std::atomic<int> clashes{0};
#pragma omp parallel num_threads(2)
    paint_groups_by_parity(groups, [&](int g) {
      running[size_t(g)] = 1;
      const int next = (g + 1) % groups, prev = (g + groups - 1) % groups;
      if (groups > 1 && (running[size_t(next)] || running[size_t(prev)])) ++clashes;
      ++painted[size_t(g)];
      running[size_t(g)] = 0;
    });
    EXPECT_EQ(clashes.load(), 0) << groups << " groups";
    for (int g = 0; g < groups; ++g) EXPECT_EQ(painted[size_t(g)], 1) << "group " << g;
  }
}

TEST(PowerSpectrum, CornerModesKeptUpToSqrt3Nyquist) {
  // With k_max = sqrt(3) k_N every mode but k = 0 is binned, so by Parseval
  // sum_bins nmodes P = (L^3 / N^6) N^3 sum_x (delta - mean)^2.
  const int n = 8;
  const double box = 20.0;
  const Grid f = white_noise(n, box, 9);
  PowerSpectrumOptions opts;
  opts.k_max_over_nyquist = std::sqrt(3.0);
  const PowerSpectrum got = measure_power_spectrum(f, opts);
  double modes = 0, total = 0;
  for (size_t i = 0; i < got.k.size(); ++i) {
    modes += got.nmodes[i];
    total += got.nmodes[i] * got.pk[i];
  }
  EXPECT_EQ(modes, double(n * n * n - 1));
  const double variance_sum = f.variance() * double(f.size());
  EXPECT_NEAR(total, std::pow(box, 3) / std::pow(n, 3) * variance_sum, 1e-9 * total);
  EXPECT_LE(got.k.back(), std::sqrt(3.0) * f.nyquist_k_hmpc() + 1e-12);
  // The default cut drops them.
  const PowerSpectrum cut = measure_power_spectrum(f);
  double cut_modes = 0;
  for (double m : cut.nmodes) cut_modes += m;
  EXPECT_LT(cut_modes, modes);
  opts.k_max_over_nyquist = 0.0;
  EXPECT_NE(error_of([&] { measure_power_spectrum(f, opts); }).find("k_max_over_nyquist"),
            std::string::npos);
}
