// train: the data order and augmentation (pure functions, rank-count invariant), the density over
// delta against the CDF (1D) and a dense Gaussian (tiny grid), the measured statistics, the
// settings and the resume check, and single-rank training runs (files, resume bit for bit, every
// key changing the result).
#include <gtest/gtest.h>

// GCC 12 reports false -Wmaybe-uninitialized inside the intrinsics Eigen uses.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <omp.h>

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <fstream>
#include <numbers>
#include <set>
#include <sstream>

#include "error_of.hpp"
#include "fieldflow/core/config.hpp"
#include "fieldflow/core/provenance.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/io/provenance.hpp"
#include "fieldflow/stats/power_spectrum.hpp"
#include "fieldflow/train/calibrate.hpp"
#include "fieldflow/train/communicator.hpp"
#include "fieldflow/train/dataset.hpp"
#include "fieldflow/train/trainer.hpp"
#include "train_test_data.hpp"

namespace ff {
namespace {

using namespace ff::testing_train;

using std::numbers::pi;

// ---- The density over delta ----

FlowSpec identity_spec(int grid) {
  FlowSpec s;
  s.grid = grid;
  s.levels = {{0, 0, 1, 0}};  // no coupling: the identity
  return s;
}

double normal_cdf(double y) {
  return 0.5 * std::erfc(-y / std::sqrt(2.0));
}

TEST(TrainDensity, OneDimensionalDensityIsTheDerivativeOfTheCdf) {
  // Identity flow, standard-normal base: the voxels are independent and
  // P(delta_i <= d) = Phi(y(d)), so a field with every voxel at d has log p = N log F'(d).
  const int n = 2;
  const size_t N = 8;
  MultiScaleFlow<float> flow(identity_spec(n));
  // The third case adds a marginal map (`calibrate` method marginal) to log1p.
  for (int variant = 0; variant < 3; ++variant) {
    const PreprocessTransform t =
        variant == 0 ? PreprocessTransform::identity : PreprocessTransform::log1p;
    Preprocessing p;
    p.transform = t;
    p.mean = t == PreprocessTransform::log1p ? -0.2 : 0.1;
    p.std = t == PreprocessTransform::log1p ? 0.7 : 1.3;
    p.eps = t == PreprocessTransform::log1p ? 1e-3 : 0.0;
    if (variant == 2)
      p.marginal = MarginalMap({-2, -0.5, 0.4, 1.5, 3}, {-2.2, -0.4, 0.1, 1.9, 3.1});
    for (double d : {-0.9, -0.3, 0.0, 0.5, 2.0, 6.0}) {
      const double h = 1e-5;
      const double cdf_derivative =
          (normal_cdf(p.forward(d + h)) - normal_cdf(p.forward(d - h))) / (2 * h);
      std::vector<float> field(N, float(d));
      const double logp = log_prob_over_delta(flow, p, field, 1)[0];
      // float32 fields: compare at the value the flow saw.
      const double df = double(float(d));
      const double expect =
          double(N) *
          std::log((normal_cdf(p.forward(df + h)) - normal_cdf(p.forward(df - h))) / (2 * h));
      EXPECT_NEAR(logp, expect, 1e-4 * std::max(1.0, std::abs(expect)))
          << variant << " delta " << d << " F' " << cdf_derivative;
    }
  }
}

TEST(TrainDensity, TinyGridMatchesDenseGaussianOverDelta) {
  // Identity flow over a correlated base with a power-law P(k) (interpolated exactly in
  // log k - log P): log p(delta) = log N(y; 0, C) + sum log|dy/ddelta|, C dense from its spectrum.
  const int n = 4;
  const size_t N = 64;
  const double box = 10.0, kf = 2 * pi / box;
  FlowSpec spec = identity_spec(n);
  spec.base = BaseKind::correlated_gaussian;
  spec.base_box_size_mpch = box;
  const double amplitude = 3.0;
  for (double k = 0.5 * kf; k < 4 * kf * n; k *= 1.5) {
    spec.base_k_hmpc.push_back(k);
    spec.base_pk.push_back(amplitude * std::pow(k, -1.5));
  }
  MultiScaleFlow<float> flow(spec);
  Preprocessing p;
  p.transform = PreprocessTransform::log1p;
  p.mean = 0.1;
  p.std = 0.8;
  p.eps = 1e-3;
  const auto fields = lognormal_fields(1, n, box, 4, 0.5);
  std::vector<float> delta(fields[0].values.begin(), fields[0].values.end());
  const double got = log_prob_over_delta(flow, p, delta, 1)[0];

  // Eigenvalue of mode (a, b, c): P(|k|) n^3 / L^3; k = 0 takes P at the smallest tabulated k.
  auto lambda = [&](int a, int b, int c) {
    const double k = kf * std::sqrt(double(a * a + b * b + c * c));
    const double pk = k == 0 ? spec.base_pk[0] : amplitude * std::pow(k, -1.5);
    return pk * n * n * n / (box * box * box);
  };
  Eigen::MatrixXd C(N, N);
  for (size_t i = 0; i < N; ++i)
    for (size_t j = 0; j < N; ++j) {
      const int dx = int(i / 16) - int(j / 16), dy = int(i / 4 % 4) - int(j / 4 % 4),
                dz = int(i % 4) - int(j % 4);
      double sum = 0;
      for (int a = 0; a < n; ++a)
        for (int b = 0; b < n; ++b)
          for (int c = 0; c < n; ++c) {
            const int wa = a <= n / 2 ? a : a - n, wb = b <= n / 2 ? b : b - n,
                      wc = c <= n / 2 ? c : c - n;
            sum += lambda(wa, wb, wc) * std::cos(2 * pi * (wa * dx + wb * dy + wc * dz) / n);
          }
      C(Eigen::Index(i), Eigen::Index(j)) = sum / double(N);
    }
  Eigen::VectorXd y(N);
  double log_jacobian = 0;
  for (size_t i = 0; i < N; ++i) {
    const double d = delta[i];
    y(Eigen::Index(i)) = (std::log(1 + d + p.eps) - p.mean) / p.std;
    log_jacobian += -std::log(p.std) - std::log(1 + d + p.eps);
  }
  const Eigen::LLT<Eigen::MatrixXd> llt(C);
  const Eigen::VectorXd w = llt.solve(y);
  double logdet = 0;
  for (Eigen::Index i = 0; i < Eigen::Index(N); ++i) logdet += 2 * std::log(llt.matrixL()(i, i));
  const double expect =
      -0.5 * y.dot(w) - 0.5 * logdet - 0.5 * double(N) * std::log(2 * pi) + log_jacobian;
  EXPECT_NEAR(got, expect, 1e-4 * std::abs(expect));
}

// ---- Statistics of the training data ----

TEST(TrainData, MeasuredStatisticsMatchDirectSums) {
  const auto dir = temp_dir("stats");
  const std::string a = write_stack(dir, "a.h5", 3, 8, 20.0, 1);
  const std::string b = write_stack(dir, "b.h5", 2, 8, 20.0, 2);
  const Communicator comm(false);
  DataSettings data;
  data.preprocess = "log1p";
  data.log1p_floor = 1e-3;
  const FieldSet set =
      gather_fields({(dir / "*.h5").string()}, 8, data, (dir / "cache").string(), comm);
  ASSERT_EQ(set.fields.size(), 5u);
  EXPECT_EQ(set.fields[3].path, b);
  EXPECT_EQ(set.fields[3].index, 0);
  const std::vector<int> train{0, 2, 4};
  const DataStatistics st = measure_statistics(set, train, data, comm);
  double s1 = 0, s2 = 0, count = 0, t_min = INFINITY, t_max = -INFINITY;
  std::vector<GridF> fields;
  for (int i : train) {
    GridF g = read_grid_as<float>(set.fields[size_t(i)].path, set.fields[size_t(i)].index);
    for (float& v : g.values) {
      const double t = std::log(1.0 + v + 1e-3);
      s1 += t;
      s2 += t * t;
      count += 1;
      t_min = std::min(t_min, t);
      t_max = std::max(t_max, t);
    }
    fields.push_back(std::move(g));
  }
  const double mean = s1 / count, sd = std::sqrt(s2 / count - mean * mean);
  // The trainer sums t in float32 (the fields' type): agreement to float rounding.
  EXPECT_NEAR(st.preprocessing.mean, mean, 1e-6 * std::abs(mean));
  EXPECT_NEAR(st.preprocessing.std, sd, 1e-6 * sd);
  // The range of y over every voxel of the training fields (only those: field 1 and 3 are out).
  EXPECT_NEAR(st.y_min, (t_min - mean) / sd, 1e-5);
  EXPECT_NEAR(st.y_max, (t_max - mean) / sd, 1e-5);
  EXPECT_LT(st.y_min, -1.0);
  EXPECT_GT(st.y_max, 1.0);
  // P(k) of the standardised fields, averaged; every mode (to sqrt 3 k_N) is binned.
  PowerSpectrumOptions o;
  o.k_max_over_nyquist = std::sqrt(3.0);
  std::vector<double> pk, delta_pk;
  double mean_var = 0;  // of a field's mean of y, over the fields
  for (GridF& g : fields) {
    const PowerSpectrum pd = measure_power_spectrum(g, o);
    if (delta_pk.empty()) delta_pk.assign(pd.pk.size(), 0.0);
    for (size_t b = 0; b < delta_pk.size(); ++b) delta_pk[b] += pd.pk[b] / 3.0;
    double field_mean = 0;
    for (float& v : g.values) {
      v = float((std::log(1.0 + v + 1e-3) - mean) / sd);
      field_mean += v / double(g.values.size());
    }
    mean_var += field_mean * field_mean / 3.0;
    const PowerSpectrum p = measure_power_spectrum(g, o);
    if (pk.empty()) pk.assign(p.pk.size(), 0.0);
    for (size_t b = 0; b < pk.size(); ++b) pk[b] += p.pk[b] / 3.0;
  }
  ASSERT_EQ(st.pk.size(), pk.size());
  for (size_t b = 0; b < pk.size(); ++b) EXPECT_NEAR(st.pk[b], pk[b], 1e-4 * pk[b]) << b;
  // P(k) of delta itself (the Wiener filter's), averaged the same way.
  ASSERT_EQ(st.delta_pk.size(), delta_pk.size());
  for (size_t b = 0; b < delta_pk.size(); ++b)
    EXPECT_NEAR(st.delta_pk[b], delta_pk[b], 1e-4 * delta_pk[b]) << b;
  EXPECT_GT(st.k_hmpc.back(), pi * 8 / 20.0);  // beyond k_N
  // P at k = 0: the box volume times that variance, at least 1% of P at the smallest k.
  const double pk0 = std::max(20.0 * 20.0 * 20.0 * mean_var, 0.01 * pk[0]);
  EXPECT_NEAR(st.pk0, pk0, 1e-3 * pk0);
  EXPECT_GT(st.pk0, 0.01 * st.pk[0]);  // measured here, not the floor
}

// ---- Training runs on one rank ----

struct LogRow {
  long step;
  std::vector<std::string> cells;
};

std::vector<std::vector<std::string>> read_log(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::vector<std::vector<std::string>> rows;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, ',')) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.push_back("");
    rows.push_back(cells);
  }
  return rows;
}

