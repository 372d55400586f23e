// The Wiener filter: closed form and PCG in the whitened Fourier variable. See
// include/fieldflow/recon/wiener.hpp.
#include "fieldflow/recon/wiener.hpp"

#include <chrono>
#include <cmath>
#include <ctime>

#include "fieldflow/core/error.hpp"
#include "fieldflow/flow/base.hpp"

namespace ff {

namespace {

using cplx = std::complex<double>;

// The vectors are half-complex: rows of n/2 + 1 modes, each row's first mode and (n even) last
// mode counted once, every other mode twice (half_complex_weight). The loops below run over the
// whole array with weight 2 and take the row ends off afterwards: no index arithmetic per mode, so
// they vectorise (omp simd lets the compiler reorder the double sums).
template <typename F>
double row_ends_sum(size_t modes, int n, F&& term) {
  const size_t nh = size_t(n / 2 + 1);
  double sum = 0.0;
  for (size_t m = 0; m < modes; m += nh) {
    sum += term(m);
    if (n % 2 == 0 && nh > 1) sum += term(m + nh - 1);
  }
  return sum;
}

// Weighted so that it equals n^3 times the real-space inner product of the inverse transforms.
double dot(const cplx* a, const cplx* b, size_t modes, int n) {
  const double* x = reinterpret_cast<const double*>(a);
  const double* y = reinterpret_cast<const double*>(b);
  double all = 0.0;
#pragma omp simd reduction(+ : all)
  for (size_t i = 0; i < 2 * modes; ++i) all += x[i] * y[i];
  return 2.0 * all - row_ends_sum(modes, n, [&](size_t m) {
           return a[m].real() * b[m].real() + a[m].imag() * b[m].imag();
         });
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

// The transform's complex buffer holds S^{1/2} v: to real space, times W, back (one round trip).
// Returns sum_i W_i g_i^2 / n^3 over the real-space g = S^{1/2} v (unnormalised inverse), which is
// v.(S^{1/2} W S^{1/2} v) in the weighted Fourier inner product (Parseval): the CG's p.Ap without
// another pass over the modes.
double WienerFilter::weight_in_real_space() {
  const size_t N = fft_->real_size();
  fft_->inverse();
  double* r = fft_->real();
  const double inv_N = 1.0 / double(N);
  const double* w = weight_.data();
  double quadratic = 0.0;
#pragma omp simd reduction(+ : quadratic)
  for (size_t i = 0; i < N; ++i) {
    const double wg = w[i] * r[i];
    quadratic += wg * r[i];
    r[i] = wg * inv_N;
  }
  fft_->forward();
  return quadratic * inv_N;
}

void WienerFilter::apply_whitened(const cplx* u, cplx* out) {
  const size_t modes = this->modes();
  cplx* c = fft_->complex();
  for (size_t m = 0; m < modes; ++m) c[m] = sqrt_lambda_[m] * u[m];
  weight_in_real_space();
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
  std::vector<cplx> b(modes), u(modes, cplx(0)), r(modes), p(modes, cplx(0)), Ap(modes);
  for (size_t m = 0; m < modes; ++m) b[m] = sqrt_lambda_[m] * c[m];
  const double b_norm = std::sqrt(dot(b.data(), b.data(), modes, n_));

  if (allow_closed_form && uniform_) {
    // (1 + lambda w) u = b exactly: the operator is diagonal.
    const double w = weight_[0];
    for (size_t m = 0; m < modes; ++m) u[m] = b[m] / (1.0 + lambda_[m] * w);
    result.closed_form = true;
  } else if (b_norm > 0) {
    // Chronopoulos-Gear PCG (single reduction): the operator is applied to z = M^-1 r instead of
    // to p, and A p is carried by the recurrence s = A z + beta s, so both of an iteration's
    // inner products, (r, z) and (z, A z), are known before the vector updates. Then one pass
    // over the modes per iteration, around its FFT round trip: A z = z + S^{1/2} c from the
    // transform's buffer c, the updates of p, s, u and r, the new z, and S^{1/2} z written back
    // into c for the next round trip; |r|^2, (r, z) and |z|^2 are summed on the way. The real-space
    // multiply by W gives z.(S^{1/2} W S^{1/2} z) (Parseval), so (z, A z) needs no pass of its own.
    // At 64^3 the vectors live in L3: five vectors read and written, two diagonals read. The pass
    // is a SIMD kernel dispatched to the CPU's best target (recon/wiener_kernels.cpp).
    r = b;
    std::vector<cplx> s(modes, cplx(0));
    double* pd = reinterpret_cast<double*>(p.data());
    double* sd = reinterpret_cast<double*>(s.data());
    double* rd = reinterpret_cast<double*>(r.data());
    double* ud = reinterpret_cast<double*>(u.data());
    double* cd = reinterpret_cast<double*>(c);
    const double* sl = sqrt_lambda_.data();
    std::vector<double> precond(modes);
    for (size_t m = 0; m < modes; ++m) precond[m] = 1.0 / (1.0 + lambda_[m] * weight_mean_);
    const double* pc = precond.data();
    // The inner products of the current r and z = M^-1 r: (r, z) and |z|^2, row ends taken off.
    auto weighted = [&](double rz_all, double zz_all, double& rz, double& zz) {
      rz =
          2.0 * rz_all - row_ends_sum(modes, n_, [&](size_t m) { return pc[m] * std::norm(r[m]); });
      zz = 2.0 * zz_all -
           row_ends_sum(modes, n_, [&](size_t m) { return pc[m] * pc[m] * std::norm(r[m]); });
    };
    // z0 = M^-1 b into the transform's buffer as S^{1/2} z0.
    double rz_all = 0.0, zz_all = 0.0;
#pragma omp simd reduction(+ : rz_all, zz_all)
    for (size_t m = 0; m < modes; ++m) {
      const double r2 = rd[2 * m] * rd[2 * m] + rd[2 * m + 1] * rd[2 * m + 1];
      cd[2 * m] = sl[m] * pc[m] * rd[2 * m];
      cd[2 * m + 1] = sl[m] * pc[m] * rd[2 * m + 1];
      rz_all += pc[m] * r2;
      zz_all += pc[m] * pc[m] * r2;
    }
    double rz, zz;
    weighted(rz_all, zz_all, rz, zz);
    double alpha = rz / (zz + weight_in_real_space()), beta = 0.0;
    const std::clock_t iterations_start = std::clock();
    while (result.iterations < max_iterations) {
      // z = M^-1 r, A z = z + S^{1/2} c; p = z + beta p, s = A z + beta s; u += alpha p,
      // r -= alpha s; then the new z into c as S^{1/2} z.
      const detail::CgSums all =
          detail::wiener_cg_pass(modes, pc, sl, alpha, beta, pd, sd, ud, rd, cd);
      rz_all = all.rz;
      zz_all = all.zz;
      const double rr =
          2.0 * all.rr - row_ends_sum(modes, n_, [&](size_t m) { return std::norm(r[m]); });
      ++result.iterations;
      if (std::sqrt(rr) <= tolerance * b_norm || result.iterations >= max_iterations) break;
      const double rz_old = rz;
      weighted(rz_all, zz_all, rz, zz);
      const double zAz = zz + weight_in_real_space();
      beta = rz / rz_old;
      alpha = rz / (zAz - beta * rz / alpha);
    }
    result.iterations_cpu_seconds = double(std::clock() - iterations_start) / CLOCKS_PER_SEC;
  }
  // The residual reached, recomputed from u (the recurrence drifts).
  apply_whitened(u.data(), Ap.data());
  double rr = 0.0;
  for (size_t m = 0; m < modes; ++m) Ap[m] = b[m] - Ap[m];
  rr = dot(Ap.data(), Ap.data(), modes, n_);
  result.relative_residual = b_norm > 0 ? std::sqrt(rr) / b_norm : 0.0;
  for (size_t m = 0; m < modes; ++m) c[m] = sqrt_lambda_[m] * u[m];
  fft_->inverse();
  result.x.resize(N);
  for (size_t i = 0; i < N; ++i) result.x[i] = real[i] / double(N);
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace ff
