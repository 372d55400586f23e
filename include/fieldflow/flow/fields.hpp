#pragma once
// Fields (grids of delta) in and out of a trained flow, the preprocessing included: what
// `fieldflow sample`, `fieldflow logp` and the training report share.
#include <cstdint>
#include <span>

#include "fieldflow/core/grid.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/io/grid_file.hpp"

namespace ff {

// Field `index` drawn at `temperature` and mapped back through the preprocessing, in the box and
// at the redshift of the flow's training data: a pure function of (seed, index). zero_mean: delta
// taken against the sample's own mean density (set_mean_delta_zero). Non-finite values are an
// Error naming the checkpoint (loaded.path).
GridF sample_field(FlowCheckpoint& loaded, uint64_t seed, int index, double temperature,
                   bool zero_mean);

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
