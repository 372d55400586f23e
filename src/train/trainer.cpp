// Data-parallel training. See include/fieldflow/train/trainer.hpp and docs/train.md.
#include "fieldflow/train/trainer.hpp"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/provenance.hpp"
#include "fieldflow/core/simd.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/io/checkpoint.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/stats/power_spectrum.hpp"
#include "fieldflow/train/calibrate.hpp"
#include "fieldflow/train/communicator.hpp"

namespace ff {

namespace fs = std::filesystem;

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) {
  g_stop_signal = sig;
}

// SIGTERM, SIGINT and SIGUSR1 set a flag that the next step's allreduce shares, so every rank stops
// after the same step and rank 0 writes a checkpoint first. The previous handlers come back
// afterwards.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGTERM, &action, &old_term_);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGUSR1, &action, &old_usr1_);  // Open MPI's mpirun forwards SIGUSR1, not SIGTERM
  }
  ~StopSignals() {
    sigaction(SIGTERM, &old_term_, nullptr);
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGUSR1, &old_usr1_, nullptr);
  }

 private:
  struct sigaction old_term_ {};
  struct sigaction old_int_ {};
  struct sigaction old_usr1_ {};
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string duration_text(double seconds) {
  char buffer[32];
  const long s = long(std::max(0.0, seconds));
  if (s >= 3600)
    std::snprintf(buffer, sizeof buffer, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else
    std::snprintf(buffer, sizeof buffer, "%ldm%02lds", s / 60, s % 60);
  return buffer;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buffer;
}

uint64_t parameter_checksum(const std::vector<Param<float>*>& params) {
  uint64_t h = kFnv1a64OffsetBasis;
  for (const Param<float>* p : params) h = fnv1a64(p->value.data(), p->size() * sizeof(float), h);
  return h;
}

Preprocessing preprocessing_of(const DataSettings& data) {
  Preprocessing p;
  p.transform = parse_preprocess_transform(data.preprocess);
  p.eps = p.transform == PreprocessTransform::log1p ? data.log1p_floor : 0.0;
  return p;
}

// Reads a field into values (n^3), naming the file on error; throws for a value the
// preprocessing cannot take (delta <= -1 - eps under log1p).
void read_field(const FieldRef& ref, int n, float* values) {
  read_grid_into(ref.path, ref.index, n, values);
}

}  // namespace

std::vector<double> log_prob_over_delta(MultiScaleFlow<float>& flow,
                                        const Preprocessing& preprocessing,
                                        const std::vector<float>& fields, int count) {
  const int n = flow.spec().grid;
  const size_t N = size_t(n) * n * n;
  if (fields.size() != N * size_t(count)) throw Error("log p", "fields do not hold count x n^3");
  Tensor<float> x(count, n, 1);
  std::copy(fields.begin(), fields.end(), x.data.begin());
  std::vector<double> log_jacobian(static_cast<size_t>(count));
  for (int b = 0; b < count; ++b) log_jacobian[size_t(b)] = preprocessing.apply(x.field(b), N);
  std::vector<double> logp = flow.log_prob(x);
  for (int b = 0; b < count; ++b) logp[size_t(b)] += log_jacobian[size_t(b)];
  return logp;
}

