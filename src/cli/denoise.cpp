// fieldflow denoise CONFIG.yaml [--set key=value ...]: Wiener filter, flow-prior MAP and their
// combination for one observation. The work is in recon (docs/denoise.md).
#include "fieldflow/recon/denoise.hpp"

#include <cstdio>
#include <filesystem>

#include "commands.hpp"
#include "fieldflow/report/report.hpp"

namespace ff::cli {

void add_denoise_command(CLI::App& app) {
  auto args = std::make_shared<ConfigArgs>();
  CLI::App* sub = app.add_subcommand(
      "denoise",
      "Reconstruct a masked, noisy field: exact Wiener filter, flow-prior MAP and their "
      "combination (docs/denoise.md)");
  add_config_args(sub, *args);
  sub->callback([args] {
    Config config = args->load();
    DenoiseSettings s = read_denoise_settings(config.root().section("denoise"));
    config.finish();
    s.source = config.source();
    // Posterior chains run one after another in this process (train's Communicator, which would
    // share them over MPI ranks, is not on main yet).
    const DenoiseSummary r = run_denoise(s, stdout);
    std::printf(
        "denoise: wrote %s, %s, %s (WF %d iterations, MAP %d iterations, k_split %.4g h/Mpc)\n",
        s.out.c_str(), r.metrics_path.c_str(), r.summary_path.c_str(), r.wiener_iterations,
        r.map_iterations, r.k_split_hmpc);
    if (s.report && !s.truth_grid.empty()) {
      report::ReconstructionReport rep;
      rep.results = {s.out};
      const std::filesystem::path out(s.out);
      rep.out = (out.parent_path() / (out.stem().string() + "_report")).string();
      rep.settings_yaml = denoise_settings_yaml(s);
      report::write_reconstruction_report(rep);
    }
  });
}

}  // namespace ff::cli
