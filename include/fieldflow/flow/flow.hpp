#pragma once
// The multi-scale RealNVP flow (Dinh et al. 2017) on periodic cubic grids. Per level:
// checkerboard couplings at the level's grid, then (all levels but the last) a squeeze,
// channel couplings, and half of the channels factored out as a latent. The last level has only
// checkerboard couplings. Optional actnorm and 1x1x1 channel mixing precede each coupling.
// log p(x) = log p_base(z(x)) + log|det dz/dx|; the base is the standard normal or a correlated
// Gaussian over the latent put back on the input grid.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fieldflow/flow/base.hpp"
#include "fieldflow/flow/layers.hpp"

namespace ff {

class ConfigNode;

struct FlowLevelSpec {
  int checkerboard_couplings = 2;
  int channel_couplings = 2;  // ignored on the last level
  int hidden_checkerboard = 32;
  int hidden_channel = 64;
};

enum class BaseKind { standard_normal, correlated_gaussian };

struct FlowSpec {
  int grid = 32;                      // points per side of the input field
  int channels = 1;                   // channels of the input field
  std::vector<FlowLevelSpec> levels;  // the last one is the final, unsqueezed level
  int kernel = 3;                     // first and last conv of each coupling net
  MixingKind mixing = MixingKind::none;
  // lu mixing's start: false, Glow's LU of a random rotation; true, W = I (the flow then starts
  // as the identity, over the correlated base the Gaussian). Only lu.
  bool mixing_identity = false;
  bool actnorm = false;
  // Each coupling's net also sees its hidden features' box mean (AffineCoupling; zero at start).
  bool global_context = false;
  ScaleBound scale_bound = ScaleBound::tanh;
  double clamp = 2.0;           // soft clamp bound
  double negative_slope = 0.0;  // coupling nets' activation: 0 = ReLU, > 0 = LeakyReLU
  BaseKind base = BaseKind::standard_normal;
  // Correlated Gaussian: the spectrum of the (preprocessed) field in its box.
  std::vector<double> base_k_hmpc, base_pk;
  // P at k = 0, (Mpc/h)^3: L^3 times the variance of a field's mean; 0: P at the smallest k.
  double base_pk0 = 0.0;
  double base_box_size_mpch = 0.0;
  // base.power: measured: the trainer fills base_k_hmpc, base_pk, base_pk0 and
  // base_box_size_mpch from the preprocessed training fields before it builds the flow.
  bool base_power_measured = false;
  uint64_t seed = 0;  // initial weights and fixed mixings
  // > 0: a SpectralCalibration with this many bins per k_N is the first step (identity at start).
  int calibration_bins = 0;
};

// The yardstick architecture "bench-32" of ../shared/BENCH.md.
FlowSpec bench32_flow_spec();
// Reads a `flow:` section (keys in docs/flow.md). P(k) tables come from power_csv (columns
// k, pk) or inline k_hmpc / pk lists.
FlowSpec read_flow_spec(ConfigNode node);
// The spec as a `flow:` YAML section that read_flow_spec reads back exactly (checkpoints keep it).
std::string flow_spec_yaml(const FlowSpec& spec);
// Throws naming the problem when the levels do not fit the grid and channels.
void validate(const FlowSpec& spec);
const char* to_string(BaseKind kind);

// Negative log-likelihood in bits per dimension, from log p in nats of a field of `dims` values.
inline double nll_bits_per_voxel(double logp_nats, size_t dims) {
  return -logp_nats / (0.6931471805599453 * double(dims));
}

template <typename T>
class MultiScaleFlow {
 public:
  explicit MultiScaleFlow(const FlowSpec& spec);
  const FlowSpec& spec() const { return spec_; }
  int levels() const { return int(steps_.size()); }
  size_t dimension() const { return size_t(spec_.grid) * spec_.grid * spec_.grid * spec_.channels; }

  std::vector<Param<T>*> params();
  size_t parameter_count();
  std::vector<std::unique_ptr<FlowStep<T>>>& steps(int level) { return steps_[level]; }
  std::vector<ActNorm<T>*> actnorms();
  std::vector<ChannelMixing<T>*> mixings();

  // Data-dependent initialisation of every uninitialised actnorm (Glow), as an explicit step:
  // runs the batch x through the flow; before each uninitialised actnorm, takes the statistics of
  // its input on x, passes them to reduce (when given; e.g. a sum over MPI ranks, every rank
  // calling this with its own share of the batch) and initialises the layer from the result, so
  // each deeper actnorm sees the activations of the already initialised ones. Returns how many
  // layers it initialised; the same number of reduce calls, in flow order, on every rank.
  int initialize_actnorms(const Tensor<T>& x,
                          const std::function<void(ActNormStats&)>& reduce = nullptr);
  bool actnorms_initialized();

