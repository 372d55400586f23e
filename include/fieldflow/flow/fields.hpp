#pragma once
// Fields (grids of delta) in and out of a trained flow, the preprocessing included: what
// `fieldflow sample`, `fieldflow logp` and the training report share.
#include <cstdint>
#include <span>
#include <vector>

#include "fieldflow/core/grid.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/config.hpp"
#include "fieldflow/io/grid_file.hpp"

namespace ff {

// The base draw's seed of sample `index` of `fieldflow sample` with `seed` (and of calibrate's).
inline uint64_t sample_seed(uint64_t seed, uint64_t index) {
  return seed + index * 0x9E3779B97F4A7C15ull;
}

// Field `index` drawn at `temperature` and mapped back through the preprocessing, in the box and
// at the redshift of the flow's training data: a pure function of (seed, index). zero_mean: delta
// taken against the sample's own mean density (set_mean_delta_zero). Non-finite values are an
// Error naming the checkpoint (loaded.path).
GridF sample_field(FlowCheckpoint& loaded, uint64_t seed, int index, double temperature,
                   bool zero_mean);

// The fields `fieldflow sample` writes (s.checkpoint is loaded): candidates i = 0, 1, ... drawn
// by sample_field without zero_mean; with s.mean_tolerance > 0 only those whose mean delta lies
// within +-mean_tolerance are kept, in order (the flow's samples conditioned on the box's mean
// density, which painting fixes: every painted field has mean delta 0); then s.zero_mean. Field
// j of the result is a pure function of (seed, mean_tolerance, j). `candidates` (optional)
// receives the number drawn. Throws Error(loaded.path, ...) naming the tolerance when fewer than
// count are kept of 1000 + 100 count candidates.
std::vector<GridF> sample_fields(FlowCheckpoint& loaded, const SampleSettings& s,
                                 long* candidates = nullptr);

// The mean of delta, summed in double.
double mean_delta(std::span<const float> delta);

// sample.mean_tolerance (and calibrate's): of a stream of draws, keeps those whose mean delta
// lies within +-tolerance (every one when tolerance is 0). keep() throws Error(input, ...) naming
// `key` when a draw is not kept after 1000 + 100 count draws with fewer than count kept.
class MeanDeltaFilter {
 public:
  MeanDeltaFilter(double tolerance, int count, std::string input, std::string key);
  bool keep(std::span<const float> delta);
  long drawn() const { return drawn_; }

 private:
  double tolerance_;
  int count_;
  std::string input_, key_;
  long drawn_ = 0, kept_ = 0;
  double sum_squares_ = 0.0;  // of the draws' means, for the refusal's message
};

// delta -> (1 + delta + eps) c - 1 - eps with c such that the mean of delta is 0: the density
// contrast against the field's own mean density, as painting defines it. Painted fields have
// mean 0 exactly; a flow's samples scatter about it, and that scatter raises the scatter of
// their P(k). Scaling 1 + delta + eps (eps: the log1p floor, 0 for identity) rather than
// 1 + delta keeps every value where the preprocessing is defined. Throws Error("mean density",
// ...) when the mean of 1 + delta is not positive.
void set_mean_delta_zero(std::span<float> delta, double eps);

// log p(delta) in nats: the flow's log density of the preprocessed field plus the
// preprocessing's log-Jacobian, i.e. a density over delta itself. The field must be of the flow's
// grid.
double field_log_density(FlowCheckpoint& loaded, const GridF& field);

// The description of grid file `path`; throws Error(path, ...) unless its fields have the flow's
// grid and the box of its training data (what logp and calibrate accept).
GridFileInfo inspect_grid_for_flow(const std::string& path, const FlowCheckpoint& loaded);

}  // namespace ff