// The deterministic columns (step, epoch, loss_bpv, grad_norm, lr) and val_bpv of each row.
std::vector<std::string> losses(const std::string& log) {
  std::vector<std::string> out;
  const auto rows = read_log(log);
  for (size_t r = 1; r < rows.size(); ++r)
    out.push_back(rows[r][0] + "," + rows[r][1] + "," + rows[r][2] + "," + rows[r][3] + "," +
                  rows[r][4] + "," + (rows[r].size() > 7 ? rows[r][7] : ""));
  return out;
}

TrainSummary train_once(const TrainConfig& config, bool restart = false, TrainHooks hooks = {}) {
  const Communicator comm(false);
  Trainer trainer(config, comm, restart, std::move(hooks));
  return trainer.run();
}

class TrainRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(temp_dir("run"));
    data_ = write_stack(*dir_, "train.h5", 20, 8, 16.0, 11);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  std::string run(const std::string& name) const { return (*dir_ / name).string(); }
  static fs::path* dir_;
  static std::string data_;
};
fs::path* TrainRun::dir_ = nullptr;
std::string TrainRun::data_;

TEST_F(TrainRun, WritesTheRunFolderAndLearns) {
  const std::string rd = run("basic");
  const TrainSummary s =
      train_once(tiny_config(data_, rd, {"train.steps=30", "train.validate_every=10"}));
  EXPECT_EQ(s.step, 30);
  for (const char* f : {"checkpoint.h5", "best.h5", "log.csv", "settings.yaml"})
    EXPECT_TRUE(fs::exists(fs::path(rd) / f)) << f;
  const auto rows = read_log(rd + "/log.csv");
  ASSERT_EQ(rows.size(), 31u);
  EXPECT_EQ(rows[0].size(), 8u);
  EXPECT_EQ(rows[0][7], "val_bpv");
  EXPECT_EQ(rows[10][7].empty(), false);  // validated at step 10
  EXPECT_EQ(rows[9].size() < 8 || rows[9][7].empty(), true);
  // Training lowers the loss (a log-normal field is far from the identity flow's start).
  const double first = std::stod(rows[1][2]), last = std::stod(rows[30][2]);
  EXPECT_LT(last, first);
  // The checkpoint records the step, the data's box and the preprocessing.
  const FlowCheckpoint ck = load_flow_checkpoint(rd + "/checkpoint.h5");
  EXPECT_EQ(ck.extras.numbers.at("train.step"), 30.0);
  EXPECT_EQ(ck.data.box_size_mpch, 16.0);
  EXPECT_EQ(ck.preprocessing.transform, PreprocessTransform::log1p);
  EXPECT_EQ(ck.preprocessing.eps, 1e-3);
  EXPECT_TRUE(ck.has_optimizer);
  std::ifstream settings(rd + "/settings.yaml");
  std::string text((std::istreambuf_iterator<char>(settings)), {});
  EXPECT_NE(text.find("# fieldflow " + std::string(fieldflow_version()) + " (commit "),
            std::string::npos);
  EXPECT_NE(text.find("SIMD target "), std::string::npos);
  EXPECT_NE(text.find("batch: 4"), std::string::npos);
  // settings.yaml is a config: it reads back to the settings of the run.
  Config again = Config::load(rd + "/settings.yaml");
  EXPECT_FALSE(
      first_resume_difference(tiny_config(data_, rd, {"train.steps=30", "train.validate_every=10"}),
                              read_train_config(again)));
  // Both checkpoints carry the provenance: version, commit, SIMD target and the run's settings.
  for (const char* f : {"checkpoint.h5", "best.h5"}) {
    const Provenance p = read_provenance(rd + "/" + f);
    EXPECT_EQ(p.version, fieldflow_version()) << f;
    EXPECT_EQ(p.git_commit, fieldflow_git_commit()) << f;
    EXPECT_FALSE(p.simd_target.empty()) << f;
    EXPECT_NE(p.settings.find("validation_fraction: 0.2"), std::string::npos) << f;
    EXPECT_EQ(load_flow_checkpoint(rd + "/" + f).provenance.settings, p.settings) << f;
  }
}