  // x (batch, grid, channels) -> latents (kept, see latents()) and log|det dz/dx| per field.
  // Throws when an actnorm is uninitialised.
  void forward(const Tensor<T>& x, std::vector<T>& logdet);
  const std::vector<Tensor<T>>& latents() const { return latents_; }
  // x = f^-1(latents); keeps the activations inverse_vjp needs.
  void inverse(const std::vector<Tensor<T>>& latents, Tensor<T>& x);
  // x = f^-1(u) for latents u on the input grid (latents_to_grid's layout, what the base
  // distribution sees).
  void inverse_from_grid(const Tensor<T>& u, Tensor<T>& x);
  // The gradient through the inverse flow with respect to its input (HMC in the latent space,
  // NeuTra): after inverse_from_grid(u, x) (no forward or inverse in between), from dx = dL/dx
  // writes du = (dx/du)^T dL/dx (grid layout, resized). No parameter gradient is touched.
  void inverse_vjp(const Tensor<T>& dx, Tensor<T>& du);

  // log p per field in nats.
  std::vector<double> log_prob(const Tensor<T>& x);
  // log p per field and dx = d log p / d x; also accumulates log p's parameter gradients (summed
  // over the batch) into every Param::grad.
  std::vector<double> log_prob_grad(const Tensor<T>& x, Tensor<T>& dx);
  // log p per field and dx = d log p / d x only: no parameter gradient is computed or touched,
  // the weight-gradient kernels are skipped (MAP and sampling of fields).
  std::vector<double> log_prob_input_grad(const Tensor<T>& x, Tensor<T>& dx);
  // Mean negative log-likelihood over the batch (nats per field); adds its gradient to every
  // parameter's grad.
  double nll_backward(const Tensor<T>& x);
  // count fields drawn from the base at the given temperature, then inverted.
  void sample(int count, uint64_t seed, double temperature, Tensor<T>& x);

  // The latents put back on the input grid by undoing the squeezes (a permutation), and back.
  void latents_to_grid(const std::vector<Tensor<T>>& latents, Tensor<T>& u);
  void grid_to_latents(const Tensor<T>& u, std::vector<Tensor<T>>& latents);
  // Shapes (n, channels) of the latents.
  std::vector<std::pair<int, int>> latent_shapes() const { return latent_shapes_; }

  // Copies what a trained flow is, besides its architecture, from other: parameter values, actnorm
  // states and the fixed mixings. other must have the same steps (e.g. the same spec on another
  // grid: the couplings are periodic convolutions, so the same state defines a density there),
  // except that a flow without a spectral calibration may be copied into one with it (which then
  // keeps its own calibration: `fieldflow calibrate` adds one to a trained flow).
  void copy_state_from(MultiScaleFlow& other);
  // The first step when spec().calibration_bins > 0, else null.
  SpectralCalibration<T>* calibration();

  // Adds scale * N(0, 1) to every parameter (tests and benchmark checks; a zero-initialised
  // flow is the identity).
  void perturb(uint64_t seed, double scale);
  CorrelatedGaussian* correlated_base() { return correlated_.get(); }
  // Replaces the correlated base's P(k) table and its P at k = 0 (the box stays): `fieldflow
  // calibrate` with method base and `train.refit_base_every` refit them to the latents of the
  // training fields.
  // Throws without that base.
  void set_base_power(std::vector<double> k_hmpc, std::vector<double> pk, double pk0);

 private:
  // The correlated base of spec's table, box and k = 0 power.
  static std::unique_ptr<CorrelatedGaussian> correlated_base_of(const FlowSpec& spec);
  // Base log-density per field and, when grads, dL/dz = weight_b * d log p_base / dz in dlat_.
  const std::vector<double>& base_log_prob(const std::vector<double>* weights);
  void backward(const std::vector<double>& weights, Tensor<T>* dx, bool input_only);
  std::vector<double> density_grad(const Tensor<T>& x, Tensor<T>& dx, bool input_only);
  // forward, calling before(step, its input) ahead of every step when given.
  void run_forward(const Tensor<T>& x, std::vector<T>& logdet,
                   const std::function<void(FlowStep<T>&, const Tensor<T>&)>* before);

  FlowSpec spec_;
  std::shared_ptr<CouplingScratch<T>> scratch_;
  std::vector<std::vector<std::unique_ptr<FlowStep<T>>>> steps_;
  // acts_[l][s]: the input of step s of level l in the latest forward (its output in the latest
  // inverse); acts_[l][S] the level's output.
  std::vector<std::vector<Tensor<T>>> acts_;
  bool inverse_kept_ = false;  // acts_ hold an inverse pass (inverse_vjp may run)
  std::vector<Tensor<T>> latents_, dlat_, grid_latents_;
  std::vector<std::pair<int, int>> latent_shapes_;
  Tensor<T> grad_a_, grad_b_, grid_a_, grid_b_;
  std::vector<T> logdet_, dlogdet_;
  std::unique_ptr<CorrelatedGaussian> correlated_;
  std::vector<double> base_u_, base_grad_, base_logp_, weights_;
};

// Copies channels [c0, c0 + count) of x into y (resized).
template <typename T>
void take_channels(const Tensor<T>& x, int c0, int count, Tensor<T>& y);
// y = channels of a followed by channels of b.
template <typename T>
void concat_channels(const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& y);

}  // namespace ff
