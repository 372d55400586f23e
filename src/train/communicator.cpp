// MPI behind one small type. See include/fieldflow/train/communicator.hpp.
#include "fieldflow/train/communicator.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <vector>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/text.hpp"

namespace ff {

bool Communicator::launched_by_mpi() {
  // A singleton MPI_Init (no launcher) can be slow or fail in containers: MPI only under one.
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

int Communicator::local_ranks() {
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");  // Open MPI
  if (!local) local = std::getenv("MPI_LOCALNRANKS");             // MPICH (Hydra)
  if (!local) local = std::getenv("SLURM_NTASKS_PER_NODE");       // srun
  return local ? std::max(1, std::atoi(local)) : 1;
}

Communicator::Communicator(bool world) {
  if (!world || !launched_by_mpi()) return;
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    MPI_Init(nullptr, nullptr);
    owns_ = true;
  }
  active_ = true;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

Communicator::~Communicator() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (owns_ && !finalised) MPI_Finalize();
}

void Communicator::sum(double* values, size_t count) const {
  if (active_ && size_ > 1)
    MPI_Allreduce(MPI_IN_PLACE, values, int(count), MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

void Communicator::sum(float* values, size_t count) const {
  if (active_ && size_ > 1)
    MPI_Allreduce(MPI_IN_PLACE, values, int(count), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}

void Communicator::max(double* values, size_t count) const {
  if (active_ && size_ > 1)
    MPI_Allreduce(MPI_IN_PLACE, values, int(count), MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
}

void Communicator::min(double* values, size_t count) const {
  if (active_ && size_ > 1)
    MPI_Allreduce(MPI_IN_PLACE, values, int(count), MPI_DOUBLE, MPI_MIN, MPI_COMM_WORLD);
}

bool Communicator::all_equal(uint64_t value) const {
  if (!active_ || size_ == 1) return true;
  uint64_t lowest = value, highest = value;
  MPI_Allreduce(MPI_IN_PLACE, &lowest, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, &highest, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
  return lowest == highest;
}

void Communicator::broadcast(double* values, size_t count, int root) const {
  if (active_ && size_ > 1) MPI_Bcast(values, int(count), MPI_DOUBLE, root, MPI_COMM_WORLD);
}

void Communicator::broadcast(std::string& text, int root) const {
  if (!active_ || size_ == 1) return;
  unsigned long long length = text.size();
  MPI_Bcast(&length, 1, MPI_UNSIGNED_LONG_LONG, root, MPI_COMM_WORLD);
  text.resize(size_t(length));
  if (length > 0) MPI_Bcast(text.data(), int(length), MPI_CHAR, root, MPI_COMM_WORLD);
}

void Communicator::barrier() const {
  if (active_ && size_ > 1) MPI_Barrier(MPI_COMM_WORLD);
}

bool Communicator::all_ok(bool ok) const {
  if (!active_ || size_ == 1) return ok;
  int mine = ok ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &mine, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return mine == 1;
}

void Communicator::agree(const std::optional<Error>& failure) const {
  // The lowest failing rank reports; size_ means "nobody failed".
  int failing = failure ? rank_ : size_;
  if (active_ && size_ > 1)
    MPI_Allreduce(MPI_IN_PLACE, &failing, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (failing == size_) return;
  if (failing == rank_) throw *failure;
  prints_errors().store(false);
  throw OtherRankFailed();
}

Error Communicator::as_error(const std::exception& e, const std::string& context) {
  if (const auto* error = dynamic_cast<const Error*>(&e)) return *error;
  if (dynamic_cast<const std::bad_alloc*>(&e)) return Error(context, "out of memory");
  return Error(context, e.what());
}

void Communicator::abort_all(const std::string& line, int code) const {
  std::fprintf(stderr, "fieldflow: %s\n", printable(line).c_str());
  std::fflush(stderr);
  if (active_ && size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

}  // namespace ff