TEST_F(TrainRun, ResumeContinuesBitForBit) {
  const std::string whole = run("whole"), parts = run("parts");
  train_once(tiny_config(data_, whole, {"train.steps=8"}));
  // Stopped by the time limit after the first step (a checkpoint there), then continued.
  const TrainSummary stopped =
      train_once(tiny_config(data_, parts, {"train.steps=8", "train.time_limit_minutes=1e-9"}));
  EXPECT_TRUE(stopped.time_limit);
  EXPECT_EQ(stopped.step, 1);
  const TrainSummary s = train_once(tiny_config(data_, parts, {"train.steps=8"}));
  EXPECT_TRUE(s.resumed);
  EXPECT_EQ(s.first_step, 1);
  EXPECT_EQ(losses(whole + "/log.csv"), losses(parts + "/log.csv"));
  // A must_match change is refused with its key; --restart starts over.
  EXPECT_EQ(error_of([&] {
              train_once(tiny_config(data_, parts, {"train.steps=8", "train.lr=0.1"}));
            }),
            "tiny.yaml: cannot continue the run in " + parts +
                ": train.lr: 0.003 in the run folder, 0.1 now "
                "(use --restart to start over)");
  const TrainSummary r = train_once(tiny_config(data_, parts, {"train.steps=2"}), true);
  EXPECT_FALSE(r.resumed);
  EXPECT_EQ(read_log(parts + "/log.csv").size(), 3u);
}

