#include "fieldflow/stats/bispectrum.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/stats/power_spectrum.hpp"

namespace ff {

namespace {
constexpr int kThreadedFromN = 48;  // grids at least this large use OpenMP threads
}  // namespace

EquilateralBispectrum::EquilateralBispectrum(int n, double box_size_mpch,
                                             const BispectrumOptions& opts,
                                             BispectrumProgress progress)
    : n_(n), box_size_mpch_(box_size_mpch), opts_(opts), progress_(std::move(progress)) {
  if (n < 2 || n % 2 != 0)
    throw Error("bispectrum",
                "grid size must be even and >= 2 for Fourier statistics, got " + std::to_string(n));
  if (!(box_size_mpch > 0.0) || !std::isfinite(box_size_mpch))
    throw Error("bispectrum", "box size must be positive, got " + format_number(box_size_mpch));
  if (!(opts.kbin_width > 0.0) || !std::isfinite(opts.kbin_width))
    throw Error("bispectrum", "bin width must be positive, got " + format_number(opts.kbin_width));
  const double w = opts.kbin_width;
  // Centres i W up to N/2 (k_N); a centre within rounding of N/2 counts as N/2.
  for (int i = 1; i * w <= n / 2 + 1e-9; ++i) {
    const double lo = std::max(0.0, (i - 1) * w), hi = (i + 1) * w;
    // |n|^2 is an integer: an edge within rounding of it counts as that integer (left edge in,
    // right edge out, as Pylians3's k_min <= k < k_max).
    const double eps = 1e-9 * std::max(1.0, hi * hi);
    centre_.push_back(i * w);
    lo_sq_.push_back(lo * lo - eps);
    hi_sq_.push_back(hi * hi - eps);
  }
  compensation_ = window_compensation(n, opts.mas);
  // Threads only pay on large grids; on small ones (tests, 16^3) their start-up dominates.
  fft_ = std::make_unique<RealFft3d<double>>(n, n >= kThreadedFromN ? 0 : 1);
  const double volume = double(n) * n * n;
  for (int s = 0; s < shells(); ++s) {
    select_shell(s, true);
    // Count the modes before the inverse transform overwrites them.
    double modes = 0.0;
    const int nc = n / 2 + 1;
    for (size_t at = 0; at < fft_->complex_size(); ++at)
      if (fft_->complex()[at].real() != 0.0) modes += half_complex_weight(int(at % nc), n);
    modes_.push_back(modes);
    fft_->inverse();
    // sum_x I^3 = N^3 x (ordered triplets in the shell that sum to 0 mod N).
    triangles_.push_back(cube_sum() / volume);
  }
}

void EquilateralBispectrum::select_shell(int s, bool indicator) {
  const int n = n_, nc = n / 2 + 1;
  const double lo = lo_sq_[s], hi = hi_sq_[s];
  std::complex<double>* out = fft_->complex();
  const std::complex<double>* in = modes_of_field_.data();
#pragma omp parallel for schedule(static) if (n >= kThreadedFromN)
  for (int a = 0; a < n; ++a) {
    const int wa = fft_wavenumber(a, n);
    for (int b = 0; b < n; ++b) {
      const int wb = fft_wavenumber(b, n);
      const size_t row = (size_t(a) * n + b) * nc;
      for (int c = 0; c < nc; ++c) {
        const double sq = double(wa * wa + wb * wb + c * c);
        const bool inside = sq > 0.0 && sq >= lo && sq < hi;
        out[row + c] = !inside ? std::complex<double>(0.0) : indicator ? 1.0 : in[row + c];
      }
    }
  }
}

double EquilateralBispectrum::cube_sum() {
  const int n = n_;
  std::vector<double> planes(size_t(n), 0.0);
  const double* v = fft_->real();
#pragma omp parallel for schedule(static) if (n >= kThreadedFromN)
  for (int a = 0; a < n; ++a) {
    double sum = 0.0;
    const double* plane = v + size_t(a) * n * n;
    for (size_t i = 0; i < size_t(n) * n; ++i) sum += plane[i] * plane[i] * plane[i];
    planes[a] = sum;
  }
  double total = 0.0;
  for (double p : planes) total += p;  // in plane order: the same whatever the thread count
  return total;
}

template <typename T>
void EquilateralBispectrum::transform(const BasicGrid<T>& field) {
  double* real = fft_->real();
  for (size_t i = 0; i < field.values.size(); ++i) real[i] = double(field.values[i]);
  fft_->forward();
  const int n = n_, nc = n / 2 + 1;
  modes_of_field_.assign(fft_->complex(), fft_->complex() + fft_->complex_size());
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b) {
      const double wab = compensation_[a] * compensation_[b];
      const size_t row = (size_t(a) * n + b) * nc;
      for (int c = 0; c < nc; ++c) modes_of_field_[row + c] *= wab * compensation_[c];
    }
}

