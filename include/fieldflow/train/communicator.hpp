#pragma once
// The one door to MPI (no other module includes mpi.h). Under mpirun or srun it initialises MPI
// and finalises it on destruction (RAII); launched without them it is a single rank and every
// collective is a local no-op, so commands and tests work without mpirun.
//
// Failures stop every rank together and print one line: a rank that fails inside a guarded
// section calls agree(false, message); every rank learns of it in the same collective, the lowest
// failing rank throws its Error (printed by the command line), the others throw OtherRankFailed,
// which the command line turns into a silent non-zero exit. An error outside such a section, while
// other ranks may wait in a collective, goes through abort_all(): one line, then MPI_Abort.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

#include "fieldflow/core/error.hpp"

namespace ff {

// Thrown on the ranks that did not fail themselves: the failing rank prints the message.
class OtherRankFailed : public std::runtime_error {
 public:
  OtherRankFailed() : std::runtime_error("another rank failed (see its message)") {}
};

class Communicator {
 public:
  // MPI_Init when launched by mpirun/srun (and MPI is not yet initialised). world = false gives
  // a single rank even under mpirun (tests compare one rank with several in one job).
  explicit Communicator(bool world = true);
  ~Communicator();  // MPI_Finalize (when this object initialised MPI)
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  // Whether the environment says a launcher (mpirun, srun, hydra) started this process.
  static bool launched_by_mpi();
  // Ranks of this job on this node (from the launcher's environment; 1 without one).
  static int local_ranks();

  bool active() const { return active_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

  // In place, over all ranks; no-ops on one rank.
  void sum(double* values, size_t count) const;
  void sum(float* values, size_t count) const;
  void max(double* values, size_t count) const;
  void min(double* values, size_t count) const;
  // Whether every rank holds the same value (a checksum, a step number).
  bool all_equal(uint64_t value) const;
  void broadcast(double* values, size_t count, int root = 0) const;
  void broadcast(std::string& text, int root = 0) const;
  void barrier() const;

  // True when ok on every rank.
  bool all_ok(bool ok) const;
  // The collective error check: returns when every rank is ok; otherwise the lowest failing rank
  // throws Error(input, problem) and the others OtherRankFailed. Every rank must call it.
  // The silent ranks also stop printing errors (ff::prints_errors).
  void agree(const std::optional<Error>& failure) const;
  void agree(bool ok, const std::string& input = "", const std::string& problem = "") const {
    agree(ok ? std::nullopt : std::optional<Error>(Error(input, problem)));
  }
  // Runs f on this rank, catching its exception, then agree()s: the guarded section. An
  // exception that is not an ff::Error is said about `context`.
  template <typename F>
  void guarded(F&& f, const std::string& context = "") const {
    std::optional<Error> failure;
    try {
      f();
    } catch (const std::exception& e) {
      failure = as_error(e, context);
    }
    agree(failure);
  }

  // Prints "fieldflow: <line>" on stderr and stops every rank of the job (MPI_Abort; exit(code)
  // without MPI). For failures that other ranks cannot learn of through a collective.
  [[noreturn]] void abort_all(const std::string& line, int code = 1) const;

 private:
  static Error as_error(const std::exception& e, const std::string& context);
  bool active_ = false;
  bool owns_ = false;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace ff
