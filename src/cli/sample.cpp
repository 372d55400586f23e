// fieldflow sample CONFIG.yaml [--set key=value ...]: draws fields from a trained flow.
//   sample: {checkpoint, count, seed, temperature, out, precision}
// (docs/flow.md). The grids carry the box and redshift of the flow's training data.
#include <cmath>
#include <cstdio>

#include "commands.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/fields.hpp"
#include "fieldflow/io/atomic_file.hpp"
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
  const GridPrecision precision =
      s.choice("precision", {"float32", "float64"}, "float32") == "float32"
          ? GridPrecision::float32
          : GridPrecision::float64;
  config.finish();
  refuse_output_that_is_input(out, {checkpoint, args.path});

  FlowCheckpoint loaded = load_flow_checkpoint(checkpoint);
  loaded.require_initialized();
  const int n = loaded.flow->spec().grid;
  std::vector<GridF> grids;
  // Drawn one at a time, so memory stays one field.
  for (int i = 0; i < count; ++i)
    about_input(checkpoint, {"preprocessing", "flow"},
                [&] { grids.push_back(sample_field(loaded, seed, i, temperature)); });
  write_grid_stack(out, grids, precision);
  std::printf("wrote %d sample(s) of %d^3 at temperature %g to %s\n", count, n, temperature,
              printable(out).c_str());
}

}  // namespace

void add_sample_command(CLI::App& app) {
  auto args = std::make_shared<ConfigArgs>();
  CLI::App* sub = app.add_subcommand(
      "sample", "Draw fields from a trained flow (checkpoint) into a stacked grid file");
  add_config_args(sub, *args);
  sub->callback([args] { run_about(args->path, [&] { run_sample(*args); }); });
}

}  // namespace ff::cli
