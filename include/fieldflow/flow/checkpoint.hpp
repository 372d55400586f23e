#pragma once
// Flow checkpoints: the architecture (as the `flow:` YAML it was built from), every parameter,
// the fixed channel mixings, actnorm initialisation flags, the preprocessing, the box and
// redshift of the training data, optionally the Adam state and entries of the caller's own
// (e.g. the trainer's), in an io array file (io/checkpoint.hpp) of format
// "fieldflow-flow-checkpoint". Names:
//   param.<parameter name>            float32 values
//   mixing.<step>.matrix              float64 C x C, row-major (permutation, orthogonal)
//   mixing.<step>.perm, .sign         float64 [C] (lu: P as a row permutation, signs of U's
//   diagonal) adam.m.<name>, adam.v.<name>      float32 Adam moments (when an optimizer was saved)
//   preprocessing.marginal.t, .y     float64 knots of the marginal map (only when it has any)
//   texts: architecture, preprocessing.transform
//   numbers: actnorm.<step name>.initialized, preprocessing.eps, preprocessing.mean,
//            preprocessing.std, data.box_size_mpch, data.redshift,
//            adam.* options and adam.step (when an optimizer was saved)
//   extra.<name>                      any entry of the caller's extras (floats, doubles, texts,
//                                     numbers), stored and read back as given
// Loading validates the contents and refuses, naming the file, what could not be a trained flow.
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fieldflow/flow/flow.hpp"
#include "fieldflow/flow/marginal_map.hpp"
#include "fieldflow/io/checkpoint.hpp"
#include "fieldflow/nn/adam.hpp"

namespace ff {

enum class PreprocessTransform { identity, log1p };
PreprocessTransform parse_preprocess_transform(const std::string& text);
const char* to_string(PreprocessTransform transform);

// How fields delta are mapped to what the flow sees: y = h((t(delta) - mean) / std) with
// t = delta (identity) or t = log(1 + delta + eps) (log1p: overdensities delta > -1; the floor
// eps > 0 keeps empty cells, delta = -1, finite) and h the marginal map (the identity unless
// `fieldflow calibrate` fitted one). log p(delta) = log p_flow(y) + sum of log|dy/ddelta| over
// the values.
struct Preprocessing {
  Preprocessing() = default;
  Preprocessing(PreprocessTransform transform_, double mean_, double std_, double eps_ = 0.0)
      : transform(transform_), mean(mean_), std(std_), eps(eps_) {}

  PreprocessTransform transform = PreprocessTransform::identity;
  double mean = 0.0;
  double std = 1.0;
  double eps = 0.0;  // log1p floor
  MarginalMap marginal;

  // Per value: y(delta), delta(y), log|dy/ddelta| and its derivative d/ddelta log|dy/ddelta|.
  // forward throws (naming "preprocessing") for delta <= -1 - eps under log1p.
  double forward(double delta) const;
  double inverse(double y) const;
  double inverse_derivative(double y) const;  // ddelta/dy at y, accurate where delta -> -1 - eps
  double log_jacobian(double delta) const;
  double log_jacobian_derivative(double delta) const;

  // In place over count values: delta -> y, returning the sum of log|dy/ddelta|; and y -> delta.
  template <typename T>
  double apply(T* values, size_t count) const;
  template <typename T>
  void invert(T* values, size_t count) const;
  // The gradient of log p(delta) = log p_flow(y(delta)) + sum log|dy/ddelta| with respect to
  // delta (MAP in delta space): grad holds d log p_flow / dy on entry, d log p / ddelta on exit.
  template <typename T>
  void chain_gradient(const T* delta, T* grad, size_t count) const;

  // Throws Error(where, ...) when mean, std or eps cannot describe a preprocessing.
  void validate(const std::string& where) const;
};

// What the flow was trained on, recorded by the trainer: `sample` writes the box and redshift
// into its grids, `logp` refuses fields of another box, and the Wiener filter of `denoise` can
// take the training fields' P(k) of delta (optional: empty when not measured).
struct TrainingData {
  TrainingData() = default;
  TrainingData(double box_size_mpch_, double redshift_, std::vector<double> delta_pk_k_hmpc_ = {},
               std::vector<double> delta_pk_ = {})
      : box_size_mpch(box_size_mpch_),
        redshift(redshift_),
        delta_pk_k_hmpc(std::move(delta_pk_k_hmpc_)),
        delta_pk(std::move(delta_pk_)) {}

  double box_size_mpch = 0.0;
  double redshift = 0.0;
  std::vector<double> delta_pk_k_hmpc, delta_pk;  // k in h/Mpc (increasing), P in (Mpc/h)^3
  // The range of the preprocessed variable y over every voxel of the training fields (NaN: not
  // recorded, as in checkpoints written before it was): where the flow's density was learned.
  double y_min = std::numeric_limits<double>::quiet_NaN();
  double y_max = std::numeric_limits<double>::quiet_NaN();
};

inline constexpr int64_t kFlowCheckpointVersion = 2;

// Throws when data has no positive box (or one other than the correlated base's). Uninitialised
// actnorms are recorded as such. The file carries provenance (version, commit, SIMD target and
// settings_yaml, or the architecture's YAML when that is empty).
void save_flow_checkpoint(const std::string& path, MultiScaleFlow<float>& flow,
                          const Preprocessing& preprocessing, const TrainingData& data,
                          Adam<float>* adam = nullptr, const ArrayFile* extras = nullptr,
                          const std::string& settings_yaml = "");

struct FlowCheckpoint {
  std::string path;
  std::unique_ptr<MultiScaleFlow<float>> flow;
  Preprocessing preprocessing;
  TrainingData data;
  bool has_optimizer = false;
  AdamOptions adam_options;
  long adam_step = 0;
  std::vector<std::vector<float>> adam_m, adam_v;  // in flow->params() order
  ArrayFile extras;                                // the caller's entries, names as given
  Provenance provenance;                           // of the writer (empty in older files)
  // Copies the saved optimizer state into adam (built over flow->params()).
  void restore(Adam<float>& adam) const;
  // Throws Error(path, ...) unless every actnorm is initialised: what logp and sample need.
  void require_initialized() const;
};

FlowCheckpoint load_flow_checkpoint(const std::string& path);

}  // namespace ff
