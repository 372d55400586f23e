#include "fieldflow/stats/power_spectrum.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <numbers>
#include <string>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/fft.hpp"

namespace ff {

template <typename T>
void check_fourier_field(const BasicGrid<T>& f, const char* what) {
  if (f.n < 2 || f.n % 2 != 0)
    throw Error(
        what, "grid size must be even and >= 2 for Fourier statistics, got " + std::to_string(f.n));
  if (f.values.size() != size_t(f.n) * f.n * f.n)
    throw Error(what, "holds " + std::to_string(f.values.size()) +
                          " values, expected n^3 = " + std::to_string(size_t(f.n) * f.n * f.n));
  if (!(f.box_size_mpch > 0.0) || !std::isfinite(f.box_size_mpch))
    throw Error(what, "box size must be positive, got " + std::to_string(f.box_size_mpch));
}
template void check_fourier_field(const BasicGrid<float>&, const char*);
template void check_fourier_field(const BasicGrid<double>&, const char*);

namespace {

void check_options(const PowerSpectrumOptions& o) {
  if (!(o.kbin_width > 0.0) || !std::isfinite(o.kbin_width))
    throw Error("power spectrum",
                "bin width must be positive, got " + std::to_string(o.kbin_width));
  if (!(o.shot_noise >= 0.0) || !std::isfinite(o.shot_noise))
    throw Error("power spectrum", "shot noise must be >= 0, got " + std::to_string(o.shot_noise));
  if (!(o.k_max_over_nyquist > 0.0) || !(o.k_max_over_nyquist <= 2.0))
    throw Error("power spectrum", "k_max_over_nyquist must lie in (0, 2], got " +
                                      std::to_string(o.k_max_over_nyquist));
}

// Tables that turn the integer wavenumber (n_x, n_y, n_z) into a bin in O(1):
// |n|^2 = sq[a] + sq[b] + c^2 indexes bin_of and length_of for |n|^2 <= (N/2)^2 (k <= k_N).
struct Binning {
  int n = 0;
  int max_sq = 0;  // (k_max/k_N)^2 (N/2)^2: modes beyond are dropped
  int bins = 0;
  std::vector<int> sq;            // n_i^2 per FFT index
  std::vector<double> inv_w2;     // 1 / sinc(pi n_i / N)^(2p) per FFT index
  std::vector<int> bin_of;        // per |n|^2
  std::vector<double> length_of;  // sqrt(|n|^2)

