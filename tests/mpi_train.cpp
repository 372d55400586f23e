// train under `mpirun -np 2`: the Communicator's collectives and error agreement; one rank and two
// ranks train the same model (same losses for 20 steps, to float-reduction tolerance, parameters
// checked equal across ranks every step); a NaN on one rank is skipped on both and repeated NaNs
// roll both back; diverging parameters and a bad file on one rank stop both ranks, one of them
// reporting.
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "error_of.hpp"
#include "fieldflow/train/communicator.hpp"
#include "fieldflow/train/trainer.hpp"
#include "mpi_test.hpp"
#include "train_test_data.hpp"

namespace ff {
namespace {

using namespace ff::testing_train;

using namespace ff::mpi_test;

std::vector<std::vector<double>> log_numbers(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  std::vector<std::vector<double>> rows;
  while (std::getline(in, line)) {
    std::vector<double> row;
    std::stringstream ss(line);
    std::string cell;
    for (int c = 0; c < 5 && std::getline(ss, cell, ','); ++c) row.push_back(std::stod(cell));
    rows.push_back(row);
  }
  return rows;
}

TEST(MpiCommunicator, CollectivesAndAgreement) {
  ASSERT_EQ(world->size(), 2);
  double v[2] = {1.0 + world->rank(), 10.0};
  world->sum(v, 2);
  EXPECT_EQ(v[0], 3.0);
  EXPECT_EQ(v[1], 20.0);
  EXPECT_TRUE(world->all_equal(42));
  EXPECT_FALSE(world->all_equal(uint64_t(world->rank())));
  std::string text = world->rank() == 0 ? "from rank 0" : "";
  world->broadcast(text);
  EXPECT_EQ(text, "from rank 0");
  // Rank 1 fails: it reports, rank 0 stops quietly.
  const std::string got = outcome([] {
    world->guarded([] {
      if (world->rank() == 1) throw Error("input.h5", "broken");
    });
  });
  EXPECT_EQ(got, world->rank() == 1 ? "error: input.h5: broken" : "other rank");
  // Both fail: the lowest rank reports.
  const std::string both =
      outcome([] { world->agree(false, "f", "rank " + std::to_string(world->rank())); });
  EXPECT_EQ(both, world->rank() == 0 ? "error: f: rank 0" : "other rank");
  EXPECT_EQ(outcome([] { world->agree(true); }), "ok");
}

class MpiTrain : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(shared_dir("train_data"));
    data_ = (*dir_ / "train.h5").string();
    if (world->rank() == 0) write_stack(*dir_, "train.h5", 24, 8, 16.0, 21);
    world->barrier();
  }
  static void TearDownTestSuite() {
    world->barrier();
    if (world->rank() == 0) fs::remove_all(*dir_);
    delete dir_;
  }
  // Trains the tiny model with 1 rank (rank 0 alone) and with 2, with `extra` overrides; checks
  // the same losses and learning rates.
  void one_and_two_ranks(const std::string& name, const std::vector<std::string>& extra);
  static fs::path* dir_;
  static std::string data_;
};
fs::path* MpiTrain::dir_ = nullptr;
std::string MpiTrain::data_;

// Also with the correlated base refitted every 5 steps (its latent spectra shared over the
// ranks).
TEST_F(MpiTrain, OneAndTwoRanksTrainTheSameModel) {
  for (const bool refit : {false, true}) {
    SCOPED_TRACE(refit ? "refit_base_every 5" : "standard normal base");
    one_and_two_ranks(
        refit ? "refit" : "plain",
        refit ? std::vector<std::string>{"flow.base.kind=correlated_gaussian",
                                         "flow.base.power=measured", "train.refit_base_every=5"}
              : std::vector<std::string>{});
  }
}

