// stats: the equilateral bispectrum against independent truths: a brute-force triangle sum over a
// direct DFT, zero for Gaussian fields within their scatter, and the exact expectation of the
// estimator for a lognormal field (Coles & Jones 1991: zeta = xi xi + xi xi + xi xi + xi xi xi).
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <functional>
#include <numbers>
#include <vector>

#include "error_of.hpp"
#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/grid.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/flow/base.hpp"
#include "fieldflow/stats/bispectrum.hpp"
#include "fieldflow/stats/power_spectrum.hpp"

using namespace ff;
using std::numbers::pi;

namespace {

// Wavevector of full-cube index (a, b, c); the index of a wavevector (wrapped mod n).
struct Mode {
  int x, y, z;
  int sq() const { return x * x + y * y + z * z; }
};
Mode mode_of(size_t at, int n) {
  const int a = int(at / (size_t(n) * n)), b = int(at / n % n), c = int(at % n);
  return {fft_wavenumber(a, n), fft_wavenumber(b, n), fft_wavenumber(c, n)};
}
size_t index_of(int x, int y, int z, int n) {
  auto wrap = [n](int v) { return size_t(((v % n) + n) % n); };
  return (wrap(x) * n + wrap(y)) * n + wrap(z);
}

// The full complex cube by a direct DFT (no FFTW): delta_k = sum_x delta(x) e^{-i k.x}.
std::vector<std::complex<double>> direct_dft(const Grid& g) {
  const int n = g.n;
  const size_t total = g.size();
  std::vector<std::complex<double>> out(total);
  for (size_t m = 0; m < total; ++m) {
    const Mode k = mode_of(m, n);
    std::complex<double> sum = 0.0;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        for (int l = 0; l < n; ++l) {
          const double phase =
              -2.0 * pi * (double(k.x) * i + double(k.y) * j + double(k.z) * l) / n;
          sum += g(i, j, l) * std::polar(1.0, phase);
        }
    out[m] = sum;
  }
  return out;
}

double sinc(double x) {
  return x == 0.0 ? 1.0 : std::sin(x) / x;
}

struct Expected {
  double bk = 0, pk = 0, triangles = 0, scale = 0;
};

// Brute force: every ordered (k1, k2) of the shell (i - 1) W <= |n| < (i + 1) W, n != 0, with
// k3 = -k1 - k2 wrapped into the cube, also in the shell. Window divided out per mode.
Expected brute_force(const std::vector<std::complex<double>>& dk, int n, double box, int i,
                     double w, int window_p) {
  const size_t total = dk.size();
  auto inside = [&](const Mode& m) {
    const double len = std::sqrt(double(m.sq()));
    return m.sq() > 0 && len >= (i - 1) * w - 1e-9 && len < (i + 1) * w - 1e-9;
  };
  auto value = [&](size_t at) {
    const Mode m = mode_of(at, n);
    const double win =
        std::pow(sinc(pi * m.x / n) * sinc(pi * m.y / n) * sinc(pi * m.z / n), window_p);
    return dk[at] / win;
  };
  std::vector<size_t> shell;
  for (size_t m = 0; m < total; ++m)
    if (inside(mode_of(m, n))) shell.push_back(m);
  Expected e;
  std::complex<double> sum = 0.0;
  double power = 0.0;
  for (size_t m1 : shell) {
    power += std::norm(value(m1));
    const Mode k1 = mode_of(m1, n);
    for (size_t m2 : shell) {
      const Mode k2 = mode_of(m2, n);
      const size_t m3 = index_of(-k1.x - k2.x, -k1.y - k2.y, -k1.z - k2.z, n);
      if (!inside(mode_of(m3, n))) continue;
      const std::complex<double> t = value(m1) * value(m2) * value(m3);
      sum += t;
      e.scale += std::abs(t);
      e.triangles += 1;
    }
  }
  EXPECT_LE(std::abs(sum.imag()), 1e-9 * e.scale + 1e-300);  // a real field closes real
  const double n3 = double(n) * n * n, l3 = box * box * box;
  e.bk = l3 * l3 / (n3 * n3 * n3) * sum.real() / e.triangles;
  e.scale = l3 * l3 / (n3 * n3 * n3) * e.scale / e.triangles;
  e.pk = l3 / (n3 * n3) * power / double(shell.size());
  return e;
}

// A non-Gaussian, non-symmetric test field: cubes of white noise plus a smooth wave.
Grid skewed_field(int n, double box, uint64_t seed) {
  Grid g(n, box);
  CounterRng rng(seed);
  for (size_t i = 0; i < g.size(); ++i) {
    const double u = rng.normal(i);
    g.values[i] = u * u * u / 3.0 + 0.3 * u * u + 0.1 * std::sin(2 * pi * double(i % n) / n);
  }
  return g;
}

void check_against_brute_force(int n, double w, MassAssignment mas) {
  const double box = 50.0;
  const Grid g = skewed_field(n, box, 7 + n);
  const auto dk = direct_dft(g);
  BispectrumOptions opts;
  opts.kbin_width = w;
  opts.mas = mas;
  const Bispectrum b = measure_equilateral_bispectrum(g, opts);
  const double kf = 2 * pi / box;
  // Every centre i W up to N/2 that closes a triangle is reported, in order.
  int reported = 0;
  for (int i = 1; i * w <= n / 2 + 1e-9; ++i) {
    const Expected e = brute_force(dk, n, box, i, w, window_order(mas));
    if (e.triangles == 0) continue;
    ASSERT_LT(reported, int(b.k.size()));
    const size_t r = size_t(reported++);
    SCOPED_TRACE("n=" + std::to_string(n) + " W=" + std::to_string(w) + " shell " +
                 std::to_string(i));
    EXPECT_NEAR(b.k[r], i * w * kf, 1e-12 * kf);
    EXPECT_EQ(b.ntriangles[r], e.triangles);
    EXPECT_NEAR(b.bk[r], e.bk, 1e-9 * e.scale);
    EXPECT_NEAR(b.pk[r], e.pk, 1e-10 * e.pk);
    EXPECT_NEAR(b.qk[r], e.bk / (3 * e.pk * e.pk), 1e-9 * e.scale / (3 * e.pk * e.pk));
  }
  EXPECT_EQ(reported, int(b.k.size()));
  EXPECT_GE(reported, 2);
}

}  // namespace

