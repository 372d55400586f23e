#pragma once
// Flow-prior MAP reconstruction, and the pieces posterior samplers reuse.
//
// The variable is y, the field the flow models: y = (t(delta) - mean) / std (flow/checkpoint.hpp's
// Preprocessing), delta = g(y). The density maximised is p(y | d) ∝ p(d | delta = g(y)) p_flow(y):
// the MAP in y, not in delta. (The MAP of p(delta | d) adds the Jacobian -sum log|dg/dy|, which for
// log1p preprocessing grows without bound as delta -> -1: the pilot diverged on every field.)
// PosteriorObjective is f(y) = -log p(y|d) + const, minimised by L-BFGS (LBFGSpp's two-loop
// recursion and its More-Thuente strong-Wolfe line search, whose step is bounded so that no voxel
// of y moves by more than MapSettings::max_step_y in one iteration).
#include <cstdint>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "fieldflow/flow/base.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/recon/observation.hpp"

namespace ff {

// A prior density over y on an n^3 grid.
class FieldPrior {
 public:
  virtual ~FieldPrior() = default;
  virtual int n() const = 0;
  virtual double log_prob(const double* y) = 0;
  // log p(y) and grad = d log p / dy.
  virtual double log_prob_grad(const double* y, double* grad) = 0;
};

// A flow as a prior over its own input (one field, batch 1). Uses the flow's gradient with respect
// to its input only.
template <typename T>
class FlowPrior final : public FieldPrior {
 public:
  explicit FlowPrior(MultiScaleFlow<T>& flow) : flow_(flow) {}
  int n() const override { return flow_.spec().grid; }
  double log_prob(const double* y) override;
  double log_prob_grad(const double* y, double* grad) override;

 private:
  MultiScaleFlow<T>& flow_;
  Tensor<T> x_, dx_;
};

// A Gaussian over y whose covariance is diagonal in Fourier space (flow/base.hpp): what a flow over
// a correlated-Gaussian base is before training, at the cost of two FFTs. A baseline for the flow.
class GaussianFieldPrior final : public FieldPrior {
 public:
  explicit GaussianFieldPrior(CorrelatedGaussian gaussian) : g_(std::move(gaussian)) {}
  int n() const override { return g_.n(); }
  double log_prob(const double* y) override { return g_.log_prob(y); }
  double log_prob_grad(const double* y, double* grad) override { return g_.log_prob_grad(y, grad); }

 private:
  CorrelatedGaussian g_;
};

// delta = g(y) and dg/dy, the inverse of Preprocessing::apply, elementwise.
void preprocessing_to_delta(const Preprocessing& p, const double* y, double* delta,
                            double* ddelta_dy, size_t count);
// y from delta; delta below the transform's domain (log1p: delta <= -1) is first raised to
// kLowestDelta, so that an initial guess such as the Wiener filter (which can dip below -1) maps.
inline constexpr double kLowestDelta = -0.99;
std::vector<double> delta_to_preprocessed(const Preprocessing& p, std::vector<double> delta);

// The range of y in which a prior is trusted: a flow's density is only learned where its training
// fields were, and outside it a trained flow's tails can rise again. In masked voxels only the
// prior acts, so a MAP follows such a tail (to delta in the hundreds with the trained flow of
// docs/train.md). Outside [low, high] the objective gains the wall
// kWallStiffness/2 (y - bound)^2 per voxel: the prior becomes the flow times a steep Gaussian
// edge at the range, smooth (C1) so L-BFGS and the whitened variable still work. The default is
// no range.
inline constexpr double kWallStiffness = 1e3;  // nats per unit y^2 beyond the range
struct PriorRange {
  double low = -std::numeric_limits<double>::infinity();
  double high = std::numeric_limits<double>::infinity();
  bool contains(double y, double slack = 0.0) const {
    return y >= low - slack && y <= high + slack;
  }
};

// f(y) = sum_i W_i (d_i - g(y_i))^2 / 2 - beta log p_prior(y) + wall(y), W = mask / sigma^2,
// beta = prior_weight (1: the posterior; otherwise the prior raised to the power beta).
class PosteriorObjective {
 public:
  PosteriorObjective(FieldPrior& prior, Preprocessing preprocessing, const Observation& obs,
                     PriorRange range = {}, double prior_weight = 1.0);
  size_t dimension() const { return data_.size(); }
  // f(y); grad = df/dy when not null. Also sets chi2(), log_prior() and wall() of this y.
  double value_grad(const double* y, double* grad);
  double chi2() const { return chi2_; }            // sum W (d - g(y))^2 (not halved)
  double log_prior() const { return log_prior_; }  // log p_prior(y)
  double wall() const { return wall_; }            // the range's wall term of f
  const Preprocessing& preprocessing() const { return preprocessing_; }
  const PriorRange& range() const { return range_; }
  const std::vector<double>& weight() const { return weight_; }  // mask / sigma^2 per voxel