  Binning(int n_, const PowerSpectrumOptions& opts) : n(n_) {
    max_sq = int(
        std::floor(opts.k_max_over_nyquist * opts.k_max_over_nyquist * (n / 2) * (n / 2) + 1e-6));
    sq.resize(n);
    inv_w2 = window_compensation(n, opts.mas);
    for (int i = 0; i < n; ++i) {
      const int w = fft_wavenumber(i, n);
      sq[i] = w * w;
      inv_w2[i] *= inv_w2[i];
    }
    bin_of.resize(size_t(max_sq) + 1);
    length_of.resize(size_t(max_sq) + 1);
    // Bins are numbered densely in order of |n|: only bins that some |n|^2 <= (N/2)^2 falls in
    // exist, so a tiny width (--kbin 5e-8) costs at most one bin per shell, never 1/W bins.
    double previous = -1.0;
    int dense = -1;
    for (int s = 0; s <= max_sq; ++s) {
      length_of[s] = std::sqrt(double(s));
      // bin i holds i <= |n| / W < i + 1; a ratio within rounding of an integer counts as that
      // integer.
      const double ratio = length_of[s] / opts.kbin_width;
      double bin = std::floor(ratio);
      if (ratio - bin > 1.0 - 1e-12) bin += 1.0;
      const bool on_edge = std::abs(ratio - bin) < 1e-12 * std::max(1.0, ratio);
      // The cut closes the last bin: a shell exactly on the cut and on an edge (|k| = k_N when W
      // divides N/2) joins the bin below instead of making a bin of its own: at k_N that bin would
      // hold only the three axis modes (N/2, 0, 0), (0, N/2, 0), (0, 0, N/2).
      const bool closes_last_bin = s == max_sq && on_edge && previous == bin - 1.0;
      if (bin != previous && !closes_last_bin) ++dense;
      if (!closes_last_bin) previous = bin;
      bin_of[s] = dense;
    }
    bins = dense + 1;
  }
};

// Up to 64 groups while their sums fit in 64 MB (fewer for very many bins): a function of n and
// the binning only, so the result stays independent of the thread count.
int group_count(int n, int bins, int spectra) {
  const double bytes_per_group = double(bins) * 8.0 * (spectra + 2);
  const double fit = std::floor(64e6 / bytes_per_group);
  return std::max(1, std::min({n, 64, int(std::min(fit, 64.0))}));
}

// Sums per group of consecutive x-planes (a fixed function of n), each group summed by one thread
// in plane order and the groups reduced in order at the end: the result does not depend on how
// the groups were shared among threads.
struct PlaneSums {
  int groups, spectra, bins;
  std::vector<double> power;  // [group][bin][spectrum]
  std::vector<double> length;
  std::vector<int64_t> count;
  PlaneSums(int n, int bins_, int spectra_)
      : groups(group_count(n, bins_, spectra_)),
        spectra(spectra_),
        bins(bins_),
        power(size_t(groups) * bins_ * spectra_, 0.0),
        length(size_t(groups) * bins_, 0.0),
        count(size_t(groups) * bins_, 0) {}
};

// One fused pass over the half-complex array(s): window, |k|, bin and accumulate.
// Spectra = 1: |f1|^2. Spectra = 3: |f1|^2, |f2|^2, Re(f1 f2^*).
template <int Spectra, typename T>
PlaneSums accumulate(const Binning& bn, const std::complex<T>* f1, const std::complex<T>* f2) {
  const int n = bn.n, nc = n / 2 + 1, bins = bn.bins;
  PlaneSums sums(n, bins, Spectra);
  const int groups = sums.groups;
#pragma omp parallel for schedule(dynamic, 1)
  for (int g = 0; g < groups; ++g) {
    double* power = sums.power.data() + size_t(g) * bins * Spectra;
    double* length = sums.length.data() + size_t(g) * bins;
    int64_t* count = sums.count.data() + size_t(g) * bins;
    for (int a = int(int64_t(n) * g / groups); a < int(int64_t(n) * (g + 1) / groups); ++a) {
      if (bn.sq[a] > bn.max_sq) continue;
      for (int b = 0; b < n; ++b) {
        const int sab = bn.sq[a] + bn.sq[b];
        if (sab > bn.max_sq) continue;
        const double wab = bn.inv_w2[a] * bn.inv_w2[b];
        const size_t row = (size_t(a) * n + b) * nc;
        for (int c = 0; c < nc; ++c) {
          const int s = sab + c * c;
          if (s > bn.max_sq) break;
          if (s == 0) continue;
          // The r2c array holds planes c = 0 and c = N/2 once, the others stand for k and -k.
          const int mult = half_complex_weight(c, n);
          const int bin = bn.bin_of[s];
          const double w = mult * wab * bn.inv_w2[c];
          const double re1 = f1[row + c].real(), im1 = f1[row + c].imag();
          double* pw = power + size_t(bin) * Spectra;
          pw[0] += w * (re1 * re1 + im1 * im1);
          if constexpr (Spectra == 3) {
            const double re2 = f2[row + c].real(), im2 = f2[row + c].imag();
            pw[1] += w * (re2 * re2 + im2 * im2);
            pw[2] += w * (re1 * re2 + im1 * im2);
          }
          length[bin] += mult * bn.length_of[s];
          count[bin] += mult;
        }
      }
    }
  }
  return sums;
}

struct BinTotals {
  std::vector<double> k, nmodes;
  std::vector<std::vector<double>> power;  // per spectrum, mean over the bin, normalised
};

// scale_exponents[s]: spectrum s is multiplied by 2^scale_exponents[s] (undoes the overflow guard).
BinTotals reduce(const PlaneSums& sums, int n, double box_size_mpch,
                 const std::vector<int>& scale_exponents) {
  const int bins = sums.bins, spectra = sums.spectra;
  const double kf = 2.0 * std::numbers::pi / box_size_mpch;
  const double norm = box_size_mpch * box_size_mpch * box_size_mpch / (double(n) * n * n) /
                      (double(n) * n * n);  // L^3 / N^6
  BinTotals out;
  out.power.resize(spectra);
  for (int bin = 0; bin < bins; ++bin) {
    int64_t count = 0;
    double length = 0.0;
    std::vector<double> power(spectra, 0.0);
    for (int g = 0; g < sums.groups; ++g) {
      const size_t at = size_t(g) * bins + bin;
      count += sums.count[at];
      length += sums.length[at];
      for (int s = 0; s < spectra; ++s) power[s] += sums.power[at * spectra + s];
    }
    if (count == 0) continue;  // empty bins are omitted
    out.k.push_back(kf * length / double(count));
    out.nmodes.push_back(double(count));
    for (int s = 0; s < spectra; ++s)
      out.power[s].push_back(std::ldexp(norm * power[s] / double(count), scale_exponents[s]));
  }
  return out;
}

// Overflow guard. The transform of n^3 values of at most m in size reaches n^3 m, which overflows
// float32 (2^128) for m near 1e30 and the double sums of squares for m near 1e150. Fields whose
// n^3 max|x| exceeds 2^100 are therefore scaled by an exact power of two 2^-e before the
// transform and the power by 2^(2e) after it, in double; a power beyond double precision is
// refused. Returns e (0 when no scaling is needed, the common case: a pass over the values).
template <typename T>
int guard_exponent(const T* x, size_t count, int n) {
  double largest = 0.0;
#pragma omp parallel for reduction(max : largest) schedule(static)
  for (size_t i = 0; i < count; ++i) largest = std::max(largest, double(std::abs(x[i])));
  const double bound = largest * double(n) * n * n;
  if (!(bound > 0x1p100) || !std::isfinite(bound)) return 0;
  return std::ilogb(bound) + 1 - 100;
}

template <typename T>
void scale_down(T* x, size_t count, int e) {
  const T factor = T(std::ldexp(1.0, -e));
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < count; ++i) x[i] *= factor;
}

// The field in fft.real() transformed, guarded against overflow: returns the exponent e.
template <typename T>
int guarded_forward(RealFft3d<T>& fft) {
  const int e = guard_exponent(fft.real(), fft.real_size(), fft.n());
  if (e > 0) scale_down(fft.real(), fft.real_size(), e);
  fft.forward();
  return e;
}

// input transformed into fft (no copy unless the guard must scale): returns the exponent e.
template <typename T>
int guarded_forward(RealFft3d<T>& fft, const T* input) {
  const int e = guard_exponent(input, fft.real_size(), fft.n());
  if (e == 0) {
    fft.forward(input);
    return 0;
  }
  std::copy(input, input + fft.real_size(), fft.real());
  scale_down(fft.real(), fft.real_size(), e);
  fft.forward();
  return e;
}

// Never a non-finite result from finite input: refuse it, in the house format.
void require_finite(const std::vector<double>& values, const char* what) {
  for (const double v : values)
    if (!std::isfinite(v))
      throw Error("power spectrum", std::string(what) +
                                        " exceeds double precision (the field's values are too "
                                        "large; rescale them)");
}

// P(k) of the transform in fft.complex(), whose field was scaled by 2^-e.
template <typename T>
PowerSpectrum power_spectrum_of_transform(RealFft3d<T>& fft, double box_size_mpch,
                                          const PowerSpectrumOptions& opts, int e) {
  const Binning bn(fft.n(), opts);
  const BinTotals t =
      reduce(accumulate<1>(bn, fft.complex(), fft.complex()), fft.n(), box_size_mpch, {2 * e});
  PowerSpectrum out;
  out.k = t.k;
  out.nmodes = t.nmodes;
  out.pk = t.power[0];
  for (double& p : out.pk) p -= opts.shot_noise;
  require_finite(out.pk, "P(k)");
  return out;
}

}  // namespace