void MpiTrain::one_and_two_ranks(const std::string& name, const std::vector<std::string>& extra) {
  const std::string one = (*dir_ / (name + "_one")).string();
  const std::string two = (*dir_ / (name + "_two")).string();
  std::vector<std::string> o{"train.steps=20", "train.batch=6", "train.validate_every=10"};
  o.insert(o.end(), extra.begin(), extra.end());
  if (world->rank() == 0) {
    const Communicator single(false);
    Trainer(tiny_config(data_, one, o), single, false).run();
  }
  world->barrier();
  // check_every = 1: the parameters are compared across the ranks after every step.
  const TrainSummary s = Trainer(tiny_config(data_, two, o), *world, false).run();
  EXPECT_EQ(s.step, 20);
  if (world->rank() != 0) return;
  const auto a = log_numbers(one + "/log.csv"), b = log_numbers(two + "/log.csv");
  ASSERT_EQ(a.size(), 20u);
  ASSERT_EQ(b.size(), 20u);
  for (size_t r = 0; r < a.size(); ++r) {
    EXPECT_EQ(a[r][0], b[r][0]);
    EXPECT_EQ(a[r][1], b[r][1]);
    EXPECT_NEAR(a[r][2], b[r][2], 1e-4 * std::max(1.0, std::abs(a[r][2]))) << "step " << r + 1;
    EXPECT_NEAR(a[r][3], b[r][3], 1e-3 * std::max(1.0, std::abs(a[r][3]))) << "step " << r + 1;
    EXPECT_EQ(a[r][4], b[r][4]);
  }
}

TEST_F(MpiTrain, NanOnOneRankIsSkippedEverywhereAndRepeatsRollBack) {
  const std::string rd = (*dir_ / "nan").string();
  TrainHooks hooks;
  int calls = 0;
  hooks.after_backward = [&](long, int rank, MultiScaleFlow<float>& flow) {
    ++calls;
    if (rank == 1 && (calls == 3 || (calls >= 7 && calls <= 9)))
      flow.params()[0]->grad[0] = std::numeric_limits<float>::infinity() * 0.0f;
  };
  const TrainSummary s =
      Trainer(tiny_config(data_, rd,
                          {"train.steps=8", "train.max_skips=3", "train.checkpoint_every=4"}),
              *world, false, hooks)
          .run();
  EXPECT_EQ(s.step, 8);
  EXPECT_EQ(s.skipped, 4);
  EXPECT_EQ(s.rollbacks, 1);
}

TEST_F(MpiTrain, DivergingParametersStopBothRanks) {
  const std::string rd = (*dir_ / "diverge").string();
  TrainHooks hooks;
  hooks.after_backward = [](long step, int rank, MultiScaleFlow<float>& flow) {
    if (rank == 1 && step == 2) flow.params()[0]->value[0] += 1e-3f;
  };
  const std::string got = outcome(
      [&] { Trainer(tiny_config(data_, rd, {"train.steps=6"}), *world, false, hooks).run(); });
  EXPECT_EQ(got, world->rank() == 0
                     ? "error: train: the parameters differ across ranks after step 3 "
                       "(checksums disagree)"
                     : "other rank");
  // Checked only every check_every steps: with 10 the run of 6 steps does not see it.
  const std::string unchecked = outcome([&] {
    Trainer(tiny_config(data_, rd + "_unchecked", {"train.steps=6", "train.check_every=10"}),
            *world, false, hooks)
        .run();
  });
  EXPECT_EQ(unchecked, "ok");
}

TEST_F(MpiTrain, BadFileOnOneRankStopsBoth) {
  const fs::path d = shared_dir("train_bad");
  const std::string good = (d / "a.h5").string(), bad = (d / "b.h5").string();
  if (world->rank() == 0) {
    write_stack(d, "a.h5", 6, 8, 16.0, 1);
    write_stack(d, "b.h5", 6, 8, 16.0, 2);
    fs::resize_file(bad, fs::file_size(bad) / 2);  // truncated
  }
  world->barrier();
  // Files are inspected round-robin: b.h5 by rank 1.
  const std::string got = outcome([&] {
    Trainer(tiny_config((d / "*.h5").string(), (d / "run").string()), *world, false).run();
  });
  if (world->rank() == 1) {
    EXPECT_EQ(got.rfind("error: " + bad + ": ", 0), 0u) << got;
  } else {
    EXPECT_EQ(got, "other rank");
  }
  // A missing file among existing ones.
  const std::string missing = outcome([&] {
    Trainer(tiny_config(good, (d / "run2").string(),
                        {"data.train=[" + good + ", " + (d / "gone.h5").string() + "]"}),
            *world, false)
        .run();
  });
  if (world->rank() == 1)
    EXPECT_EQ(missing, "error: " + (d / "gone.h5").string() +
                           ": no such file (neither a grid file nor a snapshot base name)");
  else
    EXPECT_EQ(missing, "other rank");
  world->barrier();
  if (world->rank() == 0) fs::remove_all(d);
}

}  // namespace
}  // namespace ff

int main(int argc, char** argv) {
  return ff::mpi_test::run_all_tests(argc, argv);
}
