// Fields, the validation split, batches and augmentation. See include/fieldflow/train/dataset.hpp.
#include "fieldflow/train/dataset.hpp"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/io/checkpoint.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/io/hdf5.hpp"
#include "fieldflow/io/snapshot.hpp"
#include "fieldflow/stats/paint.hpp"
#include "fieldflow/train/communicator.hpp"

namespace ff {

namespace {

// Stream numbers of the counter-based generator, one per use of the seed.
constexpr uint64_t kSplitStream = 1;
constexpr uint64_t kOrderStream = uint64_t(2) << 40;         // + epoch
constexpr uint64_t kAugmentationStream = uint64_t(3) << 40;  // + epoch, counter = position

// Indices [0, count) sorted by a random key per index (ties by index): a seeded permutation.
std::vector<int> random_permutation(int count, const CounterRng& rng) {
  std::vector<std::pair<uint64_t, int>> keyed(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) keyed[size_t(i)] = {rng.bits(uint64_t(i))[0], i};
  std::sort(keyed.begin(), keyed.end());
  std::vector<int> out(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) out[size_t(i)] = keyed[size_t(i)].second;
  return out;
}

// What one rank learns about one source file, packed into numbers so that a sum over ranks
// (each file inspected by one rank, zeros elsewhere) shares it.
constexpr double kGrid = 1, kSnapshot = 2;
constexpr size_t kRecord = 7;  // kind, n, count, box, redshift, key high, key low

std::string cache_path(const std::string& cache_dir, uint64_t key) {
  char name[40];
  std::snprintf(name, sizeof name, "painted_%016llx.h5", static_cast<unsigned long long>(key));
  return (std::filesystem::path(cache_dir) / name).string();
}

// The cache key of a painted snapshot: its files (names, sizes, modification times), the grid and
// the mass assignment.
uint64_t snapshot_key(const SnapshotReader& reader, int n, const std::string& mas) {
  uint64_t h = fnv1a64(mas.data(), mas.size());
  h = fnv1a64(&n, sizeof n, h);
  for (const std::string& file : reader.files()) {
    const std::string absolute = std::filesystem::absolute(file).lexically_normal().string();
    h = fnv1a64(absolute.data(), absolute.size() + 1, h);
    struct stat st {};
    if (::stat(file.c_str(), &st) == 0) {
      const int64_t numbers[3] = {int64_t(st.st_size), int64_t(st.st_mtim.tv_sec),
                                  int64_t(st.st_mtim.tv_nsec)};
      h = fnv1a64(numbers, sizeof numbers, h);
    }
  }
  return h;
}

}  // namespace

std::vector<std::string> expand_glob(const std::string& pattern) {
  if (pattern.find_first_of("*?[") == std::string::npos) return {pattern};
  glob_t g{};
  const int status = ::glob(pattern.c_str(), 0, nullptr, &g);
  std::vector<std::string> out;
  if (status == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  ::globfree(&g);
  if (out.empty()) throw Error(pattern, "matches no file");
  std::sort(out.begin(), out.end());
  return out;
}

FieldSet gather_fields(const std::vector<std::string>& sources, int n, const DataSettings& data,
                       const std::string& cache_dir, const Communicator& comm) {
  std::vector<std::string> paths;
  comm.guarded([&] {
    for (const std::string& source : sources)
      for (std::string& p : expand_glob(source)) paths.push_back(std::move(p));
  });
  const size_t files = paths.size();
  // Each file is inspected (and, for a snapshot not yet cached, painted) by one rank.
  std::vector<double> records(files * kRecord, 0.0);
  comm.guarded([&] {
    for (size_t f = size_t(comm.rank()); f < files; f += size_t(comm.size())) {
      const std::string& path = paths[f];
      double* r = records.data() + f * kRecord;
      std::error_code ec;
      bool grid = false;
      if (std::filesystem::is_regular_file(path, ec)) {
        const h5::File file = h5::File::open(path);
        grid = file.root().has("delta");
        if (!grid && !file.root().has("Header"))
          throw Error(path, "neither a grid file (/delta) nor a Gadget snapshot (/Header)");
      }
      if (grid) {
        const GridFileInfo info = inspect_grid_file(path);
        r[0] = kGrid;
        r[1] = info.n;
        r[2] = info.count;
        r[3] = info.box_size_mpch;
        r[4] = info.redshift;
        continue;
      }
      if (!std::filesystem::exists(path, ec) && !std::filesystem::exists(path + ".hdf5", ec) &&
          !std::filesystem::exists(path + ".0.hdf5", ec))
        throw Error(path, "no such file (neither a grid file nor a snapshot base name)");
      const SnapshotReader reader(path, parse_length_unit(data.length_unit));
      const uint64_t key = snapshot_key(reader, n, data.mas);
      const std::string cached = cache_path(cache_dir, key);
      if (!std::filesystem::exists(cached, ec)) {
        if (reader.particle_count() == 0) throw Error(path, "holds no particles to paint");
        Painter painter(n, reader.header().box_size_mpch, parse_mass_assignment(data.mas));
        reader.for_each_position_chunk([&](auto chunk) { painter.add(chunk); },
                                       Painter::preferred_chunk);
        Grid delta = painter.release_delta();
        delta.redshift = reader.header().redshift;
        write_grid(cached, delta);
      }
      r[0] = kSnapshot;
      r[1] = n;
      r[2] = 1;
      r[3] = reader.header().box_size_mpch;
      r[4] = reader.header().redshift;
      r[5] = double(key >> 32);
      r[6] = double(key & 0xffffffffu);
    }
  });
  comm.sum(records.data(), records.size());

  FieldSet set;
  std::vector<uint64_t> seen_keys;
  std::string problem_input, problem;
  for (size_t f = 0; f < files && problem.empty(); ++f) {
    const double* r = records.data() + f * kRecord;
    const std::string& path = paths[f];
    std::string source = path;
    if (r[0] == kSnapshot) {
      const uint64_t key = (uint64_t(r[5]) << 32) | uint64_t(r[6]);
      // A glob over the pieces snap.0.hdf5, snap.1.hdf5 names one snapshot several times.
      if (std::find(seen_keys.begin(), seen_keys.end(), key) != seen_keys.end()) continue;
      seen_keys.push_back(key);
      source = cache_path(cache_dir, key);
    }
    if (int(r[1]) != n) {
      problem_input = path;
      problem = "holds a " + std::to_string(int(r[1])) + "^3 grid, the flow models " +
                std::to_string(n) + "^3 (flow.grid)";
    } else if (set.fields.empty()) {
      set.box_size_mpch = r[3];
      set.redshift = r[4];
    } else if (r[3] != set.box_size_mpch) {
      problem_input = path;
      problem = "box of " + format_number(r[3]) + " Mpc/h, the first field's is " +
                format_number(set.box_size_mpch) + " Mpc/h";
    } else if (std::abs(r[4] - set.redshift) > 1e-6) {
      problem_input = path;
      problem = "redshift " + format_number(r[4]) + ", the first field's is " +
                format_number(set.redshift);
    }
    for (int m = 0; m < int(r[2]) && problem.empty(); ++m) set.fields.push_back({source, m});
  }
  set.n = n;
  // Every rank holds the same records: rank 0 alone reports, the others stop quietly.
  comm.agree(comm.rank() != 0 || problem.empty(), problem_input, problem);
  if (!problem.empty()) throw OtherRankFailed();
  return set;
}

std::array<std::vector<int>, 2> split_validation(int count, double fraction, uint64_t seed) {
  int held = int(std::lround(fraction * count));
  if (fraction > 0 && count > 1) held = std::clamp(held, 1, count - 1);
  if (count <= 1) held = 0;
  const std::vector<int> order = random_permutation(count, CounterRng(seed, kSplitStream));
  std::vector<int> validation(order.begin(), order.begin() + held);
  std::vector<int> train(order.begin() + held, order.end());
  std::sort(validation.begin(), validation.end());
  std::sort(train.begin(), train.end());
  return {train, validation};
}

std::vector<int> epoch_order(int count, uint64_t seed, long epoch) {
  return random_permutation(count, CounterRng(seed, kOrderStream + uint64_t(epoch)));
}

int Augmentation::symmetry_index() const {
  static const std::array<std::array<int, 3>, 6> perms{
      {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}};
  int p = 0;
  while (perms[size_t(p)] != axes) ++p;
  return p * 8 + (flip[0] ? 1 : 0) + (flip[1] ? 2 : 0) + (flip[2] ? 4 : 0);
}

Augmentation draw_augmentation(uint64_t seed, long epoch, long position, bool shifts,
                               bool symmetries) {
  static const std::array<std::array<int, 3>, 6> perms{
      {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}};
  Augmentation a;
  const auto bits =
      CounterRng(seed, kAugmentationStream + uint64_t(epoch)).bits(uint64_t(position));
  if (shifts)
    for (int d = 0; d < 3; ++d) a.shift[size_t(d)] = int((bits[0] >> (21 * d)) & 0x1fffff);
  if (symmetries) {
    const int s = int(bits[1] % 48);
    a.axes = perms[size_t(s / 8)];
    for (int d = 0; d < 3; ++d) a.flip[size_t(d)] = (s >> d) & 1;
  }
  return a;
}

void apply_augmentation(const Augmentation& a, int n, const float* in, float* out) {
  // out(p) = in(q), q[axes[d]] = (flip[d] ? -p[d] : p[d]) + shift[d]  (mod n).
  std::array<std::vector<int>, 3> coord;
  for (int d = 0; d < 3; ++d) {
    coord[size_t(d)].resize(size_t(n));
    const int shift = a.shift[size_t(d)] % n;
    for (int p = 0; p < n; ++p) {
      const int v = a.flip[size_t(d)] ? (n - p) % n : p;
      coord[size_t(d)][size_t(p)] = (v + shift) % n;
    }
  }
  // Stride of input axis axes[d] in the row-major (x, y, z) input.
  const size_t strides[3] = {size_t(n) * n, size_t(n), 1};
  const size_t s0 = strides[a.axes[0]], s1 = strides[a.axes[1]], s2 = strides[a.axes[2]];
  size_t o = 0;
  for (int x = 0; x < n; ++x) {
    const size_t ix = size_t(coord[0][size_t(x)]) * s0;
    for (int y = 0; y < n; ++y) {
      const size_t ixy = ix + size_t(coord[1][size_t(y)]) * s1;
      for (int z = 0; z < n; ++z) out[o++] = in[ixy + size_t(coord[2][size_t(z)]) * s2];
    }
  }
}

long steps_per_epoch(int train_count, int batch) {
  return batch > 0 ? long(train_count / batch) : 0;
}

std::vector<BatchSlot> batch_slots(long step, int train_count, int batch, int rank, int ranks,
                                   const std::vector<int>& order) {
  const long per_epoch = steps_per_epoch(train_count, batch);
  if (per_epoch <= 0)
    throw Error("train.batch", std::to_string(batch) + " is more than the " +
                                   std::to_string(train_count) + " training fields");
  const long epoch = step / per_epoch;
  const long first = (step % per_epoch) * batch;
  const int lo = int(int64_t(rank) * batch / ranks), hi = int(int64_t(rank + 1) * batch / ranks);
  std::vector<BatchSlot> out;
  for (int j = lo; j < hi; ++j) {
    const long position = first + j;
    out.push_back({order[size_t(position)], epoch, position});
  }
  return out;
}

}  // namespace ff