template <typename T>
PowerSpectrum measure_power_spectrum(const BasicGrid<T>& field, const PowerSpectrumOptions& opts) {
  check_fourier_field(field, "power spectrum: field");
  RealFft3d<T> fft(field.n);
  return measure_power_spectrum(field, fft, opts);
}

template <typename T>
PowerSpectrum measure_power_spectrum(const BasicGrid<T>& field, RealFft3d<T>& fft,
                                     const PowerSpectrumOptions& opts) {
  check_fourier_field(field, "power spectrum: field");
  check_options(opts);
  if (fft.n() != field.n)
    throw Error("power spectrum", "the transform is for " + std::to_string(fft.n()) +
                                      "^3, the field is " + std::to_string(field.n) + "^3");
  const int e = guarded_forward(fft, field.values.data());
  return power_spectrum_of_transform(fft, field.box_size_mpch, opts, e);
}

template <typename T>
PowerSpectrum measure_power_spectrum_in_place(RealFft3d<T>& fft, double box_size_mpch,
                                              const PowerSpectrumOptions& opts) {
  check_options(opts);
  if (!(box_size_mpch > 0.0) || !std::isfinite(box_size_mpch))
    throw Error("power spectrum",
                "box size must be positive, got " + std::to_string(box_size_mpch));
  const int e = guarded_forward(fft);
  return power_spectrum_of_transform(fft, box_size_mpch, opts, e);
}

