// Correlated Gaussian base distribution. See include/fieldflow/flow/base.hpp.
#include "fieldflow/flow/base.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/rng.hpp"

namespace ff {

CorrelatedGaussian::CorrelatedGaussian(int n, std::vector<double> eigenvalues)
    : n_(n), eigenvalues_(std::move(eigenvalues)) {
  const size_t modes = size_t(n) * n * (n / 2 + 1);
  if (eigenvalues_.size() != modes)
    throw Error("correlated_gaussian", "expected " + std::to_string(modes) + " mode variances");
  double log_det = 0.0;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c <= n / 2; ++c) {
        const double lambda = eigenvalues_[(size_t(a) * n + b) * (n / 2 + 1) + c];
        if (!(lambda > 0) || !std::isfinite(lambda))
          throw Error("correlated_gaussian", "mode variances must be positive and finite");
        log_det += half_complex_weight(c, n) * std::log(2 * std::numbers::pi * lambda);
      }
  log_norm_ = -0.5 * log_det;
  fft_ = std::make_unique<RealFft3d<double>>(n, 1);
}

double tabulated_power(const std::vector<double>& k_hmpc, const std::vector<double>& pk, double k) {
  if (k <= k_hmpc.front()) return pk.front();
  if (k >= k_hmpc.back()) return pk.back();
  const size_t i = size_t(std::upper_bound(k_hmpc.begin(), k_hmpc.end(), k) - k_hmpc.begin());
  const double t = std::log(k / k_hmpc[i - 1]) / std::log(k_hmpc[i] / k_hmpc[i - 1]);
  return std::exp((1 - t) * std::log(pk[i - 1]) + t * std::log(pk[i]));
}

CorrelatedGaussian CorrelatedGaussian::from_power(int n, double box_size_mpch,
                                                  const std::vector<double>& k_hmpc,
                                                  const std::vector<double>& pk,
                                                  double pk_at_zero) {
  if (k_hmpc.size() != pk.size() || k_hmpc.size() < 2)
    throw Error("power spectrum", "need at least two (k, P) rows of equal length");
  if (!(box_size_mpch > 0)) throw Error("power spectrum", "box size must be positive");
  if (!(pk_at_zero >= 0)) throw Error("power spectrum", "P at k = 0 must be 0 or positive");
  for (size_t i = 0; i < k_hmpc.size(); ++i) {
    if (!(k_hmpc[i] > 0) || !(pk[i] > 0))
      throw Error("power spectrum", "k and P must be positive (row " + std::to_string(i) + ")");
    if (i > 0 && !(k_hmpc[i] > k_hmpc[i - 1]))
      throw Error("power spectrum", "k must increase (row " + std::to_string(i) + ")");
  }
  auto power = [&](double k) { return tabulated_power(k_hmpc, pk, k); };
  const double kf = 2 * std::numbers::pi / box_size_mpch;
  const double volume_factor = double(n) * n * n / (box_size_mpch * box_size_mpch * box_size_mpch);
  std::vector<double> lambda(size_t(n) * n * (n / 2 + 1));
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c <= n / 2; ++c) {
        const double ka = fft_wavenumber(a, n), kb = fft_wavenumber(b, n);
        const double k = kf * std::sqrt(ka * ka + kb * kb + double(c) * c);
        lambda[(size_t(a) * n + b) * (n / 2 + 1) + c] = power(k) * volume_factor;
      }
  if (pk_at_zero > 0) lambda[0] = pk_at_zero * volume_factor;
  return CorrelatedGaussian(n, std::move(lambda));
}

double CorrelatedGaussian::log_prob(const double* u) {
  const size_t N = size_t(n_) * n_ * n_;
  std::copy(u, u + N, fft_->real());
  fft_->forward();
  const std::complex<double>* uk = fft_->complex();
  double quad = 0.0;  // u^T S^-1 u = (1/N) sum_k |u_k|^2 / lambda_k over all N modes
  const int nh = n_ / 2 + 1;
  for (size_t m = 0; m < fft_->complex_size(); ++m)
    quad += half_complex_weight(int(m % nh), n_) * std::norm(uk[m]) / eigenvalues_[m];
  return -0.5 * quad / double(N) + log_norm_;
}

double CorrelatedGaussian::log_prob_grad(const double* u, double* grad) {
  const size_t N = size_t(n_) * n_ * n_;
  std::copy(u, u + N, fft_->real());
  fft_->forward();
  std::complex<double>* uk = fft_->complex();
  double quad = 0.0;
  const int nh = n_ / 2 + 1;
  for (size_t m = 0; m < fft_->complex_size(); ++m) {
    quad += half_complex_weight(int(m % nh), n_) * std::norm(uk[m]) / eigenvalues_[m];
    uk[m] /= eigenvalues_[m];
  }
  fft_->inverse();  // S^-1 u = (1/N) IFFT(u_k / lambda_k)
  const double* r = fft_->real();
  for (size_t i = 0; i < N; ++i) grad[i] = -r[i] / double(N);
  return -0.5 * quad / double(N) + log_norm_;
}

void CorrelatedGaussian::sample(double* u, uint64_t seed, uint64_t stream, double temperature) {
  const size_t N = size_t(n_) * n_ * n_;
  const CounterRng rng(seed, stream);
  double* w = fft_->real();
  for (size_t i = 0; i < N; i += 2) {
    const auto [g1, g2] = rng.normal_pair(i / 2);
    w[i] = g1;
    if (i + 1 < N) w[i + 1] = g2;
  }
  fft_->forward();
  std::complex<double>* wk = fft_->complex();
  for (size_t m = 0; m < fft_->complex_size(); ++m) wk[m] *= std::sqrt(eigenvalues_[m]);
  fft_->inverse();
  const double* r = fft_->real();
  for (size_t i = 0; i < N; ++i) u[i] = temperature * r[i] / double(N);
}

}  // namespace ff