TEST(Bispectrum, MatchesBruteForceTriangleSum) {
  check_against_brute_force(8, 1.0, MassAssignment::none);
  check_against_brute_force(12, 1.0, MassAssignment::none);
  check_against_brute_force(8, 1.5, MassAssignment::none);
  check_against_brute_force(8, 0.6, MassAssignment::none);
  check_against_brute_force(8, 1.0, MassAssignment::cic);
  check_against_brute_force(12, 1.0, MassAssignment::tsc);
}

TEST(Bispectrum, FloatAndDoubleFieldsAgree) {
  const Grid g = skewed_field(16, 100.0, 3);
  GridF f(16, 100.0);
  for (size_t i = 0; i < g.size(); ++i) f.values[i] = float(g.values[i]);
  Grid back(16, 100.0);
  for (size_t i = 0; i < g.size(); ++i) back.values[i] = double(f.values[i]);
  const Bispectrum a = measure_equilateral_bispectrum(f), b = measure_equilateral_bispectrum(back);
  ASSERT_EQ(a.k.size(), b.k.size());
  for (size_t i = 0; i < a.k.size(); ++i) EXPECT_DOUBLE_EQ(a.bk[i], b.bk[i]);
}

TEST(Bispectrum, ProgressReportsEveryShell) {
  const Grid g = skewed_field(16, 100.0, 3);
  std::vector<int> done;
  EquilateralBispectrum estimator(16, 100.0, {}, [&](int d, int total) {
    EXPECT_EQ(total, 8);
    done.push_back(d);
  });
  estimator.measure(g);
  ASSERT_EQ(done.size(), 9u);
  for (int i = 0; i <= 8; ++i) EXPECT_EQ(done[size_t(i)], i);
}

TEST(Bispectrum, RefusesBadInput) {
  EXPECT_EQ(error_of([] { EquilateralBispectrum(7, 100.0); }),
            "bispectrum: grid size must be even and >= 2 for Fourier statistics, got 7");
  EXPECT_EQ(error_of([] { EquilateralBispectrum(8, -1.0); }),
            "bispectrum: box size must be positive, got -1");
  BispectrumOptions bad;
  bad.kbin_width = 0.0;
  EXPECT_EQ(error_of([&] { EquilateralBispectrum(8, 100.0, bad); }),
            "bispectrum: bin width must be positive, got 0");
  EquilateralBispectrum estimator(8, 100.0);
  const Grid other = skewed_field(8, 200.0, 1);
  EXPECT_EQ(error_of([&] { estimator.measure(other, "sample 3"); }),
            "sample 3: grid 8^3 in a box of 200 Mpc/h differs from the bispectrum's 8^3 in 100 "
            "Mpc/h");
  // Finite values whose triplet products overflow: refused, never a NaN in the table.
  Grid huge = skewed_field(8, 100.0, 2);
  for (double& v : huge.values) v *= 1e120;
  EXPECT_EQ(error_of([&] { estimator.measure(huge, "huge.h5"); }),
            "huge.h5: bispectrum: B(k) exceeds double precision (the field's values are too large; "
            "rescale them)");
}