template <typename T>
CrossSpectrum measure_cross_spectrum(const BasicGrid<T>& a, const BasicGrid<T>& b,
                                     const PowerSpectrumOptions& opts) {
  check_fourier_field(a, "cross spectrum: first field");
  check_fourier_field(b, "cross spectrum: second field");
  check_options(opts);
  if (a.n != b.n || a.box_size_mpch != b.box_size_mpch)
    throw Error("cross spectrum", "fields differ in grid size (" + std::to_string(a.n) + " and " +
                                      std::to_string(b.n) + ") or box size (" +
                                      std::to_string(a.box_size_mpch) + " and " +
                                      std::to_string(b.box_size_mpch) + " Mpc/h)");
  const Binning bn(a.n, opts);
  RealFft3d<T> fa(a.n), fb(a.n);
  const int ea = guarded_forward(fa, a.values.data());
  const int eb = guarded_forward(fb, b.values.data());
  const BinTotals t = reduce(accumulate<3>(bn, fa.complex(), fb.complex()), a.n, a.box_size_mpch,
                             {2 * ea, 2 * eb, ea + eb});
  CrossSpectrum out;
  out.k = t.k;
  out.nmodes = t.nmodes;
  out.pk1 = t.power[0];
  out.pk2 = t.power[1];
  out.pk12 = t.power[2];
  out.r.resize(out.k.size());
  for (size_t i = 0; i < out.k.size(); ++i) {
    out.pk1[i] -= opts.shot_noise;
    out.pk2[i] -= opts.shot_noise;
    // sqrt of each factor: the product of two large powers could overflow.
    const bool defined = out.pk1[i] > 0.0 && out.pk2[i] > 0.0;
    out.r[i] = defined ? out.pk12[i] / std::sqrt(out.pk1[i]) / std::sqrt(out.pk2[i]) : std::nan("");
  }
  require_finite(out.pk1, "P1(k)");
  require_finite(out.pk2, "P2(k)");
  require_finite(out.pk12, "P12(k)");
  return out;
}

template PowerSpectrum measure_power_spectrum_in_place(RealFft3d<float>&, double,
                                                       const PowerSpectrumOptions&);
template PowerSpectrum measure_power_spectrum_in_place(RealFft3d<double>&, double,
                                                       const PowerSpectrumOptions&);
template PowerSpectrum measure_power_spectrum(const BasicGrid<float>&, const PowerSpectrumOptions&);
template PowerSpectrum measure_power_spectrum(const BasicGrid<double>&,
                                              const PowerSpectrumOptions&);
template PowerSpectrum measure_power_spectrum(const BasicGrid<float>&, RealFft3d<float>&,
                                              const PowerSpectrumOptions&);
template PowerSpectrum measure_power_spectrum(const BasicGrid<double>&, RealFft3d<double>&,
                                              const PowerSpectrumOptions&);
template CrossSpectrum measure_cross_spectrum(const BasicGrid<float>&, const BasicGrid<float>&,
                                              const PowerSpectrumOptions&);
template CrossSpectrum measure_cross_spectrum(const BasicGrid<double>&, const BasicGrid<double>&,
                                              const PowerSpectrumOptions&);

}  // namespace ff
