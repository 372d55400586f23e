// train's data side: the validation split, the data order and batches (pure functions, the same
// for any rank count), the 48 symmetries and shifts, refusals of mismatched or missing files, and
// the settings with the resume check.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numbers>
#include <set>
#include <sstream>

#include "error_of.hpp"
#include "fieldflow/train/communicator.hpp"
#include "fieldflow/train/dataset.hpp"
#include "train_test_data.hpp"

namespace ff {
namespace {

using namespace ff::testing_train;

using std::numbers::pi;

// ---- Data order, batches, augmentation ----

TEST(TrainData, ValidationSplitIsSeededDisjointAndComplete) {
  const auto a = split_validation(50, 0.1, 7), b = split_validation(50, 0.1, 7),
             c = split_validation(50, 0.1, 8);
  EXPECT_EQ(a[1].size(), 5u);
  EXPECT_EQ(a[0].size(), 45u);
  EXPECT_EQ(a[1], b[1]);
  EXPECT_NE(a[1], c[1]);
  std::set<int> all(a[0].begin(), a[0].end());
  for (int v : a[1]) EXPECT_TRUE(all.insert(v).second);
  EXPECT_EQ(all.size(), 50u);
  EXPECT_EQ(split_validation(10, 0.01, 1)[1].size(), 1u);  // at least one held out
  EXPECT_EQ(split_validation(10, 0.0, 1)[1].size(), 0u);
}

TEST(TrainData, EpochOrderIsAPermutationOfSeedAndEpoch) {
  const auto o = epoch_order(20, 3, 0);
  std::vector<int> sorted = o;
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 20; ++i) EXPECT_EQ(sorted[size_t(i)], i);
  EXPECT_EQ(o, epoch_order(20, 3, 0));
  EXPECT_NE(o, epoch_order(20, 3, 1));
  EXPECT_NE(o, epoch_order(20, 4, 0));
}

TEST(TrainData, BatchOfAStepIsTheSameForAnyRankCount) {
  const int count = 23, batch = 7;
  for (long step : {0L, 2L, 3L, 9L}) {
    const long epoch = step / steps_per_epoch(count, batch);
    const auto order = epoch_order(count, 5, epoch);
    const auto whole = batch_slots(step, count, batch, 0, 1, order);
    ASSERT_EQ(whole.size(), size_t(batch));
    for (int ranks : {2, 3, 4, 7}) {
      std::vector<BatchSlot> joined;
      for (int r = 0; r < ranks; ++r)
        for (const BatchSlot& s : batch_slots(step, count, batch, r, ranks, order))
          joined.push_back(s);
      ASSERT_EQ(joined.size(), whole.size()) << ranks;
      for (size_t j = 0; j < whole.size(); ++j) {
        EXPECT_EQ(joined[j].field, whole[j].field);
        EXPECT_EQ(joined[j].position, whole[j].position);
        EXPECT_EQ(joined[j].epoch, whole[j].epoch);
      }
    }
  }
  // Steps of one epoch never repeat a field.
  std::set<int> seen;
  const auto order = epoch_order(count, 5, 0);
  for (long step = 0; step < steps_per_epoch(count, batch); ++step)
    for (const BatchSlot& s : batch_slots(step, count, batch, 0, 1, order))
      EXPECT_TRUE(seen.insert(s.field).second);
}

std::vector<float> ramp_field(int n) {
  std::vector<float> f(size_t(n) * n * n);
  for (size_t i = 0; i < f.size(); ++i) f[i] = float(i) + 0.25f * float(i % 7);
  return f;
}

TEST(TrainData, AugmentationsAreThe48SymmetriesTimesShifts) {
  const int n = 4;
  const std::vector<float> in = ramp_field(n);
  std::set<std::vector<float>> images;
  std::set<int> indices;
  for (long position = 0; position < 2000 && indices.size() < 48; ++position) {
    const Augmentation a = draw_augmentation(9, 0, position, false, true);
    std::vector<float> out(in.size());
    apply_augmentation(a, n, in.data(), out.data());
    images.insert(out);
    indices.insert(a.symmetry_index());
    // A permutation of the values.
    std::vector<float> s1 = in, s2 = out;
    std::sort(s1.begin(), s1.end());
    std::sort(s2.begin(), s2.end());
    EXPECT_EQ(s1, s2);
  }
  EXPECT_EQ(indices.size(), 48u);
  EXPECT_EQ(images.size(), 48u);  // all distinct on a field without symmetry
  // A pure function of (seed, epoch, position); the switches turn each part off.
  const Augmentation a = draw_augmentation(9, 2, 5, true, true);
  const Augmentation b = draw_augmentation(9, 2, 5, true, true);
  EXPECT_EQ(a.shift, b.shift);
  EXPECT_EQ(a.axes, b.axes);
  EXPECT_EQ(a.flip, b.flip);
  const Augmentation none = draw_augmentation(9, 2, 5, false, false);
  EXPECT_EQ(none.symmetry_index(), 0);
  EXPECT_EQ(none.shift, (std::array<int, 3>{0, 0, 0}));
}

TEST(TrainData, ShiftAndReflectionMoveASpikeWhereExpected) {
  const int n = 8;
  std::vector<float> in(size_t(n) * n * n, 0.0f), out(in.size());
  in[size_t((1 * n + 2) * n + 3)] = 1.0f;  // spike at (1, 2, 3)
  Augmentation a;
  a.shift = {2, 0, 1};
  apply_augmentation(a, n, in.data(), out.data());
  // out(p) = in(p + shift): the spike moves to (1 - 2, 2, 3 - 1) mod n = (7, 2, 2).
  EXPECT_EQ(out[size_t((7 * n + 2) * n + 2)], 1.0f);
  Augmentation r;
  r.flip = {true, false, false};
  r.axes = {1, 0, 2};  // output x reads input y
  apply_augmentation(r, n, in.data(), out.data());
  // out(p) = in(q) with q[y] = -p[x], q[x] = p[y], q[z] = p[z]: spike at (-2, 1, 3) = (6, 1, 3).
  EXPECT_EQ(out[size_t((6 * n + 1) * n + 3)], 1.0f);
}

TEST(TrainData, RefusesMismatchedBoxGridAndMissingFiles) {
  const auto dir = temp_dir("refuse");
  write_stack(dir, "a.h5", 2, 8, 20.0, 1);
  const std::string other_box = write_stack(dir, "b.h5", 2, 8, 30.0, 2);
  const std::string other_grid = write_stack(dir, "c16.h5", 1, 16, 20.0, 3);
  const Communicator comm(false);
  const DataSettings data;
  const std::string cache = (dir / "cache").string();
  EXPECT_EQ(error_of([&] { gather_fields({(dir / "[ab].h5").string()}, 8, data, cache, comm); }),
            other_box + ": box of 30 Mpc/h, the first field's is 20 Mpc/h");
  EXPECT_EQ(error_of([&] { gather_fields({other_grid}, 8, data, cache, comm); }),
            other_grid + ": holds a 16^3 grid, the flow models 8^3 (flow.grid)");
  EXPECT_EQ(
      error_of([&] { gather_fields({(dir / "none.h5").string()}, 8, data, cache, comm); }),
      (dir / "none.h5").string() + ": no such file (neither a grid file nor a snapshot base name)");
  EXPECT_EQ(error_of([&] { gather_fields({(dir / "z*.h5").string()}, 8, data, cache, comm); }),
            (dir / "z*.h5").string() + ": matches no file");
}

// ---- Settings ----

TEST(TrainSettings, ResumeCheckNamesTheFirstDifferingMustMatchKey) {
  const TrainConfig a = tiny_config("x.h5", "run");
  EXPECT_FALSE(first_resume_difference(a, tiny_config("x.h5", "run", {"train.steps=99"})));
  EXPECT_FALSE(first_resume_difference(a, tiny_config("x.h5", "other", {"train.print_every_s=3"})));
  EXPECT_EQ(*first_resume_difference(a, tiny_config("x.h5", "run", {"train.batch=5"})),
            "train.batch: 4 in the run folder, 5 now");
  EXPECT_EQ(*first_resume_difference(a, tiny_config("x.h5", "run", {"data.preprocess=identity"})),
            "data.preprocess: log1p in the run folder, identity now");
  EXPECT_EQ(*first_resume_difference(a, tiny_config("x.h5", "run", {"flow.seed=2"})),
            "flow.seed: 1 in the run folder, 2 now");
  // The dump reads back to the same settings.
  Config again = Config::parse(a.yaml(), "dump");
  EXPECT_FALSE(first_resume_difference(a, read_train_config(again)));
}

TEST(TrainSettings, MeasuredBasePowerIsLeftToTheTrainer) {
  const TrainConfig c = tiny_config(
      "x.h5", "run", {"flow.base.kind=correlated_gaussian", "flow.base.power=measured"});
  EXPECT_TRUE(c.flow.base_power_measured);
  EXPECT_TRUE(c.flow.base_pk.empty());
  EXPECT_NE(c.yaml().find("power: measured"), std::string::npos);
  EXPECT_EQ(error_of([&] { MultiScaleFlow<float> flow(c.flow); }),
            "flow.base: power: measured needs the P(k) that `fieldflow train` measures");
  EXPECT_NE(error_of([] {
              tiny_config("x.h5", "run",
                          {"flow.base.kind=correlated_gaussian", "flow.base.power=measured",
                           "flow.base.box_size_mpch=100"});
            }).find("power: measured takes P(k) and the box from the data"),
            std::string::npos);
}

TEST(TrainSettings, RefusesBadValuesWithTheKey) {
  EXPECT_EQ(error_of([] { tiny_config("x.h5", "run", {"train.batch=0"}); }),
            "tiny.yaml: train.batch: expected an integer >= 1 and <= 1048576, got 0");
  EXPECT_NE(
      error_of([] { tiny_config("x.h5", "run", {"data.preprocess=log"}); }).find("data.preprocess"),
      std::string::npos);
  EXPECT_NE(error_of([] {
              tiny_config("x.h5", "run", {"train.rollback_lr_factor=2"});
            }).find("train.rollback_lr_factor"),
            std::string::npos);
  EXPECT_NE(error_of([] { tiny_config("x.h5", "run", {"train.bogus=1"}); }).find("train.bogus"),
            std::string::npos);
}

}  // namespace
}  // namespace ff
