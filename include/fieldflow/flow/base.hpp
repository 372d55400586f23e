#pragma once
// Base distributions of the flow, over the latent put back on the field's grid (the squeezes
// undone): the standard normal, and a correlated Gaussian whose covariance S is diagonal in
// Fourier space (a Gaussian random field with power spectrum P(k)), so log N(u; 0, S), its gradient
// and samples all cost a few FFTs. With the identity flow the correlated base is exactly the
// Gaussian prior of the Wiener filter.
#include <cstdint>
#include <memory>
#include <vector>

#include "fieldflow/core/fft.hpp"

namespace ff {

// P(k) of a table at k (h/Mpc): linear in log k - log P, held constant beyond the table (no checks:
// from_power's rule).
double tabulated_power(const std::vector<double>& k_hmpc, const std::vector<double>& pk, double k);

// Eigenvalues of a circulant covariance on an n^3 grid, one per half-complex mode
// [n][n][n/2+1]: variance of the field u along mode k is lambda_k (per voxel), i.e.
// <|u_k|^2> = n^3 lambda_k for FFTW's unnormalised forward transform.
class CorrelatedGaussian {
 public:
  CorrelatedGaussian(int n, std::vector<double> eigenvalues);
  // From a tabulated P(k) (k in h/Mpc, P in (Mpc/h)^3) for a box of side box_size_mpch:
  // lambda_k = P(|k|) n^3 / L^3 (the convention P = L^3 |u_k|^2 / n^6); P is interpolated linearly
  // in log k - log P, held constant beyond the table. The k = 0 mode (the field's mean, whose
  // variance is pk_at_zero / L^3) takes pk_at_zero, or, when that is 0, P at the smallest
  // tabulated k.
  static CorrelatedGaussian from_power(int n, double box_size_mpch,
                                       const std::vector<double>& k_hmpc,
                                       const std::vector<double>& pk, double pk_at_zero);

  int n() const { return n_; }
  const std::vector<double>& eigenvalues() const { return eigenvalues_; }
  // log N(u; 0, S), normalisation included; u has n^3 values (x, y, z row-major).
  double log_prob(const double* u);
  // The same and grad = d log N / du = -S^{-1} u.
  double log_prob_grad(const double* u, double* grad);
  // u = temperature * S^{1/2} w with w white noise from CounterRng(seed, stream).
  void sample(double* u, uint64_t seed, uint64_t stream, double temperature);
  // The normalisation -1/2 log det(2 pi S).
  double log_normalisation() const { return log_norm_; }

 private:
  int n_;
  std::vector<double> eigenvalues_;
  double log_norm_ = 0.0;
  std::unique_ptr<RealFft3d<double>> fft_;
};

}  // namespace ff