DataStatistics measure_statistics(const FieldSet& set, const std::vector<int>& train,
                                  const DataSettings& data, const Communicator& comm) {
  const int n = set.n;
  const size_t N = size_t(n) * n * n, M = train.size();
  Preprocessing t = preprocessing_of(data);  // mean 0, std 1: t(delta) itself
  // Per field: sum of t, sum of t^2, its least and largest value, then P(k) of t (every mode up
  // to sqrt(3) k_N).
  std::vector<double> sums(4 * M, 0.0);
  std::vector<double> spectra, delta_spectra;
  std::vector<double> k_hmpc;
  size_t bins = 0;
  PowerSpectrumOptions options;
  options.k_max_over_nyquist = std::sqrt(3.0);
  {
    // The bins are a function of n and the box only: take them from a zero field.
    const PowerSpectrum empty = measure_power_spectrum(GridF(n, set.box_size_mpch), options);
    k_hmpc = empty.k;
    bins = k_hmpc.size();
  }
  spectra.assign(M * bins, 0.0);
  delta_spectra.assign(M * bins, 0.0);
  comm.guarded([&] {
    GridF g(n, set.box_size_mpch, set.redshift);
    for (size_t i = size_t(comm.rank()); i < M; i += size_t(comm.size())) {
      const FieldRef& ref = set.fields[size_t(train[i])];
      read_field(ref, n, g.values.data());
      const PowerSpectrum delta_pk = measure_power_spectrum(g, options);
      if (delta_pk.k.size() != bins) throw Error(ref.path, "unexpected power spectrum bins");
      std::copy(delta_pk.pk.begin(), delta_pk.pk.end(),
                delta_spectra.begin() + ptrdiff_t(i * bins));
      try {
        t.apply(g.values.data(), N);
      } catch (const Error& e) {
        throw Error(ref.path + "[" + std::to_string(ref.index) + "]", e.problem());
      }
      double s1 = 0, s2 = 0, lo = g.values[0], hi = g.values[0];
      for (float v : g.values) {
        s1 += v;
        s2 += double(v) * v;
        lo = std::min(lo, double(v));
        hi = std::max(hi, double(v));
      }
      sums[4 * i] = s1;
      sums[4 * i + 1] = s2;
      sums[4 * i + 2] = lo;
      sums[4 * i + 3] = hi;
      const PowerSpectrum pk = measure_power_spectrum(g, options);
      if (pk.k.size() != bins) throw Error(ref.path, "unexpected power spectrum bins");
      std::copy(pk.pk.begin(), pk.pk.end(), spectra.begin() + ptrdiff_t(i * bins));
    }
  });
  comm.sum(sums.data(), sums.size());
  comm.sum(spectra.data(), spectra.size());
  comm.sum(delta_spectra.data(), delta_spectra.size());
  // Combined in field order: the same numbers whatever the number of ranks.
  double s1 = 0, s2 = 0, t_min = INFINITY, t_max = -INFINITY;
  for (size_t i = 0; i < M; ++i) {
    s1 += sums[4 * i];
    s2 += sums[4 * i + 1];
    t_min = std::min(t_min, sums[4 * i + 2]);
    t_max = std::max(t_max, sums[4 * i + 3]);
  }
  const double count = double(M) * double(N);
  DataStatistics out;
  out.preprocessing = t;
  out.preprocessing.mean = s1 / count;
  out.preprocessing.std =
      std::sqrt(std::max(0.0, s2 / count - out.preprocessing.mean * out.preprocessing.mean));
  if (!(out.preprocessing.std > 0))
    throw Error("data.train", "the training fields are constant: no standard deviation");
  out.y_min = (t_min - out.preprocessing.mean) / out.preprocessing.std;
  out.y_max = (t_max - out.preprocessing.mean) / out.preprocessing.std;
  // P(k) of y = (t - mean) / std is P_t / std^2 for every k > 0.
  const double inv_var = 1.0 / (out.preprocessing.std * out.preprocessing.std);
  out.k_hmpc = k_hmpc;
  out.pk.assign(bins, 0.0);
  out.delta_pk.assign(bins, 0.0);
  for (size_t i = 0; i < M; ++i)
    for (size_t b = 0; b < bins; ++b) {
      out.pk[b] += spectra[i * bins + b];
      out.delta_pk[b] += delta_spectra[i * bins + b];
    }
  for (double& p : out.pk) p *= inv_var / double(M);
  for (double& p : out.delta_pk) p /= double(M);
  // P at k = 0: a field's mean is nearly fixed (the mean of 1 + delta is 1), so its variance is
  // far below P at the smallest k, which the base would otherwise give it (floored_pk0).
  double mean_var = 0;
  for (size_t i = 0; i < M; ++i)
    mean_var += std::pow(sums[4 * i] / double(N) - out.preprocessing.mean, 2);
  const double volume = std::pow(set.box_size_mpch, 3);
  if (M > 1) out.pk0 = floored_pk0(volume * inv_var * mean_var / double(M), out.pk.front());
  return out;
}

// ---------------------------------------------------------------------------------------------

struct Trainer::State {
  TrainConfig cfg;
  const Communicator& comm;
  bool restart;
  TrainHooks hooks;
  int n = 0;
  size_t voxels = 0;

  std::string run_dir, checkpoint_path, best_path, log_path, settings_path, cache_dir;
  FieldSet train_set, validation_set;
  std::vector<int> train_index, validation_index;  // into the sets' fields

  Preprocessing preprocessing;
  TrainingData data_info;
  std::unique_ptr<MultiScaleFlow<float>> flow;
  std::vector<Param<float>*> params;
  std::unique_ptr<Adam<float>> adam;

  // Training state that a checkpoint keeps.
  long step = 0;
  double lr_scale = 1.0;
  double best_val = std::numeric_limits<double>::infinity();
  long rollbacks = 0, skipped = 0;
  int consecutive_skips = 0;
  double seconds_before = 0.0;  // wall time of earlier runs of this training
  long order_epoch = -1;
  std::vector<int> order;

  std::FILE* log = nullptr;
  bool resumed = false;

  State(TrainConfig c, const Communicator& m, bool r, TrainHooks h)
      : cfg(std::move(c)), comm(m), restart(r), hooks(std::move(h)) {}
  ~State() {
    if (log) std::fclose(log);
  }

