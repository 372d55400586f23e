#include "fieldflow/flow/fields.hpp"

#include <algorithm>
#include <cmath>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/text.hpp"

namespace ff {

void set_mean_delta_zero(std::span<float> delta, double eps) {
  double sum = 0.0;
  for (float v : delta) sum += 1.0 + eps + double(v);
  const double mean = sum / double(delta.size());
  if (!(mean > eps) || !std::isfinite(mean))
    throw Error("mean density", "1 + mean delta is " + format_number(mean - eps) +
                                    ": delta cannot be taken against it");
  const double c = (1.0 + eps) / mean;
  for (float& v : delta) v = float((1.0 + eps + double(v)) * c - 1.0 - eps);
}

GridF sample_field(FlowCheckpoint& loaded, uint64_t seed, int index, double temperature,
                   bool zero_mean) {
  const std::string& checkpoint_path = loaded.path;
  MultiScaleFlow<float>& flow = *loaded.flow;
  if (flow.spec().channels != 1)
    throw Error(checkpoint_path, "sampling writes single-channel grids; this flow has " +
                                     std::to_string(flow.spec().channels) + " channels");
  const int n = flow.spec().grid;
  Tensor<float> x;
  flow.sample(1, seed + uint64_t(index) * 0x9E3779B97F4A7C15ull, temperature, x);
  GridF g(n, loaded.data.box_size_mpch, loaded.data.redshift);
  std::copy(x.data.begin(), x.data.begin() + g.size(), g.values.begin());
  loaded.preprocessing.invert(g.values.data(), g.size());
  for (float v : g.values)
    if (!std::isfinite(v))
      throw Error(checkpoint_path, "sample " + std::to_string(index) +
                                       " has non-finite values (lower the temperature)");
  if (!zero_mean) return g;
  try {
    set_mean_delta_zero(g.values, loaded.preprocessing.eps);
  } catch (const Error& e) {
    throw Error(checkpoint_path, "sample " + std::to_string(index), e.problem());
  }
  return g;
}

double field_log_density(FlowCheckpoint& loaded, const GridF& field) {
  MultiScaleFlow<float>& flow = *loaded.flow;
  const int n = flow.spec().grid;
  if (field.n != n)
    throw Error("log density", "grid of " + std::to_string(field.n) + "^3, the flow models " +
                                   std::to_string(n) + "^3");
  GridF y = field;
  const double log_jacobian = loaded.preprocessing.apply(y.values.data(), y.size());
  Tensor<float> x(1, n, 1);
  std::copy(y.values.begin(), y.values.end(), x.data.begin());
  return flow.log_prob(x)[0] + log_jacobian;
}

GridFileInfo inspect_grid_for_flow(const std::string& path, const FlowCheckpoint& loaded) {
  const int n = loaded.flow->spec().grid;
  const double box = loaded.data.box_size_mpch;
  const GridFileInfo info = inspect_grid_file(path);
  if (info.n != n)
    throw Error(path, "grid of " + std::to_string(info.n) + "^3, the flow models " +
                          std::to_string(n) + "^3");
  if (std::abs(info.box_size_mpch - box) > 1e-6 * box)
    throw Error(path, "box of " + format_number(info.box_size_mpch) +
                          " Mpc/h, the flow was trained on boxes of " + format_number(box) +
                          " Mpc/h");
  return info;
}

}  // namespace ff