// train.refit_base_every: after a refit the base is the training fields' mean latent P(k) under
// the flow of that step (measured here on its own from the checkpoint, with every field of the
// training file used for training: the validation fields come from another file); a run that
// stops at a refit step and continues gives the same losses; a standard-normal base is refused.
TEST_F(TrainRun, RefitBaseEveryRefitsAndResumesBitForBit) {
  const std::string val = write_stack(*dir_, "refit_val.h5", 3, 8, 16.0, 98);
  const std::vector<std::string> correlated{"flow.base.kind=correlated_gaussian",
                                            "flow.base.power=measured",
                                            "data.validation=" + val,
                                            "train.schedule=constant",
                                            "train.checkpoint_every=3",
                                            "train.validate_every=3"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> o = correlated;
    o.insert(o.end(), extra.begin(), extra.end());
    return o;
  };
  const std::string plain = run("refit_plain"), whole = run("refit_whole"),
                    parts = run("refit_parts");
  train_once(tiny_config(data_, plain, with({"train.steps=6"})));
  train_once(tiny_config(data_, whole, with({"train.steps=6", "train.refit_base_every=3"})));
  const auto refit_losses = losses(whole + "/log.csv");
  const auto plain_losses = losses(plain + "/log.csv");
  ASSERT_EQ(refit_losses.size(), 6u);
  for (size_t i = 0; i < 2; ++i) EXPECT_EQ(refit_losses[i], plain_losses[i]) << "step " << i + 1;
  // Step 3's row: the same loss, another validation loss (validated after the refit); step 4:
  // another loss.
  EXPECT_EQ(refit_losses[2].substr(0, refit_losses[2].rfind(',')),
            plain_losses[2].substr(0, plain_losses[2].rfind(',')));
  EXPECT_NE(refit_losses[2], plain_losses[2]);
  EXPECT_NE(refit_losses[3], plain_losses[3]) << "the refit at step 3 changes step 4";
  // The checkpoint of step 6 holds the base of the refit at step 6.
  const FlowCheckpoint ck = load_flow_checkpoint(whole + "/checkpoint.h5");
  std::vector<double> mean;
  double pk0 = 0;
  const int fields = 20;
  for (int i = 0; i < fields; ++i) {
    const LatentPower p =
        latent_power_spectrum(*ck.flow, ck.preprocessing, read_grid_as<float>(data_, i));
    if (mean.empty()) mean.assign(p.pk.pk.size(), 0.0);
    for (size_t b = 0; b < p.pk.pk.size(); ++b) mean[b] += p.pk.pk[b] / fields;
    pk0 += p.pk0 / fields;
  }
  const std::vector<double>& table = ck.flow->spec().base_pk;
  ASSERT_EQ(table.size(), mean.size());
  for (size_t b = 0; b < mean.size(); ++b) EXPECT_NEAR(table[b] / mean[b], 1.0, 1e-6) << b;
  // P at k = 0 refitted too (the latents' mean), above the 1% floor here.
  EXPECT_GT(pk0, 0.01 * mean[0]);
  EXPECT_NEAR(ck.flow->spec().base_pk0 / pk0, 1.0, 1e-6);
  EXPECT_NE(load_flow_checkpoint(plain + "/checkpoint.h5").flow->spec().base_pk0,
            ck.flow->spec().base_pk0);
  EXPECT_NE(load_flow_checkpoint(plain + "/checkpoint.h5").flow->spec().base_pk, table);
  // Stopped at step 3 (a refit, then its checkpoint), continued to 6: the same losses.
  train_once(tiny_config(data_, parts, with({"train.steps=3", "train.refit_base_every=3"})));
  const TrainSummary s =
      train_once(tiny_config(data_, parts, with({"train.steps=6", "train.refit_base_every=3"})));
  EXPECT_TRUE(s.resumed);
  EXPECT_EQ(losses(parts + "/log.csv"), refit_losses);
  EXPECT_EQ(error_of([&] {
              train_once(tiny_config(data_, run("refit_normal"),
                                     {"train.steps=2", "train.refit_base_every=1"}));
            }),
            "tiny.yaml: train.refit_base_every needs flow.base.kind: correlated_gaussian");
}

