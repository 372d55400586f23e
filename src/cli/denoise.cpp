// fieldflow denoise CONFIG.yaml [--set key=value ...]: Wiener filter, flow-prior MAP and their
// combination for one observation. The work is in recon (docs/denoise.md).
#include "fieldflow/recon/denoise.hpp"

#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "commands.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/report/report.hpp"
#include "fieldflow/train/communicator.hpp"

namespace ff::cli {

void add_denoise_command(CLI::App& app) {
  auto args = std::make_shared<ConfigArgs>();
  CLI::App* sub = app.add_subcommand(
      "denoise",
      "Reconstruct a masked, noisy field: exact Wiener filter, flow-prior MAP and their "
      "combination (docs/denoise.md)");
  add_config_args(sub, *args);
  sub->callback([args] {
    // Under mpirun the posterior chains are shared over the ranks (every rank reconstructs the
    // WF and the MAP, the chains' start); rank 0 logs and writes.
    Communicator comm;
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they are printed
    // Ranks sharing a node share its cores: unless OMP_NUM_THREADS says otherwise, split them.
    if (comm.active() && !std::getenv("OMP_NUM_THREADS"))
      omp_set_num_threads(std::max(1, omp_get_num_procs() / Communicator::local_ranks()));
    // Every rank reads the config; each fails the same way on a bad one, so only rank 0 prints.
    if (comm.rank() != 0) prints_errors().store(false);
    Config config = args->load();
    DenoiseSettings s = read_denoise_settings(config.root().section("denoise"));
    config.finish();
    s.source = config.source();
    prints_errors().store(true);
    const DenoiseSummary r = run_denoise(s, stdout, chain_sharing(comm));
    if (comm.rank() != 0) return;
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
