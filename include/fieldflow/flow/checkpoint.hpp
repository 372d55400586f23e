#pragma once
// Flow checkpoints: the architecture (as the `flow:` YAML it was built from), every parameter,
// actnorm initialisation flags, the preprocessing, and optionally the Adam state, in an io array
// file (io/checkpoint.hpp) of format "fieldflow-flow-checkpoint". Names:
//   param.<parameter name>            float32 values
//   adam.m.<name>, adam.v.<name>      float32 Adam moments (when an optimizer was saved)
//   texts: architecture, preprocessing.transform
//   numbers: actnorm.<step name>.initialized, preprocessing.mean, preprocessing.std,
//            adam.* options and adam.step (when an optimizer was saved)
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "fieldflow/flow/flow.hpp"
#include "fieldflow/nn/adam.hpp"

namespace ff {

class ConfigNode;

// How fields are mapped to what the flow sees: y = (t(x) - mean) / std, t = identity or
// log(1 + x) (for overdensity fields delta > -1).
struct Preprocessing {
  std::string transform = "identity";
  double mean = 0.0;
  double std = 1.0;
  // Applies in place; returns log|dy/dx| of the field (add it to log p(y) to get log p(x)).
  template <typename T>
  double apply(T* values, size_t count) const;
  template <typename T>
  void invert(T* values, size_t count) const;
};
Preprocessing read_preprocessing(ConfigNode node);

inline constexpr int64_t kFlowCheckpointVersion = 1;

void save_flow_checkpoint(const std::string& path, MultiScaleFlow<float>& flow,
                          const Preprocessing& preprocessing, Adam<float>* adam = nullptr);

struct FlowCheckpoint {
  std::unique_ptr<MultiScaleFlow<float>> flow;
  Preprocessing preprocessing;
  bool has_optimizer = false;
  AdamOptions adam_options;
  long adam_step = 0;
  std::vector<std::vector<float>> adam_m, adam_v;  // in flow->params() order
  // Copies the saved optimizer state into adam (built over flow->params()).
  void restore(Adam<float>& adam) const;
};

FlowCheckpoint load_flow_checkpoint(const std::string& path);

}  // namespace ff
