// io: provenance attributes (version, commit, SIMD target, settings) on grids, stacks and
// snapshots, read back through the HDF5 helpers.
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <filesystem>
#include <regex>

#include "fieldflow/core/provenance.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/io/hdf5.hpp"
#include "fieldflow/io/provenance.hpp"
#include "fieldflow/io/snapshot.hpp"

using namespace ff;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir() {
  const fs::path p = fs::temp_directory_path() / ("ff_io_provenance_" + std::to_string(getpid()));
  fs::create_directories(p);
  return p;
}
}  // namespace

TEST(IoProvenance, BuildInfoIsTheProjectVersionAndACommit) {
  EXPECT_TRUE(std::regex_match(fieldflow_version(), std::regex("[0-9]+\\.[0-9]+\\.[0-9]+")))
      << fieldflow_version();
  // A full hash (dirty when tracked files changed), or "unknown" outside a git checkout.
  EXPECT_TRUE(
      std::regex_match(fieldflow_git_commit(), std::regex("([0-9a-f]{40}(-dirty)?)|unknown")))
      << fieldflow_git_commit();
  const Provenance p = provenance("a: 1\n", "AVX2");
  EXPECT_EQ(p.version, fieldflow_version());
  EXPECT_EQ(p.git_commit, fieldflow_git_commit());
  EXPECT_EQ(p.simd_target, "AVX2");
  EXPECT_EQ(p.settings, "a: 1\n");
}

TEST(IoProvenance, GridsStacksAndSnapshotsCarryIt) {
  const fs::path dir = temp_dir();
  GridF g(4, 10.0, 0.5);
  for (size_t i = 0; i < g.values.size(); ++i) g.values[i] = float(i % 7) - 3.0f;
  const Provenance given = provenance("paint:\n  grid: 4\n", "SSE4");

  const std::string grid = (dir / "g.h5").string();
  write_grid(grid, g, GridPrecision::float32, given);
  Provenance back = read_provenance(grid);
  EXPECT_EQ(back.version, given.version);
  EXPECT_EQ(back.git_commit, given.git_commit);
  EXPECT_EQ(back.simd_target, "SSE4");
  EXPECT_EQ(back.settings, "paint:\n  grid: 4\n");
  EXPECT_EQ(read_grid_as<float>(grid).values, g.values);  // readers are unaffected

  // Without settings: version and commit only.
  const std::string stack = (dir / "s.h5").string();
  write_grid_stack(stack, std::vector<GridF>{g, g});
  back = read_provenance(stack);
  EXPECT_EQ(back.version, fieldflow_version());
  EXPECT_EQ(back.git_commit, fieldflow_git_commit());
  EXPECT_EQ(back.settings, "");
  EXPECT_FALSE(h5::File::open(stack).root().has_attribute("settings"));

  const std::vector<std::array<double, 3>> pos{{1, 2, 3}, {4, 5, 6}}, vel{{0, 0, 0}, {1, 1, 1}};
  const std::vector<uint64_t> ids{1, 2};
  SnapshotHeader h;
  h.box_size_mpch = 10.0;
  SnapshotWriteOptions opts;
  opts.num_files = 2;
  write_snapshot((dir / "snap").string(), h, pos, vel, ids, opts, given);
  for (const char* f : {"snap.0.hdf5", "snap.1.hdf5"}) {
    back = read_provenance((dir / f).string());
    EXPECT_EQ(back.settings, given.settings) << f;
    EXPECT_EQ(back.git_commit, given.git_commit) << f;
  }
  fs::remove_all(dir);
}
