#pragma once
// Posterior samples of a field under a flow prior, by HMC (recon/hmc.hpp).
//
// What is sampled: the posterior measure p(field | d), in one of two coordinate systems. Both are
// exact reparametrisations of the same measure, so the samples pushed to delta = g(y) are samples
// of p(delta | d) either way (unlike a MAP, which depends on the variable it is taken in):
//   latent ("NeuTra", Hoffman et al. 2019): u, the flow's latent on the input grid; y = f^-1(u),
//     log p(u | d) = log p(d | g(f^-1(u))) + log p_base(u). The flow whitens the prior, so the
//     posterior in u is close to the base Gaussian. The gradient runs through the inverse flow
//     (MultiScaleFlow::inverse_vjp).
//   y: the flow's own input, log p(y | d) = log p(d | g(y)) + log p_flow(y) (the MAP's objective).
// Both use a mass matrix diagonal in Fourier space, m_k = 1/lambda_k + w_eff: the precision of the
// Gaussian approximation of the posterior, with lambda_k the base's (or prior's) variance per mode
// and w_eff the mean of mask / sigma^2 (d delta / dy)^2 over the voxels at the chains' start.
// What is reported is the posterior of delta: its mean, standard deviation, samples, and per k bin
// the distribution of P(k) and r(k) with the truth.
#include <Eigen/Core>
#include <array>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fieldflow/core/settings.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/recon/hmc.hpp"
#include "fieldflow/recon/map.hpp"
#include "fieldflow/recon/mcmc_diagnostics.hpp"
#include "fieldflow/recon/observation.hpp"

namespace ff {

class Communicator;

// How posterior chains are shared between processes: chain c runs on the process with rank
// c mod size, and results are combined by in-place sums over the processes (each process fills
// its own chains' slots, zeros elsewhere). The default is one process; chain_sharing() fills it
// from train's Communicator (sum = allreduce, guarded = its agreed error check).
struct ChainSharing {
  int rank = 0;
  int size = 1;
  std::function<void(double*, size_t)> sum;       // null: one process
  std::function<void(float*, size_t)> sum_float;  // null: one process
  // Runs the chains; a failure on one process must stop every process. Null: just run.
  std::function<void(const std::function<void()>&)> guarded;
};

// The chains shared over comm's ranks (comm must outlive the result). On one rank: sums are
// no-ops and guarded re-throws a failure as it was (comm.guarded).
ChainSharing chain_sharing(const Communicator& comm);

struct PosteriorSettings {
  int samples = 0;  // per chain, after warm-up; 0 = no posterior sampling
  int chains = 2;
  int warmup = 200;
  uint64_t seed = 3;
  std::string space = "latent";  // latent | y
  int leapfrog_steps = 32;       // was 16; 32 samples more per gradient call (docs/posterior.md)
  double step_size = 0.0;        // 0: found at the start of warm-up, then adapted
  double target_accept = 0.8;
  double jitter = 0.1;
  int thin = 10;                       // every thin-th sample of every chain is written out
  double init_spread = 0.5;            // chains start at the MAP (or WF) + init_spread * N(0, M^-1)
  std::string mass = "fourier_voxel";  // fourier | fourier_voxel (posterior_mass_voxel_scale)
};

// Every key of `denoise.posterior:` declared once (docs/posterior.md's key table).
const SettingsTable<PosteriorSettings>& posterior_settings_table();
// Reads a `posterior:` section (posterior_settings_table().read).
PosteriorSettings read_posterior_settings(ConfigNode node);
HmcSettings hmc_settings(const PosteriorSettings& s);

// A coordinate system for the posterior: the HMC target and the map back to delta.
class PosteriorSpace {
 public:
  virtual ~PosteriorSpace() = default;
  virtual size_t dimension() const = 0;
  // log p(q | d) + const and its gradient.
  virtual double log_density_grad(const Eigen::VectorXd& q, Eigen::VectorXd& grad) = 0;
  // y of the state q (the flow's input).
  virtual void to_y(const Eigen::VectorXd& q, double* y) = 0;
  // The state of a given y (a chain's start).
  virtual Eigen::VectorXd from_y(const std::vector<double>& y) = 0;
  // lambda_k: prior variance per half-complex mode in these coordinates.
  virtual std::vector<double> prior_eigenvalues() const = 0;
};

// q = y: the MAP's objective (any FieldPrior), negated.
class YPosterior final : public PosteriorSpace {
 public:
  // prior_eigenvalues: the prior's variance per half-complex mode of y (n*n*(n/2+1) values).
  YPosterior(PosteriorObjective& objective, std::vector<double> prior_eigenvalues);
  size_t dimension() const override { return objective_.dimension(); }
  double log_density_grad(const Eigen::VectorXd& q, Eigen::VectorXd& grad) override;
  void to_y(const Eigen::VectorXd& q, double* y) override;
  Eigen::VectorXd from_y(const std::vector<double>& y) override;
  std::vector<double> prior_eigenvalues() const override { return eigenvalues_; }

 private:
  PosteriorObjective& objective_;
  std::vector<double> eigenvalues_;
};

// q = u, the flow's latent on its input grid (NeuTra).
template <typename T>
class LatentPosterior final : public PosteriorSpace {
 public:
  LatentPosterior(MultiScaleFlow<T>& flow, Preprocessing preprocessing, const Observation& obs);
  size_t dimension() const override { return weight_.size(); }
  double log_density_grad(const Eigen::VectorXd& q, Eigen::VectorXd& grad) override;
  void to_y(const Eigen::VectorXd& q, double* y) override;
  Eigen::VectorXd from_y(const std::vector<double>& y) override;
  std::vector<double> prior_eigenvalues() const override;
  // log p_base(u) and its gradient (grad may be null).
  double base_log_prob(const double* u, double* grad);

