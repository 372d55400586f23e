// train under `mpirun -np 2`: the Communicator's collectives and error agreement (the failing
// rank reports, the others stop quietly), and a bad file on one rank stopping both.
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "error_of.hpp"
#include "fieldflow/train/communicator.hpp"
#include "fieldflow/train/dataset.hpp"
#include "train_test_data.hpp"

namespace ff {
namespace {

using namespace ff::testing_train;

Communicator* world = nullptr;

// One folder for both ranks (they share the parent: mpirun).
fs::path shared_dir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() /
                     ("fieldflow_mpi_train_" + name + "_" + std::to_string(::getppid()));
  if (world->rank() == 0) {
    fs::remove_all(p);
    fs::create_directories(p);
  }
  world->barrier();
  return p;
}

// What the function throws on this rank: "error: <message>", "other rank", or "ok".
std::string outcome(const std::function<void()>& f) {
  try {
    f();
  } catch (const OtherRankFailed&) {
    return "other rank";
  } catch (const Error& e) {
    return std::string("error: ") + e.what();
  }
  return "ok";
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

TEST(MpiDataset, BadFileOnOneRankStopsBoth) {
  const fs::path d = shared_dir("bad");
  const std::string bad = (d / "b.h5").string();
  if (world->rank() == 0) {
    write_stack(d, "a.h5", 2, 8, 16.0, 1);
    write_stack(d, "b.h5", 2, 8, 16.0, 2);
    fs::resize_file(bad, fs::file_size(bad) / 2);  // truncated
  }
  world->barrier();
  // Files are inspected round-robin: b.h5 by rank 1, which reports; rank 0 stops quietly.
  const DataSettings data;
  const std::string got = outcome(
      [&] { gather_fields({(d / "*.h5").string()}, 8, data, (d / "cache").string(), *world); });
  if (world->rank() == 1)
    EXPECT_EQ(got.rfind("error: " + bad + ": ", 0), 0u) << got;
  else
    EXPECT_EQ(got, "other rank");
  world->barrier();
  if (world->rank() == 0) fs::remove_all(d);
}

}  // namespace
}  // namespace ff

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  omp_set_num_threads(1);  // tiny grids; two ranks share the machine
  ff::Communicator world;
  ff::world = &world;
  const int status = RUN_ALL_TESTS();
  // Any failure on any rank fails the job.
  return world.all_ok(status == 0) ? 0 : 1;
}
