// fieldflow train CONFIG.yaml [--set key=value ...] [--restart]; also under mpirun/srun.
// Trains a flow on simulation fields, data-parallel over MPI ranks, into train.run_dir
// (docs/train.md). Rerunning on a folder with a checkpoint continues from it.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "commands.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/report/report.hpp"
#include "fieldflow/train/communicator.hpp"
#include "fieldflow/train/trainer.hpp"

namespace ff::cli {

namespace {

struct TrainArgs {
  ConfigArgs config;
  bool restart = false;
};

int run_train(const TrainArgs& args) {
  Communicator comm;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // progress lines appear as they are printed
  // Ranks sharing a node share its cores: unless OMP_NUM_THREADS says otherwise, split them.
  if (comm.active() && !std::getenv("OMP_NUM_THREADS"))
    omp_set_num_threads(std::max(1, omp_get_num_procs() / Communicator::local_ranks()));
  TrainConfig config;
  comm.guarded([&] {
    Config loaded = args.config.load();
    config = read_train_config(loaded);
  });
  Trainer trainer(config, comm, args.restart);
  const TrainSummary s = trainer.run();
  if (comm.rank() == 0) {
    // A run that only found a finished checkpoint took no step: no last loss to print.
    char last_loss[64] = "";
    if (s.step > s.first_step)
      std::snprintf(last_loss, sizeof last_loss, "last loss %.4f bits/voxel, ", s.last_loss_bpv);
    std::printf(
        "fieldflow train: %s at step %ld of %ld in %.1f s (%ld this run); %sbest validation "
        "%.4f bits/voxel; %ld skipped step(s), %ld rollback(s); median step %.3f s, allreduce "
        "%.2f ms/step\n",
        s.stop_signal ? "stopped" : (s.time_limit ? "time limit" : "done"), s.step,
        config.train.steps, s.seconds, s.step - s.first_step, last_loss, s.best_val_bpv, s.skipped,
        s.rollbacks, s.step_seconds, 1e3 * s.allreduce_seconds_per_step);
  }
  // The training report (the same code as `fieldflow report`), once per finished run, by rank 0.
  if (comm.rank() == 0) report::write_report_after_training(config, s);
  // Stopped by a signal: the conventional status 128 + signal (a Slurm requeue reruns the command).
  return s.stop_signal ? 128 + s.stop_signal : 0;
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* sub = app.add_subcommand(
      "train",
      "Train a flow on simulation fields (data-parallel under mpirun/srun); rerun to continue "
      "from the run folder's checkpoint");
  add_config_args(sub, args->config);
  sub->add_flag("--restart", args->restart,
                "Start over even when train.run_dir holds a checkpoint");
  sub->callback([args] {
    const int status = run_train(*args);
    if (status != 0) std::exit(status);
  });
}

}  // namespace ff::cli
