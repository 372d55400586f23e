// fieldflow simulate CONFIG.yaml [--set key=value ...]
// Makes the built-in training and test sets: particle-mesh simulations written as Gadget HDF5
// snapshots plus painted delta grids (docs/simulate.md). Under `mpirun -np N` the simulations are
// shared out round-robin over the ranks; without mpirun it runs as one process. A rerun skips the
// simulations whose files all exist.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/sim/simulation_set.hpp"
#include "fieldflow/train/communicator.hpp"

namespace ff::cli {

namespace {

struct SimulateConfig {
  SimulationSettings settings;
  std::vector<SimulationSetSpec> sets;
};

// Every key is declared once, in the sim module (simulation_settings_table()).
SimulateConfig read_simulate_config(Config& config) {
  SimulateConfig out;
  out.settings = read_simulation_settings(config);
  out.sets = out.settings.sets.all();
  return out;
}

// Every file simulate may write, refused when it is the config or the power table.
void refuse_outputs_that_are_inputs(const SimulateConfig& cfg, const std::string& config_path) {
  const SimulationSettings& s = cfg.settings;
  std::vector<std::string> inputs{config_path};
  if (!s.power_table.empty()) inputs.push_back(s.power_table);
  const int outputs = int(sorted_output_redshifts(s).size());
  for (const auto& set : cfg.sets)
    for (int o = 0; o < outputs; ++o) {
      refuse_output_that_is_input(stack_path(s, set.name, o), inputs);
      for (int i = 0; i < set.count; ++i) {
        refuse_output_that_is_input(delta_path(s, set.name, i, o), inputs);
        const std::string base = snapshot_base(s, set.name, i, o);
        refuse_output_that_is_input(base + ".hdf5", inputs);
        for (int f = 0; f < s.snapshot.num_files; ++f)
          refuse_output_that_is_input(base + "." + std::to_string(f) + ".hdf5", inputs);
      }
    }
}

void run_simulate(const ConfigArgs& args) {
  Communicator mpi;
  // Ranks sharing a node share its cores: unless OMP_NUM_THREADS says otherwise, split them.
  if (mpi.active() && !std::getenv("OMP_NUM_THREADS"))
    omp_set_num_threads(std::max(1, omp_get_num_procs() / Communicator::local_ranks()));
  // Every rank reads the config; each fails the same way on a bad one, so only rank 0 prints.
  if (mpi.rank() != 0) prints_errors().store(false);
  Config config = args.load();
  const SimulateConfig cfg = read_simulate_config(config);
  const SimulationSettings& s = cfg.settings;
  refuse_outputs_that_are_inputs(cfg, args.path);
  prints_errors().store(true);
  // Resume only with the folder's settings.yaml (every rank reads it); rank 0 then records them.
  for (const bool record : {false, true}) {
    mpi.guarded(
        [&] {
          if (!record) check_resume(s);
          if (record && mpi.rank() == 0) record_settings(s);
        },
        args.path);
  }

  struct Task {
    const SimulationSetSpec* set;
    int index;
  };
  std::vector<Task> tasks;
  for (const auto& set : cfg.sets)
    for (int i = 0; i < set.count; ++i) tasks.push_back({&set, i});
  std::vector<Task> mine;
  for (size_t t = 0; t < tasks.size(); ++t)
    if (int(t % size_t(mpi.size())) == mpi.rank()) mine.push_back(tasks[t]);

  // Progress goes to standard output: standard error holds only an error line.
  if (mpi.rank() == 0)
    std::printf(
        "fieldflow simulate: %zu simulations (%d train, %d test) of %d^3 particles in "
        "%.6g Mpc/h, %d steps from z = %.4g, force mesh %d^3 (%s), painted to %d^3; "
        "%d rank(s) x %d thread(s) -> %s\n",
        tasks.size(), cfg.sets[0].count, cfg.sets[1].count, s.particles_per_side, s.box_size_mpch,
        s.pm.steps, s.z_start, s.particles_per_side * s.pm.mesh_factor, to_string(s.pm.gradient),
        s.paint_grid, mpi.size(), omp_get_max_threads(), printable(s.output_dir).c_str());
  std::fflush(stdout);

  // Failures are captured (not thrown) so that every rank reaches the collective verdict.
  mpi.guarded(
      [&] {
        const Simulator simulator(s);
        const auto t0 = std::chrono::steady_clock::now();
        int done = 0, skipped = 0;
        for (const Task& task : mine) {
          const SimulationSetSpec& set = *task.set;
          const uint64_t seed = set.first_seed + uint64_t(task.index);
          if (simulation_complete(s, set.name, task.index)) {
            ++skipped;
            continue;
          }
          const auto r = simulator.run(set.name, task.index, seed);
          ++done;
          const double elapsed =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          std::printf("[rank %d] %s %d/%d (seed %llu): %.2f s; rank progress %d/%zu, %.0f s\n",
                      mpi.rank(), set.name.c_str(), task.index + 1, set.count,
                      static_cast<unsigned long long>(seed), r.seconds, done + skipped, mine.size(),
                      elapsed);
        }
        if (skipped > 0)
          std::printf("[rank %d] %d finished simulation(s) found on disk, skipped\n", mpi.rank(),
                      skipped);
      },
      args.path);  // every rank must finish before rank 0 stacks the grids
  // Rank 0 stacks the grids; the others wait for its verdict (an error must not leave them
  // blocked in a collective).
  mpi.guarded(
      [&] {
        if (mpi.rank() != 0) return;
        for (const auto& set : cfg.sets) {
          write_set_stacks(s, set);
          if (set.count > 0)
            std::printf(
                "fieldflow simulate: %s: %d grids stacked in %s\n", set.name.c_str(), set.count,
                printable(stack_path(s, set.name, int(sorted_output_redshifts(s).size()) - 1))
                    .c_str());
        }
      },
      args.path);
}

}  // namespace

void add_simulate_command(CLI::App& app) {
  auto args = std::make_shared<ConfigArgs>();
  CLI::App* sub = app.add_subcommand(
      "simulate",
      "Run particle-mesh N-body simulations (the built-in training and test data): Gadget HDF5 "
      "snapshots and painted delta grids; `mpirun -np N` shares the simulations over ranks");
  add_config_args(sub, *args);
  sub->callback([args] { run_about(args->path, [&] { run_simulate(*args); }); });
}

}  // namespace ff::cli
