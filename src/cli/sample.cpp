// fieldflow sample CONFIG.yaml [--set key=value ...]: draws fields from a trained flow.
//   sample: {checkpoint, count, seed, temperature, out, box_size_mpch, redshift, precision}
// (docs/flow.md).
#include <cmath>
#include <cstdio>

#include "commands.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/io/grid_file.hpp"

namespace ff::cli {

namespace {

void run_sample(const ConfigArgs& args) {
  Config config = args.load();
  ConfigNode s = config.root().section("sample");
  const std::string checkpoint = s.text("checkpoint");
  const int count = int(s.positive_integer("count", 1));
  const uint64_t seed = uint64_t(s.integer("seed", 0));
  const double temperature = s.positive("temperature", 1.0);
  const std::string out = s.text("out");
  const double box_size_mpch = s.positive("box_size_mpch", 1000.0);
  const double redshift = s.number("redshift", 0.0);
  const GridPrecision precision =
      s.choice("precision", {"float32", "float64"}, "float32") == "float32"
          ? GridPrecision::float32
          : GridPrecision::float64;
  config.finish();

  FlowCheckpoint loaded = load_flow_checkpoint(checkpoint);
  MultiScaleFlow<float>& flow = *loaded.flow;
  if (flow.spec().channels != 1)
    throw Error(checkpoint, "sample writes single-channel grids; this flow has " +
                                std::to_string(flow.spec().channels) + " channels");
  const int n = flow.spec().grid;
  std::vector<GridF> grids;
  Tensor<float> x;
  for (int i = 0; i < count; ++i) {
    // Field i is a pure function of (seed, i): drawn one at a time, so memory stays one field.
    flow.sample(1, seed + uint64_t(i) * 0x9E3779B97F4A7C15ull, temperature, x);
    GridF g(n, box_size_mpch, redshift);
    std::copy(x.data.begin(), x.data.begin() + g.size(), g.values.begin());
    loaded.preprocessing.invert(g.values.data(), g.size());
    for (float v : g.values)
      if (!std::isfinite(v))
        throw Error(checkpoint, "sample " + std::to_string(i) +
                                    " has non-finite values (lower sample.temperature)");
    grids.push_back(std::move(g));
  }
  write_grid_stack(out, grids, precision);
  std::printf("wrote %d sample(s) of %d^3 at temperature %g to %s\n", count, n, temperature,
              out.c_str());
}

}  // namespace

void add_sample_command(CLI::App& app) {
  auto args = std::make_shared<ConfigArgs>();
  CLI::App* sub = app.add_subcommand(
      "sample", "Draw fields from a trained flow (checkpoint) into a stacked grid file");
  add_config_args(sub, *args);
  sub->callback([args] { run_sample(*args); });
}

}  // namespace ff::cli
