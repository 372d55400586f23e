#pragma once
// Shared by the tests that run under mpirun (tests/mpi_*.cpp): the world communicator, a folder
// both ranks see, what a call throws on this rank, and the body of main().
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

#include "fieldflow/core/error.hpp"
#include "fieldflow/train/communicator.hpp"

namespace ff::mpi_test {

inline Communicator* world = nullptr;

// One folder for both ranks (they share the parent: mpirun), emptied by rank 0.
inline std::filesystem::path shared_dir(const std::string& name) {
  namespace fs = std::filesystem;
  const fs::path p =
      fs::temp_directory_path() / ("fieldflow_mpi_" + name + "_" + std::to_string(::getppid()));
  if (world->rank() == 0) {
    fs::remove_all(p);
    fs::create_directories(p);
  }
  world->barrier();
  return p;
}

// What the function throws on this rank: "error: <message>", "other rank", or "ok".
inline std::string outcome(const std::function<void()>& f) {
  try {
    f();
  } catch (const OtherRankFailed&) {
    return "other rank";
  } catch (const Error& e) {
    return std::string("error: ") + e.what();
  }
  return "ok";
}

// main(): every test on every rank, one thread per rank; any failure on any rank fails the job.
inline int run_all_tests(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  omp_set_num_threads(1);  // tiny grids; two ranks share the machine
  Communicator communicator;
  world = &communicator;
  const int status = RUN_ALL_TESTS();
  return communicator.all_ok(status == 0) ? 0 : 1;
}

}  // namespace ff::mpi_test
