#pragma once
// Hamiltonian Monte Carlo (Neal 2011) on a generic differentiable target: leapfrog with a mass
// matrix given as an operator (diagonal, or diagonal in Fourier space for fields), a fixed number
// of leapfrog steps with a jittered step size, the step size adapted during warm-up by dual
// averaging (Hoffman & Gelman 2014, Stan's constants), divergent trajectories detected and counted.
// With leapfrog_steps = 1 it is MALA with a Metropolis correction.
//
// Randomness is counter-based: chain c of seed s draws only from CounterRng(s, stream(c, use)), so
// a chain is the same whether it runs alone, beside others in one process, or on another MPI rank.
#include <Eigen/Core>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/rng.hpp"

namespace ff {

// log p(q) up to a constant, and its gradient d log p / dq written into grad (sized by the caller).
// A non-finite value marks q as outside the support (the trajectory is divergent).
using LogDensityGrad = std::function<double(const Eigen::VectorXd& q, Eigen::VectorXd& grad)>;

// Kinetic energy K(p) = p^T M^{-1} p / 2 with p ~ N(0, M).
class MassMatrix {
 public:
  virtual ~MassMatrix() = default;
  // p = M^{1/2} w for white noise w (so p ~ N(0, M)).
  virtual void apply_sqrt(const Eigen::VectorXd& w, Eigen::VectorXd& p) = 0;
  // v = M^{-1} p (the velocity).
  virtual void apply_inverse(const Eigen::VectorXd& p, Eigen::VectorXd& v) = 0;
};

// M = diag(mass); the identity for an empty mass vector of the given dimension.
class DiagonalMass : public MassMatrix {
 public:
  explicit DiagonalMass(Eigen::VectorXd mass);
  void apply_sqrt(const Eigen::VectorXd& w, Eigen::VectorXd& p) override;
  void apply_inverse(const Eigen::VectorXd& p, Eigen::VectorXd& v) override;

 private:
  Eigen::VectorXd sqrt_mass_, inverse_mass_;
};

// M diagonal in Fourier space on an n^3 periodic grid (a circulant matrix): one positive eigenvalue
// per half-complex mode [n][n][n/2+1], M = F^{-1} diag(m_k) F. The natural choice for a field whose
// posterior covariance is close to stationary, e.g. m_k = 1/S_k + 1/N for the Wiener posterior.
class FourierDiagonalMass : public MassMatrix {
 public:
  // threads: of the FFTs (one by default: the grids are small and the caller may run chains in
  // parallel).
  FourierDiagonalMass(int n, const std::vector<double>& mass_eigenvalues, int threads = 1);
  // M becomes D^{1/2} M D^{1/2}, D = diag(scale) per voxel (n^3 finite positive values): a
  // stationary mass rescaled where the posterior is stiffer or softer than its average (one
  // voxel's diagonal element becomes scale times the circulant's).
  void scale_per_voxel(std::vector<double> scale);
  void apply_sqrt(const Eigen::VectorXd& w, Eigen::VectorXd& p) override;
  void apply_inverse(const Eigen::VectorXd& p, Eigen::VectorXd& v) override;

 private:
  void filter(const Eigen::VectorXd& in, const std::vector<double>& factor, Eigen::VectorXd& out);
  int n_;
  std::vector<double> sqrt_mass_, inverse_mass_;  // already divided by n^3 (FFTW's round trip)
  Eigen::VectorXd sqrt_scale_;                    // empty: no per-voxel scale
  Eigen::VectorXd scaled_;                        // apply_inverse's scratch
  std::unique_ptr<RealFft3d<double>> fft_;
};

struct HmcSettings {
  int warmup = 200;         // iterations adapting the step size, not returned
  int samples = 200;        // iterations returned after warm-up
  int leapfrog_steps = 16;  // per trajectory (1 = MALA)
  double step_size = 0.0;   // initial step size; <= 0: found by doubling/halving (Stan's heuristic)
  double target_accept = 0.8;      // dual averaging's target mean acceptance probability
  double jitter = 0.1;             // each trajectory's step size is eps * U(1 - jitter, 1 + jitter)
  double max_energy_error = 1000;  // |H - H0| beyond this (or non-finite) is a divergence
};

// Throws ff::Error("posterior", ...) naming the first out-of-range value.
void validate(const HmcSettings& settings);

// What happened in one iteration.
struct HmcIteration {
  long iteration = 0;  // 0 .. warmup + samples - 1
  bool warmup = false;
  double accept_probability = 0.0;
  bool accepted = false;
  bool divergent = false;
  double step_size = 0.0;    // the step size this trajectory used (after jitter)
  double log_density = 0.0;  // at the chain's state after the iteration
};

struct HmcChainStats {
  double step_size = 0.0;         // the adapted step size used after warm-up
  double acceptance_rate = 0.0;   // mean acceptance probability over the samples
  long divergences = 0;           // divergent trajectories among the samples
  long warmup_divergences = 0;    // ... and during warm-up
  long gradient_evaluations = 0;  // calls of the target, warm-up included
  double seconds = 0.0;           // wall time of the chain
  double target_seconds = 0.0;    // of which inside the target (log density and gradient)
  double observer_seconds = 0.0;  // of which inside the observer
};

// Called after every iteration with the chain's state q (warm-up iterations too; check it.warmup).
using HmcObserver = std::function<void(const HmcIteration& it, const Eigen::VectorXd& q)>;

// Streams of CounterRng(seed, .) that chain c uses: momenta, the accept/jitter uniforms, and the
// step-size search. A caller that draws a chain's start can use hmc_stream(c, HmcStream::init).
enum class HmcStream : uint64_t { momentum = 0, uniforms = 1, step_search = 2, init = 3 };
inline uint64_t hmc_stream(uint64_t chain, HmcStream use) {
  return chain * 4 + uint64_t(use);
}

// Runs chain `chain` of `seed` from q (overwritten with the last state).
HmcChainStats run_hmc_chain(const LogDensityGrad& target, MassMatrix& mass,
                            const HmcSettings& settings, uint64_t seed, uint64_t chain,
                            Eigen::VectorXd& q, const HmcObserver& observe);

// Dual averaging of log step size (Hoffman & Gelman 2014, Algorithm 5; Stan's gamma, t0, kappa).
class DualAveraging {
 public:
  DualAveraging(double initial_step_size, double target_accept);
  // Feeds the acceptance probability of the latest trajectory; returns the next step size.
  double update(double accept_probability);
  // The averaged step size, used after warm-up.
  double final_step_size() const;

 private:
  double mu_, target_, h_bar_ = 0.0, log_eps_ = 0.0, log_eps_bar_ = 0.0;
  long m_ = 0;
};

}  // namespace ff
