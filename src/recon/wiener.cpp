// The Wiener filter: closed form and PCG in the whitened Fourier variable. See
// include/fieldflow/recon/wiener.hpp.
#include "fieldflow/recon/wiener.hpp"

#include <chrono>
#include <cmath>

#include "fieldflow/core/error.hpp"
#include "fieldflow/flow/base.hpp"

namespace ff {

namespace {

using cplx = std::complex<double>;

// Weighted so that it equals n^3 times the real-space inner product of the inverse transforms.
double dot(const std::vector<cplx>& a, const std::vector<cplx>& b, int n) {
  const int nh = n / 2 + 1;
  double sum = 0.0;
  for (size_t m = 0; m < a.size(); ++m)
    sum += half_complex_weight(int(m % nh), n) *
           (a[m].real() * b[m].real() + a[m].imag() * b[m].imag());
  return sum;
}

}  // namespace

WienerFilter::WienerFilter(int n, std::vector<double> prior_eigenvalues,
                           std::vector<double> inverse_noise, int threads)
    : n_(n), lambda_(std::move(prior_eigenvalues)), weight_(std::move(inverse_noise)) {
  const size_t N = size_t(n) * n * n, modes = size_t(n) * n * (n / 2 + 1);
  if (lambda_.size() != modes)
    throw Error("wiener", "expected " + std::to_string(modes) + " prior mode variances");
  if (weight_.size() != N)
    throw Error("wiener", "expected " + std::to_string(N) + " noise weights");
  sqrt_lambda_.resize(modes);
  for (size_t m = 0; m < modes; ++m) {
    if (!(lambda_[m] > 0) || !std::isfinite(lambda_[m]))
      throw Error("wiener", "prior mode variances must be positive and finite");
    sqrt_lambda_[m] = std::sqrt(lambda_[m]);
  }
  uniform_ = weight_[0] > 0;
  double sum = 0.0;
  for (size_t i = 0; i < N; ++i) {
    if (!(weight_[i] >= 0) || !std::isfinite(weight_[i]))
      throw Error("wiener", "inverse noise must be finite and >= 0");
    sum += weight_[i];
    if (weight_[i] != weight_[0]) uniform_ = false;
  }
  weight_mean_ = sum / double(N);
  fft_ = std::make_unique<RealFft3d<double>>(n, threads);
}

WienerFilter::~WienerFilter() = default;

void WienerFilter::apply_whitened(const cplx* u, cplx* out) {
  const size_t N = fft_->real_size(), modes = this->modes();
  cplx* c = fft_->complex();
  for (size_t m = 0; m < modes; ++m) c[m] = sqrt_lambda_[m] * u[m];
  fft_->inverse();
  double* r = fft_->real();
  const double inv_N = 1.0 / double(N);
  for (size_t i = 0; i < N; ++i) r[i] *= weight_[i] * inv_N;
  fft_->forward();
  for (size_t m = 0; m < modes; ++m) out[m] = u[m] + sqrt_lambda_[m] * c[m];
}

WienerResult WienerFilter::solve(const std::vector<double>& data, double tolerance,
                                 int max_iterations, bool allow_closed_form) {
  const auto start = std::chrono::steady_clock::now();
  const size_t N = fft_->real_size(), modes = this->modes();
  if (data.size() != N) throw Error("wiener", "data has the wrong size");
  WienerResult result;
  double* real = fft_->real();
  cplx* c = fft_->complex();
  for (size_t i = 0; i < N; ++i) real[i] = weight_[i] * data[i];
  fft_->forward();
  std::vector<cplx> b(modes), u(modes, cplx(0)), r(modes), p(modes), Ap(modes);
  for (size_t m = 0; m < modes; ++m) b[m] = sqrt_lambda_[m] * c[m];
  const double b_norm = std::sqrt(dot(b, b, n_));

  if (allow_closed_form && uniform_) {
    // (1 + lambda w) u = b exactly: the operator is diagonal.
    const double w = weight_[0];
    for (size_t m = 0; m < modes; ++m) u[m] = b[m] / (1.0 + lambda_[m] * w);
    result.closed_form = true;
  } else if (b_norm > 0) {
    std::vector<double> precond(modes);
    for (size_t m = 0; m < modes; ++m) precond[m] = 1.0 / (1.0 + lambda_[m] * weight_mean_);
    r = b;
    for (size_t m = 0; m < modes; ++m) p[m] = precond[m] * r[m];
    double rz = dot(r, p, n_);
    const int nh = n_ / 2 + 1;
    while (result.iterations < max_iterations) {
      apply_whitened(p.data(), Ap.data());
      const double alpha = rz / dot(p, Ap, n_);
      double rz_new = 0.0, rr = 0.0;
      for (size_t m = 0; m < modes; ++m) {
        u[m] += alpha * p[m];
        r[m] -= alpha * Ap[m];
        const double w = half_complex_weight(int(m % nh), n_);
        const double r2 = std::norm(r[m]);
        rr += w * r2;
        rz_new += w * precond[m] * r2;
      }
      ++result.iterations;
      if (std::sqrt(rr) <= tolerance * b_norm) break;
      const double beta = rz_new / rz;
      rz = rz_new;
      for (size_t m = 0; m < modes; ++m) p[m] = precond[m] * r[m] + beta * p[m];
    }
  }
  // The residual reached, recomputed from u (the recurrence drifts).
  apply_whitened(u.data(), Ap.data());
  double rr = 0.0;
  for (size_t m = 0; m < modes; ++m) Ap[m] = b[m] - Ap[m];
  rr = dot(Ap, Ap, n_);
  result.relative_residual = b_norm > 0 ? std::sqrt(rr) / b_norm : 0.0;
  for (size_t m = 0; m < modes; ++m) c[m] = sqrt_lambda_[m] * u[m];
  fft_->inverse();
  result.x.resize(N);
  for (size_t i = 0; i < N; ++i) result.x[i] = real[i] / double(N);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace ff