  AdamOptions adam_options() const {
    AdamOptions o;
    o.lr = cfg.train.lr * lr_scale;
    o.warmup_steps = cfg.train.warmup_steps;
    o.total_steps = cfg.train.schedule == "cosine" ? cfg.train.steps : 0;
    o.min_lr_ratio = cfg.train.min_lr_ratio;
    o.clip_grad_norm = cfg.train.clip_grad_norm;
    return o;
  }

  const std::vector<int>& epoch_order_for(long epoch) {
    if (epoch != order_epoch) {
      order = epoch_order(int(train_index.size()), cfg.train.seed, epoch);
      order_epoch = epoch;
    }
    return order;
  }

  ArrayFile extras() const {
    ArrayFile e;
    e.numbers["train.step"] = double(step);
    e.numbers["train.lr_scale"] = lr_scale;
    e.numbers["train.best_val_bpv"] = best_val;
    e.numbers["train.rollbacks"] = double(rollbacks);
    e.numbers["train.skipped"] = double(skipped);
    e.numbers["train.consecutive_skips"] = double(consecutive_skips);
    e.numbers["train.seconds"] = seconds_before;
    e.numbers["train.seed"] = double(cfg.train.seed);
    // The data order of the current epoch and the RNG position (a counter-based generator: the
    // step and the seed fix every draw).
    const long epoch =
        step / std::max(1L, steps_per_epoch(int(train_index.size()), cfg.train.batch));
    e.numbers["train.epoch"] = double(epoch);
    e.numbers["train.rng_counter"] = double(step);
    const std::vector<int> current = epoch_order(int(train_index.size()), cfg.train.seed, epoch);
    e.doubles["train.order"].assign(current.begin(), current.end());
    e.texts["train.settings"] = cfg.yaml();
    return e;
  }

  void write_checkpoint(const std::string& path, bool with_optimizer) {
    const ArrayFile e = extras();
    save_flow_checkpoint(path, *flow, preprocessing, data_info,
                         with_optimizer ? adam.get() : nullptr, &e, cfg.yaml());
  }

  // Every rank loads the same file (after rank 0 finished writing it).
  // rollback: keep the learning-rate scale and the counters of this run (only the model, the
  // optimizer, the step and the data order go back).
  void load_state(const std::string& path, bool rollback) {
    FlowCheckpoint ck = load_flow_checkpoint(path);
    auto number = [&](const std::string& key) {
      auto it = ck.extras.numbers.find(key);
      if (it == ck.extras.numbers.end())
        throw Error(path, "not a training checkpoint (no " + key + ")");
      return it->second;
    };
    flow = std::move(ck.flow);
    params = flow->params();
    preprocessing = ck.preprocessing;
    data_info = ck.data;
    step = long(number("train.step"));
    best_val = number("train.best_val_bpv");
    consecutive_skips = 0;
    if (!rollback) {
      lr_scale = number("train.lr_scale");
      rollbacks = long(number("train.rollbacks"));
      skipped = long(number("train.skipped"));
      consecutive_skips = int(number("train.consecutive_skips"));
      seconds_before = number("train.seconds");
    }
    auto it = ck.extras.doubles.find("train.order");
    if (it == ck.extras.doubles.end()) throw Error(path, "not a training checkpoint (no order)");
    order.assign(it->second.begin(), it->second.end());
    order_epoch = long(number("train.epoch"));
    adam = std::make_unique<Adam<float>>(params, adam_options());
    ck.restore(*adam);
  }
};

Trainer::Trainer(TrainConfig config, const Communicator& comm, bool restart, TrainHooks hooks)
    : s_(std::make_unique<State>(std::move(config), comm, restart, std::move(hooks))) {}

Trainer::~Trainer() = default;

