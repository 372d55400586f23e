// fieldflow sample CONFIG.yaml [--set key=value ...]: draws fields from a trained flow.
//   sample: {checkpoint, count, seed, temperature, zero_mean, out, precision}
// (docs/flow.md). The grids carry the box and redshift of the flow's training data.
#include <cmath>
#include <cstdio>

#include "commands.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/config.hpp"
#include "fieldflow/flow/fields.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/io/grid_file.hpp"

namespace ff::cli {

namespace {

void run_sample(const ConfigArgs& args) {
  Config config = args.load();
  const SampleSettings settings = read_sample_settings(config);
  const std::string& checkpoint = settings.checkpoint;
  const int count = settings.count;
  const uint64_t seed = settings.seed;
  const double temperature = settings.temperature;
  const std::string& out = settings.out;
  refuse_output_that_is_input(out, {checkpoint, args.path});

  FlowCheckpoint loaded = load_flow_checkpoint(checkpoint);
  loaded.require_initialized();
  const int n = loaded.flow->spec().grid;
  std::vector<GridF> grids;
  // Drawn one at a time, so memory stays one field.
  for (int i = 0; i < count; ++i)
    about_input(checkpoint, {"preprocessing", "flow"}, [&] {
      grids.push_back(sample_field(loaded, seed, i, temperature, settings.zero_mean));
    });
  write_grid_stack(out, grids, settings.precision, provenance(sample_settings_yaml(settings)));
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
