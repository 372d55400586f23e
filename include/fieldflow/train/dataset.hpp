#pragma once
// The training data: fields from grid files, stacks [M,N,N,N] or Gadget/Quijote snapshots (painted
// once and cached), the validation split, the per-step batch, augmentation and preprocessing.
//
// Nothing here depends on the number of ranks: which fields make step s, their order and their
// augmentations are pure functions of (seed, epoch, position in the epoch). A rank reads only the
// fields of its part of each batch (one HDF5 hyperslab per field), so memory per rank is its share
// of the batch, whatever the size of the data set.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "fieldflow/train/settings.hpp"

namespace ff {

class Communicator;

// One field: a member of a grid file (index 0 of an unstacked file).
struct FieldRef {
  std::string path;
  int index = 0;
};

struct FieldSet {
  std::vector<FieldRef> fields;
  int n = 0;
  double box_size_mpch = 0.0;
  double redshift = 0.0;
};

// Expands the sources (paths, globs; sorted) into fields. Snapshots are painted to n^3 with
// data.mas into cache_dir (once: the cache name covers the snapshot files' names, sizes and
// modification times, n and the mass assignment), the work shared over the ranks. Every rank
// inspects its share of the files; a missing or unreadable file, a grid that is not n^3, or a
// box or redshift that differs from the first field's, stops every rank with one line.
FieldSet gather_fields(const std::vector<std::string>& sources, int n, const DataSettings& data,
                       const std::string& cache_dir, const Communicator& comm);

// Paths matching a glob pattern, sorted; a pattern without wildcards is returned as it is.
std::vector<std::string> expand_glob(const std::string& pattern);

// Holds out round(fraction * count) fields (at least 1 when fraction > 0 and count > 1), chosen
// by seed. Returns {train, validation} indices into the original order, each sorted.
std::array<std::vector<int>, 2> split_validation(int count, double fraction, uint64_t seed);

// The order of the training fields in an epoch: a permutation of [0, count) that depends on
// (seed, epoch) only.
std::vector<int> epoch_order(int count, uint64_t seed, long epoch);

// Augmentation of one field: a periodic shift and one of the 48 symmetries of the cube (axis
// permutation and reflections x -> -x mod n), a pure function of (seed, epoch, position).
struct Augmentation {
  std::array<int, 3> shift{0, 0, 0};
  std::array<int, 3> axes{0, 1, 2};  // output axis a reads input axis axes[a]
  std::array<bool, 3> flip{false, false, false};
  int symmetry_index() const;  // 0..47, 0 = identity
};
Augmentation draw_augmentation(uint64_t seed, long epoch, long position, bool shifts,
                               bool symmetries);
// out(x) = in(g^-1 x): out must not alias in.
void apply_augmentation(const Augmentation& a, int n, const float* in, float* out);

// Fields [first, first + count) of the global batch of step `step` (positions in the epoch order).
struct BatchSlot {
  int field = 0;  // index into the training fields
  long epoch = 0;
  long position = 0;  // position in the epoch
};
// Steps per epoch: floor(train_count / batch) (the last partial batch of an epoch is dropped).
long steps_per_epoch(int train_count, int batch);
// The members of step `step`'s global batch that rank `rank` of `ranks` handles: the contiguous
// range [rank * batch / ranks, (rank + 1) * batch / ranks). order is epoch_order for the epoch of
// the step (the caller caches it).
std::vector<BatchSlot> batch_slots(long step, int train_count, int batch, int rank, int ranks,
                                   const std::vector<int>& order);

}  // namespace ff
