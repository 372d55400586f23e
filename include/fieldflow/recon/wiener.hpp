#pragma once
// The Wiener filter x = (S^-1 + M^T N^-1 M)^-1 M^T N^-1 d with a Gaussian prior S diagonal in
// Fourier space (eigenvalues lambda_k per half-complex mode, as CorrelatedGaussian: the variance of
// mode k per voxel, <|x_k|^2> = n^3 lambda_k) and white noise N with a per-voxel sigma.
//
// With no mask and uniform noise the closed form x_k = lambda_k / (lambda_k + sigma^2) d_k holds.
// Otherwise preconditioned CG in the whitened variable u, x = S^{1/2} u:
//   (I + S^{1/2} W S^{1/2}) u = S^{1/2} W d,   W = M^T N^-1 (diagonal in real space),
// which is better conditioned than the original system (its eigenvalues are >= 1). The vectors
// live in Fourier space (half-complex, inner product weighted so that it equals n^3 times the
// real-space one), so S^{1/2} and the preconditioner are diagonal there and each iteration costs
// exactly one FFT round trip (inverse, multiply by W, forward). The preconditioner is
// (1 + lambda_k w_mean)^-1 with w_mean the mean of W over the box (Papez, Grigori & Stompor 2018).
// Stops when |r| <= tolerance |b| in the whitened system's norm.
#include <memory>
#include <vector>

#include "fieldflow/core/fft.hpp"

namespace ff {

struct WienerResult {
  std::vector<double> x;           // n^3 values, real space
  int iterations = 0;              // 0 for the closed form
  double relative_residual = 0.0;  // |b - A u| / |b| recomputed from the final u
  double seconds = 0.0;
  // Processor time of the PCG iterations alone (std::clock: every thread's, summed), without the
  // set-up and the final residual check: the figure a per-iteration cost is taken from.
  double iterations_cpu_seconds = 0.0;
  bool closed_form = false;
};

namespace detail {
// Whole-array sums of one PCG pass: |r|^2, r.M^-1 r and |M^-1 r|^2 over every entry (the caller
// takes the half-complex row ends off).
struct CgSums {
  double rr = 0, rz = 0, zz = 0;
};
// One pass of WienerFilter's single-reduction PCG over `modes` interleaved complex values (p, s, u,
// r, c) with per-mode M^-1 (precond) and S^{1/2} (sqrt_lambda): z = M^-1 r, p = z + beta p,
// s = z + S^{1/2} c + beta s, u += alpha p, r -= alpha s, c = S^{1/2} M^-1 r. SIMD, dispatched to
// the best Highway target (FIELDFLOW_SIMD_TARGET forces one, core/simd.hpp).
CgSums wiener_cg_pass(size_t modes, const double* precond, const double* sqrt_lambda, double alpha,
                      double beta, double* p, double* s, double* u, double* r, double* c);
}  // namespace detail

class WienerFilter {
 public:
  // prior_eigenvalues: n * n * (n/2+1) values > 0; inverse_noise: n^3 values >= 0 (mask / sigma^2).
  WienerFilter(int n, std::vector<double> prior_eigenvalues, std::vector<double> inverse_noise,
               int threads = 0);
  ~WienerFilter();

  // Closed form when allowed and applicable (every voxel observed with the same sigma), else PCG.
  WienerResult solve(const std::vector<double>& data, double tolerance, int max_iterations,
                     bool allow_closed_form = true);
  bool closed_form_applies() const { return uniform_; }
  // One application of the whitened operator to u (half-complex), as the CG does: for timing.
  void apply_whitened(const std::complex<double>* u, std::complex<double>* out);
  RealFft3d<double>& fft() { return *fft_; }
  int n() const { return n_; }
  size_t modes() const { return sqrt_lambda_.size(); }

 private:
  // The transform's complex buffer: inverse, times W, forward; returns the quadratic form.
  double weight_in_real_space();
  int n_;
  std::vector<double> sqrt_lambda_, lambda_, weight_;
  bool uniform_ = false;
  double weight_mean_ = 0.0;
  std::unique_ptr<RealFft3d<double>> fft_;
};

}  // namespace ff
