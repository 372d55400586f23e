#include "fieldflow/flow/fields.hpp"

#include <algorithm>
#include <cmath>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/text.hpp"

namespace ff {

double mean_delta(std::span<const float> delta) {
  double sum = 0.0;
  for (float v : delta) sum += double(v);
  return sum / double(delta.size());
}

void set_mean_delta_zero(std::span<float> delta, double eps) {
  const double mean = mean_delta(delta) + 1.0 + eps;
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
  flow.sample(1, sample_seed(seed, uint64_t(index)), temperature, x);
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

MeanDeltaFilter::MeanDeltaFilter(double tolerance, int count, std::string input, std::string key)
    : tolerance_(tolerance), count_(count), input_(std::move(input)), key_(std::move(key)) {}

bool MeanDeltaFilter::keep(std::span<const float> delta) {
  ++drawn_;
  const double m = mean_delta(delta);
  sum_squares_ += m * m;
  const bool kept = tolerance_ <= 0 || std::abs(m) <= tolerance_;
  kept_ += kept;
  if (!kept && drawn_ >= 1000 + 100 * long(count_) && kept_ < count_)
    throw Error(input_, key_ + " " + format_number(tolerance_) + " kept " + std::to_string(kept_) +
                            " of " + std::to_string(drawn_) +
                            " draws (their mean delta scatters by " +
                            format_number(std::sqrt(sum_squares_ / double(drawn_))) +
                            " rms): raise it, or 0 to keep every draw");
  return kept;
}

std::vector<GridF> sample_fields(FlowCheckpoint& loaded, const SampleSettings& s,
                                 long* candidates) {
  std::vector<GridF> kept;
  MeanDeltaFilter filter(s.mean_tolerance, s.count, loaded.path, "sample.mean_tolerance");
  while (int(kept.size()) < s.count) {
    const long i = filter.drawn();
    GridF g = sample_field(loaded, s.seed, int(i), s.temperature, false);
    if (!filter.keep(g.values)) continue;
    if (s.zero_mean) {
      try {
        set_mean_delta_zero(g.values, loaded.preprocessing.eps);
      } catch (const Error& e) {
        throw Error(loaded.path, "sample " + std::to_string(i), e.problem());
      }
    }
    kept.push_back(std::move(g));
  }
  if (candidates) *candidates = filter.drawn();
  return kept;
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