TEST_F(TrainRun, NonFiniteStepsAreSkippedThenRolledBack) {
  const std::string rd = run("nan");
  TrainHooks hooks;
  // NaN gradients on calls 3 (one skip) and 7, 8, 9 (three in a row: a rollback to step 4).
  int calls = 0;
  hooks.after_backward = [&](long, int, MultiScaleFlow<float>& flow) {
    ++calls;
    if (calls == 3 || (calls >= 7 && calls <= 9)) flow.params()[0]->grad[0] = std::nanf("");
  };
  const TrainSummary s = train_once(
      tiny_config(data_, rd, {"train.steps=8", "train.max_skips=3", "train.checkpoint_every=4"}),
      false, hooks);
  EXPECT_EQ(s.step, 8);
  EXPECT_EQ(s.skipped, 4);
  EXPECT_EQ(s.rollbacks, 1);
  const auto rows = read_log(rd + "/log.csv");
  // Rows: steps 1, 2, 3 (skipped: nan), 3, 4, 5, 6 (nan), 6 (nan) [rollback to 4], 5, 6, 7, 8.
  int nan_rows = 0;  // the gradient norm of a skipped step is NaN
  for (size_t r = 1; r < rows.size(); ++r) nan_rows += std::isnan(std::stod(rows[r][3])) ? 1 : 0;
  EXPECT_EQ(nan_rows, 3);  // the third skip of the run rolled back instead of logging
  // The learning rate after the rollback is half of the one before at the same step.
  double lr_before = 0, lr_after = 0;
  for (size_t r = 1; r < rows.size(); ++r)
    if (rows[r][0] == "5") (lr_before == 0 ? lr_before : lr_after) = std::stod(rows[r][4]);
  EXPECT_NEAR(lr_after, 0.5 * lr_before, 1e-12);
}