 private:
  // y = f^-1(u) into y_ (cached: the last state evaluated is usually the chain's next state).
  void inverse(const Eigen::VectorXd& u);
  MultiScaleFlow<T>& flow_;
  Preprocessing preprocessing_;
  std::vector<double> data_, weight_, y_values_, delta_, slope_, base_grad_;
  Tensor<T> u_, y_, dy_, du_;
  Eigen::VectorXd cached_u_;
};

// The prior variance per half-complex mode of the flow's latent grid: the correlated base's
// eigenvalues, or 1 for the standard normal.
template <typename T>
std::vector<double> flow_prior_eigenvalues(const MultiScaleFlow<T>& flow);

// The Fourier-diagonal mass m_k = 1/lambda_k + w_eff at y (see the header comment).
std::vector<double> posterior_mass_eigenvalues(const PosteriorSpace& space,
                                               const Preprocessing& preprocessing,
                                               const Observation& obs,
                                               const std::vector<double>& y);
// mass fourier_voxel: the per-voxel scale D_i = (p + W_i) / (p + w_eff) of
// FourierDiagonalMass::scale_per_voxel, W_i = mask / sigma^2 (d delta / dy)^2 at y, w_eff its mean
// and p the prior's diagonal element (the mean of 1/lambda_k over all modes). The scaled mass's
// diagonal is then p + W_i, the diagonal of the Gaussian approximation's precision, so voxels where
// the data pin the field (dense, observed) get the heavier mass that lets the step size grow
// elsewhere.
std::vector<double> posterior_mass_voxel_scale(const PosteriorSpace& space,
                                               const Preprocessing& preprocessing,
                                               const Observation& obs,
                                               const std::vector<double>& y);

struct PosteriorChain {
  int chain = 0;
  HmcChainStats stats;
};

struct PosteriorResult {
  int n = 0;
  double box_size_mpch = 0.0;
  std::vector<double> mean, std;         // of delta, per voxel
  std::vector<std::vector<float>> kept;  // thinned samples of delta, chain by chain
  std::vector<int> kept_chain;           // the chain of each kept sample
  // Per k bin (the `fieldflow pk` bins) and per draw: series[bin][chain][draw].
  std::vector<double> k_hmpc, nmodes;
  std::vector<Chains> pk, r;  // r only with a truth
  std::vector<double> pk_truth;
  // Per bin: split R-hat and ESS of the samples' P(k), the posterior mean field's P(k) and r.
  std::vector<double> pk_rhat, pk_ess, pk_of_mean, r_of_mean;
  // Per bin: the Monte Carlo noise power of the posterior mean, sum_c P(m_c - m) / (C (C - 1))
  // with m_c the mean of chain c's draws and m theirs (batch means over chains: it holds for
  // autocorrelated draws when the chains are independent). The expected amount by which the
  // mean's residual power exceeds a converged mean's. Empty with one chain.
  std::vector<double> mc_pk_of_mean;
  // Per bin: the quantiles kQuantileLevels of the samples' P(k) and r(k).
  static constexpr std::array<double, 5> kQuantileLevels = {0.025, 0.16, 0.5, 0.84, 0.975};
  std::vector<std::array<double, 5>> pk_quantiles, r_quantiles;
  // Fraction of voxels whose truth lies inside the central 68% and 95% posterior intervals (from
  // the rank of the truth among every sample); fraction of bins whose true P(k) lies in the
  // central 95% of the samples' P(k).
  std::optional<double> coverage68, coverage95, pk_coverage95;
  std::vector<PosteriorChain> chains;
  double acceptance_rate = 0.0;  // mean over chains
  long divergences = 0, warmup_divergences = 0;
  double seconds = 0.0;              // wall time of the sampling on this rank
  double chain_seconds = 0.0;        // summed over chains
  double target_seconds = 0.0;       // of which in the target
  double observer_seconds = 0.0;     // of which measuring the draws (delta, spectra)
  long gradient_evaluations = 0;     // summed over chains
  double ess_per_second_kmax = 0.0;  // ESS of P(k) in the highest bin per chain-second
  std::string space;
  // Filled by the caller that knows the training fields' range of y (denoise): how many kept
  // draws have masked voxels beyond it, and the most such voxels in one draw; -1: not counted.
  long kept_beyond_training = -1, most_masked_beyond_training = -1;
};

// Runs settings.chains chains from y_start (chain c on rank c mod size, its randomness a function
// of (seed, c) only) and combines them over the processes: every process returns the full result,
// the same whatever the number of processes.
// Progress lines go to log (rank 0, may be null): every chain's end, and where a chain stands
// every progress_seconds while it runs.
PosteriorResult sample_posterior(PosteriorSpace& space, const Preprocessing& preprocessing,
                                 const Observation& obs, const std::vector<double>& y_start,
                                 const PosteriorSettings& settings, const ChainSharing& sharing,
                                 std::FILE* log = nullptr, double progress_seconds = 10.0);

// The driver `fieldflow denoise` calls: builds the space settings.space names over the flow
// (latent: LatentPosterior; y: the MAP's objective over FlowPrior) and samples from y_start (the
// MAP).
PosteriorResult sample_flow_posterior(MultiScaleFlow<float>& flow,
                                      const Preprocessing& preprocessing, const Observation& obs,
                                      const std::vector<double>& y_start,
                                      const PosteriorSettings& settings,
                                      const ChainSharing& sharing, std::FILE* log = nullptr);

// Quantile q in [0, 1] of values (linear interpolation between order statistics, numpy's default).
double quantile(std::vector<double> values, double q);

}  // namespace ff
