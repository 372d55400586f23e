// fieldflow logp --checkpoint FLOW.h5 GRID.h5 [GRID.h5 ...] [--out logp.csv]: the flow's log
// density of each field (every member of stacked files), in nats and in bits per voxel. Fields
// must have the grid and box of the flow's training data.
#include <cmath>
#include <cstdio>

#include "commands.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/fields.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/io/csv.hpp"
#include "fieldflow/io/grid_file.hpp"

namespace ff::cli {

namespace {

struct LogpArgs {
  std::string checkpoint;
  std::vector<std::string> grids;
  std::string out;
};

void run_logp(const LogpArgs& a) {
  std::vector<std::string> inputs = a.grids;
  inputs.push_back(a.checkpoint);
  refuse_output_that_is_input(a.out, inputs);
  FlowCheckpoint loaded = load_flow_checkpoint(a.checkpoint);
  loaded.require_initialized();
  // Every grid is checked before anything is printed: a refusal is the only line.
  std::vector<GridFileInfo> infos;
  for (const std::string& path : a.grids) {
    const GridFileInfo info = inspect_grid_for_flow(path, loaded);
    infos.push_back(info);
  }
  std::vector<double> file_index, field_index, logp_nats, bits_per_voxel;
  std::printf("file,index,logp_nats,nll_bits_per_voxel\n");
  for (size_t f = 0; f < a.grids.size(); ++f) {
    const std::string& path = a.grids[f];
    const GridFileInfo& info = infos[f];
    for (int i = 0; i < info.count; ++i) {
      const GridF g = read_grid_as<float>(path, i);
      double logp = 0.0;
      about_input(path, {"preprocessing", "flow"}, [&] { logp = field_log_density(loaded, g); });
      // Never a non-finite result: values far outside what the flow saw give no usable density.
      if (!std::isfinite(logp))
        throw Error(path, (info.stacked ? "field " + std::to_string(i) + ": " : std::string()) +
                              "the log density is not a finite number (values far outside the "
                              "range the flow was trained on?)");
      const double bits = nll_bits_per_voxel(logp, g.size());
      std::printf("%s,%d,%.9g,%.9g\n", printable(path).c_str(), i, logp, bits);
      file_index.push_back(double(f));
      field_index.push_back(i);
      logp_nats.push_back(logp);
      bits_per_voxel.push_back(bits);
    }
  }
  if (!a.out.empty())
    write_csv(a.out, {{"file", &file_index},
                      {"index", &field_index},
                      {"logp_nats", &logp_nats},
                      {"nll_bits_per_voxel", &bits_per_voxel}});
}

}  // namespace

void add_logp_command(CLI::App& app) {
  auto args = std::make_shared<LogpArgs>();
  CLI::App* sub = app.add_subcommand(
      "logp",
      "Log density of grids under a trained flow: nats per field and bits per voxel "
      "(preprocessing Jacobian included)");
  sub->add_option("--checkpoint", args->checkpoint, "Flow checkpoint (HDF5)")->required();
  sub->add_option("grids", args->grids, "Grid files (stacked files: every member)")->required();
  sub->add_option("--out", args->out, "Also write a CSV (file = position in the argument list)");
  sub->callback([args] { run_about(args->checkpoint, [&] { run_logp(*args); }); });
}

}  // namespace ff::cli