template <typename T>
Bispectrum EquilateralBispectrum::measure(const BasicGrid<T>& field, const char* what) {
  check_fourier_field(field, what);
  if (field.n != n_ || field.box_size_mpch != box_size_mpch_)
    throw Error(what, "grid " + std::to_string(field.n) + "^3 in a box of " +
                          format_number(field.box_size_mpch) +
                          " Mpc/h differs from the bispectrum's " + std::to_string(n_) + "^3 in " +
                          format_number(box_size_mpch_) + " Mpc/h");
  transform(field);
  const int n = n_, nc = n / 2 + 1;
  const double kf = 2.0 * std::numbers::pi / box_size_mpch_;
  const double l3 = box_size_mpch_ * box_size_mpch_ * box_size_mpch_;
  const double n3 = double(n) * n * n;
  Bispectrum out;
  for (int s = 0; s < shells(); ++s) {
    if (progress_) progress_(s, shells());
    if (!(triangles_[s] > 0.5)) continue;  // no closed triangle in this shell
    // P on the shell: mean |delta_k|^2 over its modes (the half-complex planes c = 0, N/2 once).
    select_shell(s, false);
    double power = 0.0;
    const std::complex<double>* modes = fft_->complex();
    for (size_t at = 0; at < fft_->complex_size(); ++at) {
      const int c = int(at % nc);
      power += half_complex_weight(c, n) * std::norm(modes[at]);
    }
    const double pk = l3 / (n3 * n3) * power / modes_[s];
    fft_->inverse();  // unnormalised: d^u = N^3 d, so sum_x (d^u)^3 = N^3 sum over triplets
    const double mean_triplet = cube_sum() / n3 / triangles_[s];
    const double bk = l3 * l3 / (n3 * n3 * n3) * mean_triplet;
    // Never a non-finite result from finite input (a triplet product overflows near 1e102).
    if (!std::isfinite(pk) || !std::isfinite(bk))
      throw Error(what, std::string("bispectrum: ") + (std::isfinite(pk) ? "B(k)" : "P(k)") +
                            " exceeds double precision (the field's values are too large; "
                            "rescale them)");
    out.k.push_back(kf * centre_[s]);
    out.bk.push_back(bk);
    out.pk.push_back(pk);
    out.qk.push_back(pk != 0.0 ? bk / (3.0 * pk * pk) : std::nan(""));
    out.ntriangles.push_back(std::round(triangles_[s]));
  }
  if (progress_) progress_(shells(), shells());
  return out;
}

template <typename T>
Bispectrum measure_equilateral_bispectrum(const BasicGrid<T>& field, const BispectrumOptions& opts,
                                          BispectrumProgress progress) {
  check_fourier_field(field, "bispectrum: field");
  EquilateralBispectrum estimator(field.n, field.box_size_mpch, opts, std::move(progress));
  return estimator.measure(field);
}

template Bispectrum EquilateralBispectrum::measure(const BasicGrid<float>&, const char*);
template Bispectrum EquilateralBispectrum::measure(const BasicGrid<double>&, const char*);
template Bispectrum measure_equilateral_bispectrum(const BasicGrid<float>&,
                                                   const BispectrumOptions&, BispectrumProgress);
template Bispectrum measure_equilateral_bispectrum(const BasicGrid<double>&,
                                                   const BispectrumOptions&, BispectrumProgress);

}  // namespace ff
