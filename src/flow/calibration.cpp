// The spectral calibration step. See SpectralCalibration in include/fieldflow/flow/layers.hpp.
#include <cmath>

#include "fieldflow/core/error.hpp"
#include "fieldflow/flow/layers.hpp"

namespace ff {

template <typename T>
SpectralCalibration<T>::SpectralCalibration(std::string name, int bins_per_nyquist)
    : log_scale(name + ".log_scale", size_t(scale_count(bins_per_nyquist))),
      name_(std::move(name)),
      bins_(bins_per_nyquist) {
  if (bins_per_nyquist < 1) throw Error("flow.calibration_bins", "must be positive");
}

template <typename T>
int SpectralCalibration<T>::scale_count(int bins_per_nyquist) {
  return int(std::floor(std::sqrt(3.0) * bins_per_nyquist)) + 1;
}

template <typename T>
void SpectralCalibration<T>::prepare(int n) {
  if (n == n_) return;
  const int half = n / 2 + 1;
  const int count = scale_count(bins_);
  mode_bin_.assign(size_t(n) * n * half, 0);
  mode_counts_.assign(size_t(count), 0.0);
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c < half; ++c) {
        const double ka = fft_wavenumber(a, n), kb = fft_wavenumber(b, n);
        const double k_over_nyquist = std::sqrt(ka * ka + kb * kb + double(c) * c) / (0.5 * n);
        // The small offset keeps modes on a bin edge (e.g. |k| = k_F at bins_ = n/2) in the
        // upper bin whatever the rounding of the square root.
        const int bin = std::min(count - 1, int(std::floor(k_over_nyquist * bins_ + 1e-9)));
        mode_bin_[(size_t(a) * n + b) * half + c] = bin;
        mode_counts_[size_t(bin)] += half_complex_weight(c, n);
      }
  // One thread: the flow's fields are small, and the steps around run their own threads.
  fft_ = std::make_unique<RealFft3d<double>>(n, 1);
  spectrum_.resize(fft_->complex_size());
  n_ = n;
}

template <typename T>
std::vector<double> SpectralCalibration<T>::bin_mode_counts(int n) {
  prepare(n);
  return mode_counts_;
}

template <typename T>
void SpectralCalibration<T>::apply(const Tensor<T>& in, Tensor<T>& out, double sign) {
  prepare(in.n);
  out.resize_like(in);
  const int C = in.channels;
  const size_t N = fft_->real_size(), M = fft_->complex_size();
  std::vector<double> factor(log_scale.size());
  for (size_t b = 0; b < factor.size(); ++b)
    factor[b] = std::exp(sign * double(log_scale.value[b]));
  const double norm = 1.0 / double(N);
  for (int f = 0; f < in.batch; ++f)
    for (int ch = 0; ch < C; ++ch) {
      const T* src = in.field(f);
      T* dst = out.field(f);
      double* real = fft_->real();
      for (size_t v = 0; v < N; ++v) real[v] = double(src[v * C + ch]);
      fft_->forward();
      std::complex<double>* spec = fft_->complex();
      for (size_t m = 0; m < M; ++m) spec[m] *= factor[size_t(mode_bin_[m])] * norm;
      fft_->inverse();
      for (size_t v = 0; v < N; ++v) dst[v * C + ch] = T(real[v]);
    }
}

template <typename T>
void SpectralCalibration<T>::forward(const Tensor<T>& x, Tensor<T>& y, T* logdet) {
  apply(x, y, 1.0);
  double per_field = 0.0;
  for (size_t b = 0; b < log_scale.size(); ++b)
    per_field += mode_counts_[b] * double(log_scale.value[b]);
  per_field *= x.channels;
  for (int f = 0; f < x.batch; ++f) logdet[f] += T(per_field);
}

template <typename T>
void SpectralCalibration<T>::inverse(const Tensor<T>& y, Tensor<T>& x) {
  apply(y, x, -1.0);
}

template <typename T>
std::vector<double> SpectralCalibration<T>::bin_inner_products(const Tensor<T>& x,
                                                               const Tensor<T>& g) {
  if (x.batch != g.batch || x.n != g.n || x.channels != g.channels)
    throw Error("flow", "spectral calibration: field and gradient shapes differ");
  prepare(x.n);
  const int C = x.channels, n = x.n, half = n / 2 + 1;
  const size_t N = fft_->real_size(), M = fft_->complex_size();
  std::vector<double> sums(log_scale.size(), 0.0);
  for (int f = 0; f < x.batch; ++f)
    for (int ch = 0; ch < C; ++ch) {
      double* real = fft_->real();
      for (size_t v = 0; v < N; ++v) real[v] = double(x.field(f)[v * C + ch]);
      fft_->forward();
      std::copy(fft_->complex(), fft_->complex() + M, spectrum_.begin());
      for (size_t v = 0; v < N; ++v) real[v] = double(g.field(f)[v * C + ch]);
      fft_->forward();
      const std::complex<double>* gk = fft_->complex();
      for (size_t m = 0; m < M; ++m) {
        const int c = int(m % size_t(half));
        sums[size_t(mode_bin_[m])] +=
            half_complex_weight(c, n) *
            (gk[m].real() * spectrum_[m].real() + gk[m].imag() * spectrum_[m].imag());
      }
    }
  for (double& s : sums) s /= double(N);
  return sums;
}

template <typename T>
void SpectralCalibration<T>::backward(const Tensor<T>& x, const Tensor<T>& dy, const T* dlogdet,
                                      Tensor<T>& dx, Backprop what) {
  if (what != Backprop::input) {
    // dL/dlog a_b = <dy, F^-1(a 1_b F x)> + (sum of dL/dlogdet) * channels * modes in b.
    const std::vector<double> inner = bin_inner_products(x, dy);
    double dlogdet_sum = 0.0;
    for (int f = 0; f < x.batch; ++f) dlogdet_sum += double(dlogdet[f]);
    for (size_t b = 0; b < log_scale.size(); ++b)
      log_scale.grad[b] += T(std::exp(double(log_scale.value[b])) * inner[b] +
                             dlogdet_sum * x.channels * mode_counts_[b]);
  }
  // The map is symmetric: dL/dx = A dL/dy.
  if (what != Backprop::params) apply(dy, dx, 1.0);
}

template <typename T>
void SpectralCalibration<T>::inverse_backward(const Tensor<T>&, const Tensor<T>& dx,
                                              Tensor<T>& dy) {
  apply(dx, dy, -1.0);
}

template class SpectralCalibration<float>;
template class SpectralCalibration<double>;

}  // namespace ff
