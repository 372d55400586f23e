#pragma once
// Data-parallel training of a MultiScaleFlow (docs/train.md). Every rank holds the whole model and
// computes the gradient of its share of each global batch; one MPI_Allreduce per step sums a
// single fused float32 buffer (every parameter's gradient, the loss, and the flags that make the
// ranks act together: a failed read, a non-finite value, a stop request). Rank 0 writes the run
// folder:
//   checkpoint.h5  the latest state (parameters, Adam, step, data order, preprocessing, base P(k))
//   best.h5        the lowest validation loss so far
//   log.csv        step,epoch,loss_bpv,grad_norm,lr,fields_per_s,seconds,val_bpv
//   settings.yaml  the settings used, with provenance
// A rerun on a folder with a checkpoint continues from it bit for bit (same rank count), when the
// must_match settings are unchanged.
#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/train/dataset.hpp"
#include "fieldflow/train/settings.hpp"

namespace ff {

class Communicator;

// Test hooks (never set by the command line).
struct TrainHooks {
  // After the local backward of step `step` (0-based), before the allreduce: may change this
  // rank's gradients or parameters (inject a NaN, make the ranks diverge).
  std::function<void(long step, int rank, MultiScaleFlow<float>& flow)> after_backward;
};

struct TrainSummary {
  long first_step = 0;  // where this run started (> 0 after a resume)
  long step = 0;        // steps completed
  bool resumed = false;
  int stop_signal = 0;      // SIGTERM/SIGINT that stopped the run early, 0 otherwise
  bool time_limit = false;  // stopped by train.time_limit_minutes
  long skipped = 0, rollbacks = 0;
  double last_loss_bpv = 0, best_val_bpv = 0;
  double seconds = 0;
  double allreduce_seconds_per_step = 0;
  double step_seconds = 0;                                   // median wall time per step
  std::vector<FieldRef> training_fields, validation_fields;  // what it trained and validated on
};

// The log density over delta of each field of `fields` (n^3 floats each, delta values), in nats:
// the preprocessing's log-Jacobian added to the flow's log p. x is scratch.
std::vector<double> log_prob_over_delta(MultiScaleFlow<float>& flow,
                                        const Preprocessing& preprocessing,
                                        const std::vector<float>& fields, int count);

// Preprocessing statistics and the measured P(k) of the preprocessed training fields.
struct DataStatistics {
  Preprocessing preprocessing;
  std::vector<double> k_hmpc, pk;  // P(k) of y = (t(delta) - mean) / std, every mode to sqrt3 k_N
  double pk0 = 0;  // L^3 x the variance of a field's mean of y, at least 1% of pk[0]; 0: one field
  std::vector<double> delta_pk;  // P(k) of delta itself in the same bins (the Wiener filter's)
  double y_min = 0, y_max = 0;   // the range of y over every voxel of the training fields
};
// Every training field is read once, by one rank; the sums are combined in field order, so the
// result does not depend on the number of ranks.
DataStatistics measure_statistics(const FieldSet& set, const std::vector<int>& train,
                                  const DataSettings& data, const Communicator& comm);

class Trainer {
 public:
  // restart: start over even when run_dir holds a checkpoint.
  Trainer(TrainConfig config, const Communicator& comm, bool restart, TrainHooks hooks = {});
  ~Trainer();
  TrainSummary run();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace ff
