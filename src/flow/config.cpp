// The `flow:` configuration section <-> FlowSpec. See docs/flow.md.
#include "fieldflow/core/config.hpp"

#include <cstdio>
#include <sstream>

#include "fieldflow/core/error.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/io/csv.hpp"

namespace ff {

FlowSpec read_flow_spec(ConfigNode node) {
  FlowSpec spec;
  spec.grid = int(node.positive_integer("grid", 32));
  spec.channels = int(node.positive_integer("channels", 1));
  spec.kernel = int(node.positive_integer("kernel", 3));
  if (spec.kernel != 1 && spec.kernel != 3) node.fail("kernel", "must be 1 or 3");
  ConfigNode levels = node.section("levels");
  const auto checker = levels.integers("checkerboard_couplings", std::vector<long>{2, 2, 4});
  const size_t count = checker.size();
  if (count == 0) levels.fail("checkerboard_couplings", "need at least one level");
  auto per_level = [&](const std::string& key, std::vector<long> fallback) {
    std::vector<long> v = levels.integers(key, fallback);
    if (v.size() == count - 1 && key != "hidden_checkerboard") v.push_back(0);  // last level
    if (v.size() != count)
      levels.fail(key, "expected " + std::to_string(count) + " entries (one per level), got " +
                           std::to_string(v.size()));
    for (long x : v)
      if (x < 0) levels.fail(key, "entries must be >= 0");
    return v;
  };
  // Defaults (bench-32's when it has three levels): 2 channel couplings, hidden 32 / 64.
  const bool bench_shape = count == 3;
  const auto channel = per_level("channel_couplings", std::vector<long>(count, 2));
  const auto hidden_checker =
      per_level("hidden_checkerboard",
                bench_shape ? std::vector<long>{16, 32, 64} : std::vector<long>(count, 32));
  const auto hidden_channel = per_level(
      "hidden_channel", bench_shape ? std::vector<long>{32, 64, 0} : std::vector<long>(count, 64));
  for (size_t l = 0; l < count; ++l) {
    FlowLevelSpec ls;
    ls.checkerboard_couplings = int(checker[l]);
    ls.channel_couplings = l + 1 < count ? int(channel[l]) : 0;
    ls.hidden_checkerboard = int(hidden_checker[l]);
    ls.hidden_channel = int(hidden_channel[l]);
    if (ls.checkerboard_couplings > 0 && ls.hidden_checkerboard < 1)
      levels.fail("hidden_checkerboard",
                  "must be positive where a level has checkerboard couplings");
    if (ls.channel_couplings > 0 && ls.hidden_channel < 1)
      levels.fail("hidden_channel", "must be positive where a level has channel couplings");
    spec.levels.push_back(ls);
  }
  spec.mixing =
      parse_mixing(node.choice("mixing", {"none", "permutation", "orthogonal", "lu"}, "none"));
  spec.actnorm = node.flag("actnorm", false);
  spec.scale_bound =
      parse_scale_bound(node.choice("scale_bound", {"tanh", "tanh_scale", "softclamp"}, "tanh"));
  spec.clamp = node.positive("clamp", 2.0);
  if (node.choice("activation", {"relu", "leaky_relu"}, "relu") == "leaky_relu") {
    spec.negative_slope = node.positive("leaky_slope", 0.01);
    if (spec.negative_slope >= 1) node.fail("leaky_slope", "must be below 1");
  }
  spec.seed = uint64_t(node.integer("seed", 0));
  ConfigNode base = node.section("base");
  const std::string kind =
      base.choice("kind", {"standard_normal", "correlated_gaussian"}, "standard_normal");
  if (kind == "correlated_gaussian") {
    spec.base = BaseKind::correlated_gaussian;
    spec.base_box_size_mpch = base.positive("box_size_mpch");
    if (base.has("power_csv")) {
      if (base.has("k_hmpc") || base.has("pk"))
        base.fail("power_csv", "give either power_csv or the k_hmpc and pk lists, not both");
      // Columns k and pk, as `fieldflow pk` writes them.
      auto columns = read_csv_columns(base.text("power_csv"), {"k", "pk"});
      spec.base_k_hmpc = std::move(columns[0]);
      spec.base_pk = std::move(columns[1]);
    } else {
      spec.base_k_hmpc = base.numbers("k_hmpc");
      spec.base_pk = base.numbers("pk");
    }
    if (spec.base_k_hmpc.size() != spec.base_pk.size() || spec.base_k_hmpc.size() < 2)
      base.fail("pk", "k_hmpc and pk need the same length, at least 2");
  }
  try {
    validate(spec);
  } catch (const Error& e) {
    node.fail(e.input().empty() ? "levels" : e.input().substr(e.input().find('.') + 1),
              e.problem());
  }
  return spec;
}

namespace {
std::string number_text(double v) {
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}
template <typename V, typename F>
std::string list(const V& values, F f) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + f(values[i]);
  return out + "]";
}
}  // namespace

std::string flow_spec_yaml(const FlowSpec& spec) {
  std::ostringstream out;
  auto levels = [&](auto member) {
    return list(spec.levels, [&](const FlowLevelSpec& l) { return std::to_string(l.*member); });
  };
  out << "flow:\n"
      << "  grid: " << spec.grid << "\n"
      << "  channels: " << spec.channels << "\n"
      << "  kernel: " << spec.kernel << "\n"
      << "  levels:\n"
      << "    checkerboard_couplings: " << levels(&FlowLevelSpec::checkerboard_couplings) << "\n"
      << "    channel_couplings: " << levels(&FlowLevelSpec::channel_couplings) << "\n"
      << "    hidden_checkerboard: " << levels(&FlowLevelSpec::hidden_checkerboard) << "\n"
      << "    hidden_channel: " << levels(&FlowLevelSpec::hidden_channel) << "\n"
      << "  mixing: " << to_string(spec.mixing) << "\n"
      << "  actnorm: " << (spec.actnorm ? "true" : "false") << "\n"
      << "  scale_bound: " << to_string(spec.scale_bound) << "\n"
      << "  clamp: " << number_text(spec.clamp) << "\n"
      << "  activation: " << (spec.negative_slope > 0 ? "leaky_relu" : "relu") << "\n"
      << (spec.negative_slope > 0 ? "  leaky_slope: " + number_text(spec.negative_slope) + "\n"
                                  : "")
      << "  seed: " << spec.seed << "\n"
      << "  base:\n"
      << "    kind: " << to_string(spec.base) << "\n";
  if (spec.base == BaseKind::correlated_gaussian)
    out << "    box_size_mpch: " << number_text(spec.base_box_size_mpch) << "\n"
        << "    k_hmpc: " << list(spec.base_k_hmpc, number_text) << "\n"
        << "    pk: " << list(spec.base_pk, number_text) << "\n";
  return out.str();
}

}  // namespace ff