namespace {

// Gaussian and lognormal fields on 16^3 whose estimator expectations are known exactly.
struct LognormalSetup {
  static constexpr int n = 16;  // a power of two (the cubic term wraps indices with a mask)
  static constexpr double box = 200.0;
  std::vector<double> lambda;  // per half-complex mode: <|g_k|^2> = N^3 lambda_k
  double sigma2 = 0;           // variance of g per voxel
  std::vector<double> xi_hat;  // full cube: sum_r xi_delta(r) e^{-i k.r}, xi_delta = e^{xi_g} - 1

  LognormalSetup() {
    const int nc = n / 2 + 1;
    lambda.resize(size_t(n) * n * nc);
    RealFft3d<double> fft(n);
    // A red spectrum with a cut-off, scaled to a variance of 0.4 per voxel: a strongly skewed
    // lognormal field.
    double variance = 0;
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b)
        for (int c = 0; c < nc; ++c) {
          const double wa = fft_wavenumber(a, n), wb = fft_wavenumber(b, n);
          const double k = std::sqrt(wa * wa + wb * wb + double(c) * c);
          // k = 0 nearly fixed: a random mean would rescale the whole lognormal field.
          const double l = k == 0 ? 1e-8 : std::pow(k, -1.5) * std::exp(-k * k / 40.0);
          lambda[(size_t(a) * n + b) * nc + c] = l;
          variance += half_complex_weight(c, n) * l / (double(n) * n * n);
        }
    for (size_t m = 0; m < lambda.size(); ++m) {
      lambda[m] *= 0.4 / variance;
      fft.complex()[m] = lambda[m];
    }
    fft.inverse();  // xi_g(r) = N^-3 sum_k lambda_k e^{i k.r}
    const double n3 = double(n) * n * n;
    std::vector<double> xi_g(fft.real(), fft.real() + fft.real_size());
    for (double& v : xi_g) v /= n3;
    sigma2 = xi_g[0];
    for (size_t i = 0; i < xi_g.size(); ++i) fft.real()[i] = std::expm1(xi_g[i]);
    fft.forward();
    // Expand the half-complex transform (real: xi is even) to the full cube.
    xi_hat.resize(size_t(n) * n * n);
    for (size_t m = 0; m < xi_hat.size(); ++m) {
      const Mode k = mode_of(m, n);
      const Mode h = k.z >= 0 ? k : Mode{-k.x, -k.y, -k.z};  // xi_hat(-k) = xi_hat(k)
      xi_hat[m] = fft.complex()[index_of(h.x, h.y, 0, n) / n * nc + size_t(h.z)].real();
    }
  }

  Grid gaussian(CorrelatedGaussian& base, uint64_t seed) const {
    Grid g(n, box);
    base.sample(g.values.data(), seed, 0, 1.0);
    return g;
  }
  Grid lognormal(CorrelatedGaussian& base, uint64_t seed) const {
    Grid g = gaussian(base, seed);
    for (double& v : g.values) v = std::exp(v - sigma2 / 2) - 1.0;  // <delta> = 0 exactly
    return g;
  }

