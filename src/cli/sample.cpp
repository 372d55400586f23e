// fieldflow sample CONFIG.yaml [--set key=value ...]: draws fields from a trained flow.
//   sample: {checkpoint, count, seed, temperature, zero_mean, mean_tolerance, out, precision}
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
  const double temperature = settings.temperature;
  const std::string& out = settings.out;
  refuse_output_that_is_input(out, {checkpoint, args.path});

  FlowCheckpoint loaded = load_flow_checkpoint(checkpoint);
  loaded.require_initialized();
  const int n = loaded.flow->spec().grid;
  std::vector<GridF> grids;
  long candidates = 0;
  about_input(checkpoint, {"preprocessing", "flow"},
              [&] { grids = sample_fields(loaded, settings, &candidates); });
  write_grid_stack(out, grids, settings.precision, provenance(sample_settings_yaml(settings)));
  std::printf("wrote %d sample(s) of %d^3 at temperature %g to %s", count, n, temperature,
              printable(out).c_str());
  if (settings.mean_tolerance > 0)
    std::printf(" (%ld draws, %.1f%% of them with |mean delta| <= %g)", candidates,
                100.0 * count / double(candidates), settings.mean_tolerance);
  std::printf("\n");
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