// Every data: and train: key changes what training does (or refuses, or where it writes);
// train.refit_base_every: RefitBaseEveryRefitsAndResumesBitForBit.
TEST_F(TrainRun, EveryKeyChangesTheResult) {
  const std::vector<std::string> base{"train.steps=4"};
  const std::string reference = run("ref");
  train_once(tiny_config(data_, reference, base));
  const auto ref = losses(reference + "/log.csv");
  const std::vector<std::string> changes{"data.validation_fraction=0.4",
                                         "data.preprocess=identity",
                                         "data.log1p_floor=0.5",
                                         "data.augment.shifts=false",
                                         "data.augment.symmetries=false",
                                         "train.batch=3",
                                         "train.seed=5",
                                         "train.lr=1.0e-2",
                                         "train.schedule=constant",
                                         "train.min_lr_ratio=0.9",
                                         "train.warmup_steps=0",
                                         "train.clip_grad_norm=0.01",
                                         "train.validate_every=1",
                                         "train.steps=3"};
  int i = 0;
  for (const std::string& change : changes) {
    const std::string rd = run("key" + std::to_string(i++));
    std::vector<std::string> o = base;
    o.push_back(change);
    if (change == "train.min_lr_ratio=0.9") o.push_back("train.warmup_steps=0");
    train_once(tiny_config(data_, rd, o));
    EXPECT_NE(losses(rd + "/log.csv"), ref) << change;
  }
  // checkpoint_every: how many checkpoints get written shows in the checkpoint's step after a
  // stop; here the last one is at the end either way, so compare the rollback target instead.
  // data.validation: an explicit validation file replaces the held-out fraction.
  const std::string val = write_stack(*dir_, "val.h5", 3, 8, 16.0, 99);
  const std::string rd = run("keyval");
  std::vector<std::string> o = base;
  o.push_back("data.validation=" + val);
  train_once(tiny_config(data_, rd, o));
  EXPECT_NE(losses(rd + "/log.csv"), ref);
}

}  // namespace
}  // namespace ff