TrainSummary Trainer::run() {
  State& s = *s_;
  const Communicator& comm = s.comm;
  const TrainConfig& cfg = s.cfg;
  const TrainSettings& ts = cfg.train;
  const int rank = comm.rank(), ranks = comm.size();
  const auto t_start = std::chrono::steady_clock::now();
  StopSignals signals;
  TrainSummary summary;

  s.n = cfg.flow.grid;
  s.voxels = size_t(s.n) * s.n * s.n;
  s.run_dir = ts.run_dir;
  s.checkpoint_path = (fs::path(s.run_dir) / "checkpoint.h5").string();
  s.best_path = (fs::path(s.run_dir) / "best.h5").string();
  s.log_path = (fs::path(s.run_dir) / "log.csv").string();
  s.settings_path = (fs::path(s.run_dir) / "settings.yaml").string();
  s.cache_dir = (fs::path(s.run_dir) / "cache").string();
  // Checks every rank makes alike: guarded, so that rank 0 alone reports.
  comm.guarded([&] {
    if (cfg.flow.channels != 1)
      throw Error(cfg.source, "flow.channels: training fields have one channel");
    if (ts.batch < ranks)
      throw Error(cfg.source, "train.batch: " + std::to_string(ts.batch) + " is below the " +
                                  std::to_string(ranks) + " ranks (each needs a field per step)");
  });

  // A run folder that this call creates goes again if the run stops before its first checkpoint,
  // so bad input leaves nothing behind (a cache of painted snapshots included).
  struct NewFolder {
    std::string path;
    bool keep = true;
    ~NewFolder() {
      std::error_code ec;
      if (!keep) fs::remove_all(path, ec);
    }
  } new_run_dir{s.run_dir};

  // ---- Resume or start over: rank 0 decides, every rank follows ----
  double resume = 0;
  comm.guarded([&] {
    if (rank != 0) return;
    std::error_code ec;
    new_run_dir.keep = fs::exists(s.run_dir, ec);
    fs::create_directories(s.run_dir, ec);
    if (ec) throw Error(s.run_dir, "cannot create the run folder: " + ec.message());
    resume = !s.restart && fs::exists(s.checkpoint_path, ec) ? 1 : 0;
    if (resume) {
      const FlowCheckpoint ck = load_flow_checkpoint(s.checkpoint_path);
      auto it = ck.extras.texts.find("train.settings");
      if (it == ck.extras.texts.end())
        throw Error(s.checkpoint_path, "not a training checkpoint (no settings); use --restart");
      Config stored = Config::parse(it->second, s.checkpoint_path + ":settings");
      const TrainConfig before = read_train_config(stored);
      if (auto difference = first_resume_difference(before, cfg))
        throw Error(cfg.source, "cannot continue the run in " + s.run_dir + ": " + *difference +
                                    " (use --restart to start over)");
    }
  });
  comm.broadcast(&resume, 1);
  s.resumed = resume != 0;

  // ---- Data ----
  s.train_set = gather_fields(cfg.data.train, s.n, cfg.data, s.cache_dir, comm);
  if (!cfg.data.validation.empty()) {
    s.validation_set = gather_fields(cfg.data.validation, s.n, cfg.data, s.cache_dir, comm);
    comm.guarded([&] {
      if (s.validation_set.box_size_mpch != s.train_set.box_size_mpch)
        throw Error(cfg.data.validation[0],
                    "box of " + format_number(s.validation_set.box_size_mpch) +
                        " Mpc/h, the training fields' is " +
                        format_number(s.train_set.box_size_mpch) + " Mpc/h");
    });
    // Read once now (each rank its share), so that a damaged validation field stops the run
    // before it starts rather than at the first validation.
    comm.guarded([&] {
      std::vector<float> values(s.voxels);
      for (size_t i = size_t(rank); i < s.validation_set.fields.size(); i += size_t(ranks))
        read_field(s.validation_set.fields[i], s.n, values.data());
    });
    for (int i = 0; i < int(s.train_set.fields.size()); ++i) s.train_index.push_back(i);
    for (int i = 0; i < int(s.validation_set.fields.size()); ++i) s.validation_index.push_back(i);
  } else {
    s.validation_set = s.train_set;
    auto split =
        split_validation(int(s.train_set.fields.size()), cfg.data.validation_fraction, ts.seed);
    s.train_index = std::move(split[0]);
    s.validation_index = std::move(split[1]);
  }
  // The run folder's files must not be any of the inputs (a config or a field file there).
  comm.guarded([&] {
    std::vector<std::string> inputs{cfg.source};
    for (const FieldSet* set : {&s.train_set, &s.validation_set})
      for (const FieldRef& f : set->fields) inputs.push_back(f.path);
    for (const std::string& out : {s.checkpoint_path, s.best_path, s.log_path, s.settings_path})
      refuse_output_that_is_input(out, inputs);
    // --restart: the previous run's files go (only now that none of them is an input).
    std::error_code ec;
    if (s.restart && rank == 0)
      for (const std::string& p : {s.checkpoint_path, s.best_path, s.log_path}) fs::remove(p, ec);
  });
  const int train_count = int(s.train_index.size());
  const long per_epoch = steps_per_epoch(train_count, ts.batch);
  comm.guarded([&] {
    if (per_epoch < 1)
      throw Error(cfg.source, "train.batch: " + std::to_string(ts.batch) + " is more than the " +
                                  std::to_string(train_count) + " training fields");
  });

  // ---- The model: from the checkpoint, or built from the statistics of the training data ----
  if (s.resumed) {
    comm.guarded([&] { s.load_state(s.checkpoint_path, false); });
    if (rank == 0)
      std::fprintf(stdout, "fieldflow train: continuing %s from step %ld\n", s.run_dir.c_str(),
                   s.step);
  } else {
    const DataStatistics stats = measure_statistics(s.train_set, s.train_index, cfg.data, comm);
    s.preprocessing = stats.preprocessing;
    s.data_info =
        TrainingData(s.train_set.box_size_mpch, s.train_set.redshift, stats.k_hmpc, stats.delta_pk);
    s.data_info.y_min = stats.y_min;
    s.data_info.y_max = stats.y_max;
    FlowSpec spec = cfg.flow;
    if (spec.base == BaseKind::correlated_gaussian && spec.base_power_measured) {
      spec.base_k_hmpc = stats.k_hmpc;
      spec.base_pk = stats.pk;
      spec.base_pk0 = stats.pk0;
      spec.base_box_size_mpch = s.train_set.box_size_mpch;
    }
    comm.guarded([&] {
      if (spec.base == BaseKind::correlated_gaussian &&
          spec.base_box_size_mpch != s.train_set.box_size_mpch)
        throw Error(cfg.source,
                    "flow.base.box_size_mpch: " + format_number(spec.base_box_size_mpch) +
                        " Mpc/h, the training fields' box is " +
                        format_number(s.train_set.box_size_mpch) + " Mpc/h");
      s.flow = std::make_unique<MultiScaleFlow<float>>(spec);
      s.params = s.flow->params();
      s.adam = std::make_unique<Adam<float>>(s.params, s.adam_options());
    });
    if (rank == 0)
      std::fprintf(stdout,
                   "fieldflow train: %d training and %zu validation fields of %d^3 in %.6g Mpc/h "
                   "(z = %.4g); preprocessing %s (mean %.6g, std %.6g); %zu parameters; %d "
                   "rank(s) x %d thread(s)\n",
                   train_count, s.validation_index.size(), s.n, s.train_set.box_size_mpch,
                   s.train_set.redshift, cfg.data.preprocess.c_str(), s.preprocessing.mean,
                   s.preprocessing.std, s.flow->parameter_count(), ranks, omp_get_max_threads());
  }

  // ---- Buffers ----
  size_t param_values = 0;
  for (Param<float>* p : s.params) param_values += p->size();
  // Fused allreduce buffer in float32, the gradients' own precision (half the bytes of doubles):
  // every gradient value, the flags (failure, stop signal, time limit: 0 or 1, summed exactly),
  // then per rank its loss and log-Jacobian sums as double-float pairs (hi + lo) in that rank's
  // own slots, zero elsewhere. The sum over ranks thus carries every rank's value unrounded, and
  // each rank adds them up in rank order: the same double on every rank.
  enum { kFailed = 0, kSignal = 1, kTimeLimit = 2, kFlags = 3 };
  enum { kLoss = 0, kJacobian = 2, kPerRank = 4 };  // hi at the slot, lo after it
  const size_t flags_at = param_values, sums_at = param_values + kFlags;
  std::vector<float> fused(sums_at + size_t(kPerRank) * size_t(ranks));
  auto put_sum = [&](int slot, double value) {
    const size_t at = sums_at + size_t(rank) * kPerRank + size_t(slot);
    const float hi = float(value);
    fused[at] = hi;
    fused[at + 1] = float(value - double(hi));
  };
  auto total_sum = [&](int slot) {
    double total = 0;
    for (int r = 0; r < ranks; ++r) {
      const size_t at = sums_at + size_t(r) * kPerRank + size_t(slot);
      total += double(fused[at]) + double(fused[at + 1]);
    }
    return total;
  };
  const int lo = int(int64_t(rank) * ts.batch / ranks);
  const int hi = int(int64_t(rank + 1) * ts.batch / ranks);
  const int local = hi - lo;
  Tensor<float> x(local, s.n, 1);
  std::vector<float> raw(s.voxels);

  // Reads and augments this rank's fields of step `step` into x; returns the log-Jacobian sum.
  auto load_batch = [&](long step) {
    const long epoch = step / per_epoch;
    const std::vector<BatchSlot> slots =
        batch_slots(step, train_count, ts.batch, rank, ranks, s.epoch_order_for(epoch));
    double log_jacobian = 0;
    for (int j = 0; j < local; ++j) {
      const BatchSlot& slot = slots[size_t(j)];
      const FieldRef& ref = s.train_set.fields[size_t(s.train_index[size_t(slot.field)])];
      read_field(ref, s.n, raw.data());
      const Augmentation a = draw_augmentation(ts.seed, slot.epoch, slot.position, cfg.data.shifts,
                                               cfg.data.symmetries);
      apply_augmentation(a, s.n, raw.data(), x.field(j));
      try {
        log_jacobian += s.preprocessing.apply(x.field(j), s.voxels);
      } catch (const Error& e) {
        throw Error(ref.path + "[" + std::to_string(ref.index) + "]", e.problem());
      }
    }
    return log_jacobian;
  };

  // ActNorm's data-dependent initialisation from the first global batch, statistics summed over
  // the ranks.
  if (!s.resumed && cfg.flow.actnorm) {
    comm.guarded([&] { load_batch(0); });
    s.flow->initialize_actnorms(
        x, [&](ActNormStats& stats) { comm.sum(stats.values.data(), stats.values.size()); });
  }

  // train.refit_base_every: the correlated base's P(k) refitted to the latents of every training
  // field (as `calibrate` method base), the fields shared over the ranks and their spectra
  // combined in field order: the same table for any number of ranks.
  comm.guarded([&] {
    if (ts.refit_base_every > 0 && s.flow->spec().base != BaseKind::correlated_gaussian)
      throw Error(cfg.source, "train.refit_base_every needs flow.base.kind: correlated_gaussian");
  });
  auto refit_base = [&]() {
    const size_t M = s.train_index.size();
    PowerSpectrumOptions every_mode;
    every_mode.k_max_over_nyquist = std::sqrt(3.0);
    const PowerSpectrum binning =
        measure_power_spectrum(GridF(s.n, s.train_set.box_size_mpch), every_mode);
    const size_t bins = binning.k.size(), row = bins + 1;  // per field: P(k > 0), then P(0)
    std::vector<double> spectra(M * row, 0.0);
    comm.guarded([&] {
      GridF field(s.n, s.train_set.box_size_mpch);
      for (size_t i = size_t(rank); i < M; i += size_t(ranks)) {
        const FieldRef& ref = s.train_set.fields[size_t(s.train_index[i])];
        read_field(ref, s.n, field.values.data());
        const LatentPower p = latent_power_spectrum(*s.flow, s.preprocessing, field);
        std::copy(p.pk.pk.begin(), p.pk.pk.end(), spectra.begin() + ptrdiff_t(i * row));
        spectra[i * row + bins] = p.pk0;
      }
    });
    comm.sum(spectra.data(), spectra.size());
    const std::vector<double> ratio =
        set_base_to_latent_power(*s.flow, mean_latent_power(binning, spectra), M);
    if (rank == 0)
      std::fprintf(stdout,
                   "fieldflow train: step %ld: base refitted to the training fields' latents "
                   "(their P(k) over the base's, first bins: %.3f %.3f %.3f)\n",
                   s.step, ratio.size() > 0 ? ratio[0] : NAN, ratio.size() > 1 ? ratio[1] : NAN,
                   ratio.size() > 2 ? ratio[2] : NAN);
  };

  // Validation loss in bits per voxel over delta: fields shared over the ranks, summed in order.
  auto validate = [&]() {
    const size_t M = s.validation_index.size();
    if (M == 0) return std::numeric_limits<double>::quiet_NaN();
    std::vector<double> logp(M, 0.0);
    comm.guarded([&] {
      std::vector<size_t> mine;
      for (size_t i = size_t(rank); i < M; i += size_t(ranks)) mine.push_back(i);
      const size_t chunk = size_t(std::max(1, local));
      std::vector<float> fields;
      for (size_t c = 0; c < mine.size(); c += chunk) {
        const size_t count = std::min(chunk, mine.size() - c);
        fields.resize(count * s.voxels);
        for (size_t j = 0; j < count; ++j) {
          const FieldRef& ref = s.validation_set.fields[size_t(s.validation_index[mine[c + j]])];
          read_field(ref, s.n, fields.data() + j * s.voxels);
        }
        const std::vector<double> lp =
            log_prob_over_delta(*s.flow, s.preprocessing, fields, int(count));
        for (size_t j = 0; j < count; ++j) logp[mine[c + j]] = lp[j];
      }
    });
    comm.sum(logp.data(), M);
    double total = 0;
    for (double v : logp) total += v;
    return nll_bits_per_voxel(total / double(M), s.voxels);
  };

  // Rank 0 writes; every rank learns whether it worked (a full disk stops them all).
  auto checkpoint = [&](const std::string& path, bool with_optimizer) {
    comm.guarded([&] {
      if (rank == 0) s.write_checkpoint(path, with_optimizer);
    });
  };

  // ---- log.csv: a resume keeps the rows up to the checkpoint's step ----
  comm.guarded([&] {
    if (rank != 0) return;
    const std::string header = "step,epoch,loss_bpv,grad_norm,lr,fields_per_s,seconds,val_bpv\n";
    std::string kept = header;
    if (s.resumed) {
      std::ifstream in(s.log_path);
      std::string line;
      bool first = true;
      while (std::getline(in, line)) {
        if (first) {
          first = false;
          continue;
        }
        if (line.empty()) continue;
        const long row_step = std::atol(line.c_str());
        if (row_step <= s.step) kept += line + "\n";
      }
    }
    atomic_write_text(s.log_path, kept);
    s.log = std::fopen(s.log_path.c_str(), "a");
    if (!s.log) throw Error(s.log_path, "cannot open for appending");
    // The settings as YAML (`fieldflow train` reads the file back), provenance in comments.
    const Provenance p = provenance(cfg.yaml(), simd_target_name());
    std::ostringstream settings;
    settings << "# fieldflow train: the settings of the run in " << s.run_dir << "\n"
             << "# fieldflow " << p.version << " (commit " << p.git_commit << "), SIMD target "
             << p.simd_target << "\n"
             << "# config " << cfg.source << ", started " << utc_now() << ", " << ranks
             << " rank(s) x " << omp_get_max_threads() << " thread(s)"
             << (s.resumed ? ", continued from step " + std::to_string(s.step) : std::string())
             << "\n"
             << "# A resume needs the same values of the keys marked \"must match\" in "
                "docs/train.md.\n"
             << p.settings;
    atomic_write_text(s.settings_path, settings.str());
  });
  if (!s.resumed) checkpoint(s.checkpoint_path, true);  // the state a rollback can go back to
  new_run_dir.keep = true;

  // ---- The loop ----
  summary.first_step = s.step;
  summary.resumed = s.resumed;
  const double time_limit_s = ts.time_limit_minutes * 60.0;
  double last_print = -1e9, last_val = std::numeric_limits<double>::quiet_NaN();
  double allreduce_seconds = 0;
  std::vector<double> step_seconds;
  long steps_run = 0;
  double last_loss = std::numeric_limits<double>::quiet_NaN();
  while (s.step < ts.steps) {
    const auto t_step = std::chrono::steady_clock::now();
    const long step = s.step;
    std::string failed_input, failed_problem;
    bool failed = false;
    std::fill(fused.begin(), fused.end(), 0.0f);
    try {
      const double log_jacobian = load_batch(step);
      for (Param<float>* p : s.params) p->zero_grad();
      const double nll_mean = s.flow->nll_backward(x);
      if (s.hooks.after_backward) s.hooks.after_backward(step, rank, *s.flow);
      // nll_backward averages over the local fields: rescale to the global batch.
      const double scale = double(local) / double(ts.batch);
      size_t o = 0;
      for (Param<float>* p : s.params)
        for (float g : p->grad) fused[o++] = float(double(g) * scale);
      put_sum(kLoss, nll_mean * local);
      put_sum(kJacobian, log_jacobian);
    } catch (const std::exception& e) {
      const Error* error = dynamic_cast<const Error*>(&e);
      failed_input = error ? error->input() : "";
      failed_problem = error ? error->problem() : e.what();
      fused[flags_at + kFailed] = 1;
      failed = true;
    }
    fused[flags_at + kSignal] = g_stop_signal != 0 ? 1 : 0;
    fused[flags_at + kTimeLimit] =
        time_limit_s > 0 && seconds_since(t_start) > time_limit_s ? 1 : 0;
    const auto t_reduce = std::chrono::steady_clock::now();
    comm.sum(fused.data(), fused.size());  // the one allreduce of the step
    allreduce_seconds += seconds_since(t_reduce);
    if (fused[flags_at + kFailed] > 0) comm.agree(!failed, failed_input, failed_problem);

    const double loss_bpv = (total_sum(kLoss) - total_sum(kJacobian)) /
                            (double(ts.batch) * double(s.voxels) * std::log(2.0));
    double norm2 = 0;
#pragma omp simd reduction(+ : norm2)
    for (size_t i = 0; i < param_values; ++i) norm2 += double(fused[i]) * fused[i];
    const double lr = s.adam->learning_rate(s.adam->steps_taken());
    double grad_norm = std::sqrt(norm2);
    const bool finite = std::isfinite(loss_bpv) && std::isfinite(norm2);
    bool rolled_back = false;
    if (finite) {
      size_t o = 0;
      for (Param<float>* p : s.params)
        for (float& g : p->grad) g = fused[o++];
      s.adam->step(grad_norm);
      s.consecutive_skips = 0;
      ++s.step;
      last_loss = loss_bpv;
    } else {
      ++s.skipped;
      ++s.consecutive_skips;
      if (rank == 0)
        std::fprintf(stdout,
                     "fieldflow train: step %ld: non-finite loss or gradient on some rank, "
                     "skipped (%d in a row)\n",
                     step + 1, s.consecutive_skips);
      if (s.consecutive_skips >= ts.max_skips) {
        s.lr_scale *= ts.rollback_lr_factor;
        ++s.rollbacks;
        comm.guarded([&] { s.load_state(s.checkpoint_path, true); });
        if (rank == 0)
          std::fprintf(stdout,
                       "fieldflow train: %d non-finite steps in a row: rolled back to the "
                       "checkpoint of step %ld, learning rate x%.3g\n",
                       ts.max_skips, s.step, s.lr_scale);
        rolled_back = true;
      }
    }
    const double step_wall = seconds_since(t_step);
    step_seconds.push_back(step_wall);
    ++steps_run;
    const bool last = s.step >= ts.steps;
    const bool by_signal = fused[flags_at + kSignal] > 0;
    const bool stopping = by_signal || fused[flags_at + kTimeLimit] > 0;

    // Parameters must agree across ranks: a divergence (a bug, a flipped bit) stops everyone.
    if (!rolled_back && finite && s.step % ts.check_every == 0) {
      const bool same = comm.all_equal(parameter_checksum(s.params));
      comm.agree(same || rank != 0, "train",
                 "the parameters differ across ranks after step " + std::to_string(s.step) +
                     " (checksums disagree)");
    }
    // Before this step's validation and checkpoint, so a resume from it continues identically.
    if (!rolled_back && finite && ts.refit_base_every > 0 && s.step % ts.refit_base_every == 0)
      refit_base();
    std::string val_text;
    if (!rolled_back && finite && (s.step % ts.validate_every == 0 || last)) {
      last_val = validate();
      char buffer[32];
      std::snprintf(buffer, sizeof buffer, "%.9g", last_val);
      val_text = buffer;
      if (last_val < s.best_val) {
        s.best_val = last_val;
        checkpoint(s.best_path, false);
      }
    }
    const double seconds = s.seconds_before + seconds_since(t_start);
    if (rank == 0 && s.log && !rolled_back) {
      std::fprintf(s.log, "%ld,%ld,%.9g,%.9g,%.9g,%.6g,%.3f,%s\n", step + 1, step / per_epoch,
                   loss_bpv, grad_norm, lr, double(ts.batch) / step_wall, seconds,
                   val_text.c_str());
      std::fflush(s.log);
    }
    if (finite && !rolled_back && (s.step % ts.checkpoint_every == 0 || last || stopping)) {
      const double before = s.seconds_before;
      s.seconds_before = seconds;
      checkpoint(s.checkpoint_path, true);
      s.seconds_before = before;
    }
    if (rank == 0 && (seconds_since(t_start) - last_print >= ts.print_every_s || last)) {
      last_print = seconds_since(t_start);
      const double elapsed = seconds_since(t_start);
      const double rate = double(steps_run) / std::max(1e-9, elapsed);
      std::fprintf(stdout,
                   "fieldflow train: step %ld/%ld (epoch %ld)  loss %.4f bits/voxel  val %s  "
                   "%.3g fields/s  ETA %s\n",
                   s.step, ts.steps, step / per_epoch, last_loss,
                   std::isnan(last_val) ? "-" : format_number(last_val).c_str(),
                   double(ts.batch) / step_wall,
                   duration_text(double(ts.steps - s.step) / std::max(1e-9, rate)).c_str());
    }
    if (stopping && !last) {
      // The signal this rank saw, or SIGTERM when only another rank saw one.
      if (by_signal) summary.stop_signal = g_stop_signal != 0 ? int(g_stop_signal) : SIGTERM;
      summary.time_limit = !by_signal;
      if (rank == 0)
        std::fprintf(stdout, "fieldflow train: %s after step %ld; checkpoint written to %s\n",
                     by_signal ? "stopped by a signal" : "time limit reached", s.step,
                     s.checkpoint_path.c_str());
      break;
    }
  }

  if (s.step == 0 && ts.steps == 0) {
    last_val = validate();
    if (last_val < s.best_val) {
      s.best_val = last_val;
      checkpoint(s.best_path, false);
    }
  }
  summary.step = s.step;
  for (int i : s.train_index) summary.training_fields.push_back(s.train_set.fields[size_t(i)]);
  for (int i : s.validation_index)
    summary.validation_fields.push_back(s.validation_set.fields[size_t(i)]);
  summary.skipped = s.skipped;
  summary.rollbacks = s.rollbacks;
  summary.last_loss_bpv = last_loss;
  summary.best_val_bpv = s.best_val;
  summary.seconds = seconds_since(t_start);
  summary.allreduce_seconds_per_step = steps_run ? allreduce_seconds / double(steps_run) : 0;
  if (!step_seconds.empty()) {
    std::sort(step_seconds.begin(), step_seconds.end());
    summary.step_seconds = step_seconds[step_seconds.size() / 2];
  }
  return summary;
}

}  // namespace ff