  // Exact E[B] and E[P] of the estimator on shell i (W = 1): B averages over the shell's closed
  // triplets <d_k1 d_k2 d_k3> = N^3 [xh1 xh2 + xh1 xh3 + xh2 xh3 + D(k2, k3)],
  // D(k2, k3) = N^-3 sum_q xh(q) xh(k2 + q) xh(k3 - q).
  std::pair<double, double> expectation(int i) const {
    const size_t total = xi_hat.size();
    const double n3 = double(n) * n * n, l3 = box * box * box;
    auto inside = [&](const Mode& m) {
      return m.sq() > 0 && m.sq() >= (i - 1) * (i - 1) && m.sq() < (i + 1) * (i + 1);
    };
    std::vector<size_t> shell;
    double power = 0;
    for (size_t m = 0; m < total; ++m)
      if (inside(mode_of(m, n))) {
        shell.push_back(m);
        power += xi_hat[m];
      }
    double sum = 0, triangles = 0;
    for (size_t m1 : shell)
      for (size_t m2 : shell) {
        const Mode k1 = mode_of(m1, n), k2 = mode_of(m2, n);
        const size_t m3 = index_of(-k1.x - k2.x, -k1.y - k2.y, -k1.z - k2.z, n);
        const Mode k3 = mode_of(m3, n);
        if (!inside(k3)) continue;
        double cubic = 0;
        // Indices are wavenumbers mod n (a power of two): k2 + q and k3 - q wrap with a mask.
        constexpr int wrap = n - 1;
        const int a2 = int(m2 / (n * n)), b2 = int(m2 / n % n), c2 = int(m2 % n);
        const int a3 = int(m3 / (n * n)), b3 = int(m3 / n % n), c3 = int(m3 % n);
        size_t q = 0;
        for (int qa = 0; qa < n; ++qa)
          for (int qb = 0; qb < n; ++qb) {
            const size_t row2 = size_t((((a2 + qa) & wrap) * n + ((b2 + qb) & wrap)) * n);
            const size_t row3 = size_t((((a3 - qa) & wrap) * n + ((b3 - qb) & wrap)) * n);
            for (int qc = 0; qc < n; ++qc, ++q)
              cubic += xi_hat[q] * xi_hat[row2 + size_t((c2 + qc) & wrap)] *
                       xi_hat[row3 + size_t((c3 - qc) & wrap)];
          }
        sum += n3 * (xi_hat[m1] * xi_hat[m2] + xi_hat[m1] * xi_hat[m3] + xi_hat[m2] * xi_hat[m3] +
                     cubic / n3);
        triangles += 1;
      }
    const double bk = l3 * l3 / (n3 * n3 * n3) * sum / triangles;
    const double pk = l3 / (n3 * n3) * n3 * power / double(shell.size());
    return {bk, pk};
  }
};

struct Moments {
  std::vector<double> mean, error;  // mean over realisations and its standard error
};
Moments moments(const std::vector<std::vector<double>>& samples) {
  Moments m;
  const size_t bins = samples[0].size(), count = samples.size();
  for (size_t b = 0; b < bins; ++b) {
    double s = 0, s2 = 0;
    for (const auto& v : samples) s += v[b];
    const double mean = s / double(count);
    for (const auto& v : samples) s2 += (v[b] - mean) * (v[b] - mean);
    m.mean.push_back(mean);
    m.error.push_back(std::sqrt(s2 / double(count - 1) / double(count)));
  }
  return m;
}

}  // namespace

TEST(Bispectrum, GaussianIsZeroAndLognormalMatchesItsExactExpectation) {
  const LognormalSetup setup;
  CorrelatedGaussian base(setup.n, setup.lambda);
  EquilateralBispectrum estimator(setup.n, setup.box);
  const int realisations = 400;
  std::vector<std::vector<double>> gauss_b, logn_b, logn_p, logn_q;
  for (int r = 0; r < realisations; ++r) {
    const Bispectrum g = estimator.measure(setup.gaussian(base, 1000 + r));
    const Bispectrum l = estimator.measure(setup.lognormal(base, 1000 + r));
    gauss_b.push_back(g.bk);
    logn_b.push_back(l.bk);
    logn_p.push_back(l.pk);
    logn_q.push_back(l.qk);
  }
  const Moments gb = moments(gauss_b), lb = moments(logn_b), lp = moments(logn_p),
                lq = moments(logn_q);
  std::printf("lognormal sigma_g^2 = %.3f\n  k/kF   E[B] exact   <B> measured   (+-)   <Q>\n",
              setup.sigma2);
  for (int i = 2; i <= 4; ++i) {
    const size_t b = size_t(i - 1);  // shells start at i = 1
    const auto [bk, pk] = setup.expectation(i);
    std::printf("  %d   %12.5g  %12.5g  %10.3g  %.3f\n", i, bk, lb.mean[b], lb.error[b],
                lq.mean[b]);
    SCOPED_TRACE("shell " + std::to_string(i));
    // Gaussian: zero within 4 standard errors; the lognormal is far from zero, and equals its
    // exact expectation within 4 standard errors.
    EXPECT_LT(std::abs(gb.mean[b]), 4 * gb.error[b]);
    EXPECT_GT(lb.mean[b], 10 * lb.error[b]);
    EXPECT_NEAR(lb.mean[b], bk, 4 * lb.error[b]);
    EXPECT_NEAR(lp.mean[b], pk, 4 * lp.error[b]);
  }
}
