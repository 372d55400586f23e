#pragma once
// Flow-prior MAP reconstruction, and the pieces posterior samplers reuse.
//
// The variable is y, the field the flow models: y = (t(delta) - mean) / std (flow/checkpoint.hpp's
// Preprocessing), delta = g(y). The density maximised is p(y | d) ∝ p(d | delta = g(y)) p_flow(y):
// the MAP in y, not in delta. (The MAP of p(delta | d) adds the Jacobian -sum log|dg/dy|, which for
// log1p preprocessing grows without bound as delta -> -1: the pilot diverged on every field.)
// PosteriorObjective is f(y) = -log p(y|d) + const, minimised by L-BFGS (LBFGSpp's two-loop
// recursion and its strong-Wolfe line search, Nocedal & Wright algorithm 3.5).
#include <cstdint>
#include <cstdio>
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

// f(y) = sum_i W_i (d_i - g(y_i))^2 / 2 - log p_prior(y), W = mask / sigma^2.
class PosteriorObjective {
 public:
  PosteriorObjective(FieldPrior& prior, Preprocessing preprocessing, const Observation& obs);
  size_t dimension() const { return data_.size(); }
  // f(y); grad = df/dy when not null. Also sets chi2() and log_prior() of this y.
  double value_grad(const double* y, double* grad);
  double chi2() const { return chi2_; }            // sum W (d - g(y))^2 (not halved)
  double log_prior() const { return log_prior_; }  // log p_prior(y)
  const Preprocessing& preprocessing() const { return preprocessing_; }

 private:
  FieldPrior& prior_;
  Preprocessing preprocessing_;
  std::vector<double> data_, weight_, delta_, slope_, prior_grad_;
  double chi2_ = 0.0, log_prior_ = 0.0;
};

struct MapSettings {
  std::string init = "wiener";  // wiener | data | zero
  std::string prior = "flow";   // flow | gaussian (the checkpoint's base alone: a baseline)
  bool whiten = true;           // optimise in u, y = S_y^{1/2} u, S_y the correlated base's
  int max_iterations = 500;
  double tolerance = 1e-8;           // stop when |f_k-1 - f_k| <= tolerance max(1, |f|)
  double gradient_tolerance = 1e-4;  // stop when |grad f| <= gradient_tolerance sqrt(dimension)
  int memory = 8;                    // L-BFGS corrections kept
};

struct MapResult {
  std::vector<double> y;      // the optimum found, in y
  std::vector<double> delta;  // g(y)
  int iterations = 0;
  int evaluations = 0;
  double objective = 0.0, objective_start = 0.0, gradient_rms = 0.0;
  double seconds = 0.0, evaluation_seconds = 0.0;  // total, and inside value_grad
  std::string stop;             // gradient | objective_change | max_iterations | line_search
  std::vector<double> history;  // f after each iteration (index 0: the start)
};

// Minimises the objective from y0 with L-BFGS. Throws ff::Error("map", ...) when the objective
// decreases without bound (a voxel of y beyond +-kDivergentY or a non-finite delta on an improving
// step). Writes one progress line to `log` every progress_seconds (none when log is null).
inline constexpr double kDivergentY = 1e3;
// whitening: eigenvalues (CorrelatedGaussian's half-complex layout) of a Fourier-diagonal S over
// y; when given, L-BFGS works in u with y = S^{1/2} u (same density, same maximum; a Gaussian
// prior's Hessian becomes the identity, so far fewer iterations). The gradient rule and the
// reported gradient are always in y.
MapResult map_reconstruct(PosteriorObjective& objective, std::vector<double> y0,
                          const MapSettings& settings, std::FILE* log = nullptr,
                          double progress_seconds = 10.0,
                          const std::vector<double>* whitening = nullptr);

}  // namespace ff