 private:
  FieldPrior& prior_;
  Preprocessing preprocessing_;
  PriorRange range_;
  double prior_weight_;
  std::vector<double> data_, weight_, delta_, slope_, prior_grad_;
  double chi2_ = 0.0, log_prior_ = 0.0, wall_ = 0.0;
};

struct MapSettings {
  std::string init = "wiener";  // wiener | data | zero
  std::string prior = "flow";   // flow | gaussian (the checkpoint's base alone: a baseline)
  bool whiten = true;           // optimise in u, y = S_y^{1/2} u, S_y the correlated base's
  // with whiten: prior (y = S_y^{1/2} u) | posterior (y = D^{-1/2} C u: C^2 the inverse of
  // 1/S_y + w_eff and D per voxel, the Gaussian approximation of the posterior at the start, as
  // posterior.mass fourier_voxel).
  std::string precondition = "posterior";
  // beta: the density maximised is p(d|y) p_prior(y)^beta (1: the posterior p(y|d)).
  double prior_weight = 1.0;
  int max_iterations = 500;
  double tolerance = 1e-8;           // stop when |f_k-1 - f_k| <= tolerance max(1, |f|)
  double gradient_tolerance = 1e-4;  // stop when |grad f| <= gradient_tolerance sqrt(dimension)
  int memory = 8;                    // L-BFGS corrections kept
  double max_step_y = 0.5;           // no voxel's y moves more in one iteration; 0: no bound
  // The prior's range in y (PriorRange). range "training": the training fields' range that the
  // checkpoint records, widened by range_margin_y on each side; "fixed", or a checkpoint that
  // records none: y_min..y_max. y is standardised on the training fields; the fixed defaults are
  // the range of the science run's 256 training fields (y from -5.20 to 6.10) plus 0.5. On the
  // validation fields the training range itself (no margin) stalled one MAP (docs/denoise.md).
  std::string range = "training";  // training | fixed
  double range_margin_y = 0.5;
  double y_min = -5.7, y_max = 6.6;
  // A MAP with masked voxels (the prior alone acts there) beyond the training fields' recorded
  // range of y (itself, no margin): a sound prior keeps them inside the range of millions of
  // training voxels; a flow whose density rises again out there puts peaks into them. warn: a
  // warning line, the count in the outputs; refuse: one error line, no output.
  std::string runaway = "warn";  // warn | refuse
};

struct MapResult {
  std::vector<double> y;      // the optimum found, in y
  std::vector<double> delta;  // g(y)
  int iterations = 0;
  int evaluations = 0;
  double objective = 0.0, objective_start = 0.0, gradient_rms = 0.0;
  double seconds = 0.0, evaluation_seconds = 0.0;  // total, and inside value_grad
  std::string stop;             // gradient | objective_change | max_iterations | line_search
  int restarts = 0;             // line searches retried along -grad with the memory cleared
  int init_iterations = 0;      // map.init gaussian: the iterations of the start's own MAP
  int beyond_range = 0;         // voxels of y held by the range's wall (beyond it, within slack)
  std::vector<double> history;  // f after each iteration (index 0: the start)
};

// Minimises the objective from y0 (first clamped into the objective's range) with L-BFGS. Throws
// ff::Error("map", ...) when the objective decreases without bound (a voxel of y beyond
// +-kDivergentY or a non-finite delta on an improving step), and when the result leaves the
// objective's range by more than kRangeSlackY in any voxel (the wall did not hold: the prior
// pulls harder than kWallStiffness * kRangeSlackY there), rather than return nonsense. Writes one
// progress line to `log` every progress_seconds (none when log is null).
inline constexpr double kDivergentY = 1e3;
inline constexpr double kRangeSlackY = 0.5;
// whitening: eigenvalues (CorrelatedGaussian's half-complex layout) of a Fourier-diagonal S over
// y; when given, L-BFGS works in u with y = S^{1/2} u (same density, same maximum; a Gaussian
// prior's Hessian becomes the identity, so far fewer iterations). The gradient rule and the
// reported gradient are always in y.
// voxel_scale (with whitening only): D_i > 0 per voxel, and y = D^{-1/2} S^{1/2} u: for S the
// inverse of a Fourier-diagonal precision m_k and D the per-voxel rescaling of
// posterior_mass_voxel_scale (recon/posterior.hpp), u's Hessian is about the identity also where
// the data pin y far more tightly than on average (dense observed voxels under log1p).
MapResult map_reconstruct(PosteriorObjective& objective, std::vector<double> y0,
                          const MapSettings& settings, std::FILE* log = nullptr,
                          double progress_seconds = 10.0,
                          const std::vector<double>* whitening = nullptr,
                          const std::vector<double>* voxel_scale = nullptr);

}  // namespace ff
