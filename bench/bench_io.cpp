// File reading speed, one command, one table (docs/BENCHMARKS.md, section "io"):
//  (a) a 256^3 float32 grid file read by read_grid_as<float> (what `fieldflow pk` does: open,
//      validate, allocate, read, finiteness scan) and by read_grid (double, converted by HDF5),
//      against a bare H5Fopen + H5Dread of /delta into a freshly allocated float buffer (the peer,
//      same run, same file, hot page cache);
//  (b) streaming the positions of a 128^3-particle snapshot in 4 files (float32, kpc/h) through
//      SnapshotReader::for_each_position_chunk (conversion to Mpc/h double, wrapping), plain and
//      Blosc-compressed, against bare H5Dread of every file's Coordinates as float32;
//  (c) write_grid of the 256^3 float32 grid (atomic: temporary, fsync, rename).
// Each figure is the median of several repetitions.
//
// Usage: bench_io [--reps R] [--n N] [--particles-per-side P] [--dir FOLDER]
#include <hdf5.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "fieldflow/core/grid.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/io/hdf5.hpp"
#include "fieldflow/io/snapshot.hpp"
#include "timing.hpp"

using namespace ff;

namespace {

// I/O waits do not count as CPU time: these figures are wall seconds.
double wall_median(int reps, const std::function<void()>& f) {
  return median_seconds(reps, f, BenchClock::wall);
}

// The peer: the plainest possible read of a whole dataset with the HDF5 C API.
void bare_read(const std::string& path, const char* dataset, std::vector<float>& out,
               size_t count) {
  out = std::vector<float>(count);
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, dataset, H5P_DEFAULT);
  if (f < 0 || d < 0 ||
      H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
    std::fprintf(stderr, "bench_io: bare read of %s failed\n", path.c_str());
    std::exit(1);
  }
  H5Dclose(d);
  H5Fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5, n = 256, np_side = 128;
  std::string dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    if (key == "--reps")
      reps = std::atoi(argv[i + 1]);
    else if (key == "--n")
      n = std::atoi(argv[i + 1]);
    else if (key == "--particles-per-side")
      np_side = std::atoi(argv[i + 1]);
    else if (key == "--dir")
      dir = argv[i + 1];
    else {
      std::fprintf(stderr,
                   "usage: bench_io [--reps R] [--n N] [--particles-per-side P] [--dir D]\n");
      return 2;
    }
  }
  if (dir.empty()) {
    std::string pattern = (std::filesystem::temp_directory_path() / "bench_io_XXXXXX").string();
    if (!::mkdtemp(pattern.data())) return 1;
    dir = pattern;
  }
  h5::initialize();
  std::printf("bench_io: %d threads, files in %s (hot page cache), median of %d\n",
              omp_get_max_threads(), dir.c_str(), reps);

  // (a) grid read
  GridF grid(n, 1000.0, 0.0);
  CounterRng rng(11);
  for (size_t i = 0; i < grid.size(); ++i) grid.values[i] = float(rng.normal(i));
  const std::string grid_path = dir + "/grid.h5";
  const double t_write = wall_median(reps, [&] { write_grid(grid_path, grid); });
  std::vector<float> peer;
  const double t_peer =
      wall_median(reps, [&] { bare_read(grid_path, "delta", peer, grid.size()); });
  const double t_float = wall_median(reps, [&] {
    const GridF g = read_grid_as<float>(grid_path);
    if (g.values[7] != grid.values[7]) std::exit(1);
  });
  const double t_double = wall_median(reps, [&] {
    const Grid g = read_grid(grid_path);
    if (g.values[7] != double(grid.values[7])) std::exit(1);
  });
  const double mb = double(grid.size()) * sizeof(float) / 1e6;
  std::printf("\n(a) %d^3 float32 grid file (%.0f MB)\n", n, mb);
  std::printf("%-44s %10s %10s %12s\n", "what", "ms", "MB/s", "vs peer");
  std::printf("%-44s %10.1f %10.0f %12s\n", "peer: H5Fopen + H5Dread float (fresh buffer)",
              t_peer * 1e3, mb / t_peer, "1.00");
  std::printf("%-44s %10.1f %10.0f %12.2f\n", "read_grid_as<float>", t_float * 1e3, mb / t_float,
              t_float / t_peer);
  std::printf("%-44s %10.1f %10.0f %12.2f\n", "read_grid (double, converted)", t_double * 1e3,
              mb / t_double, t_double / t_peer);
  std::printf("%-44s %10.1f %10.0f %12s\n", "write_grid float32 (atomic, fsync)", t_write * 1e3,
              mb / t_write, "-");

  // (b) snapshot streaming
  const size_t np = size_t(np_side) * np_side * np_side;
  std::vector<std::array<double, 3>> pos(np), vel(np, {0, 0, 0});
  std::vector<uint64_t> ids(np);
  for (size_t i = 0; i < np; ++i) {
    // Grid positions plus small displacements, as in an early snapshot (realistic compressibility).
    const size_t a = i / (size_t(np_side) * np_side), b = (i / np_side) % np_side, c = i % np_side;
    const double cell = 1000.0 / np_side;
    pos[i] = {(a + 0.3 * rng.uniform(3 * i)) * cell, (b + 0.3 * rng.uniform(3 * i + 1)) * cell,
              (c + 0.3 * rng.uniform(3 * i + 2)) * cell};
    ids[i] = i;
  }
  SnapshotHeader header;
  header.box_size_mpch = 1000.0;
  header.mass_table[1] = 1.0;
  std::printf("\n(b) %d^3 particles in 4 files, float32 kpc/h, streamed as Mpc/h doubles\n",
              np_side);
  std::printf("%-44s %10s %10s %12s\n", "what", "ms", "Mpart/s", "vs peer");
  for (bool blosc : {false, true}) {
    if (blosc && !h5::filter_available(h5::kBloscFilter)) continue;
    SnapshotWriteOptions opts;
    opts.num_files = 4;
    opts.blosc_compression = blosc;
    const std::string base = dir + (blosc ? "/snap_blosc" : "/snap_plain");
    write_snapshot(base, header, pos, vel, ids, opts);
    SnapshotReader reader(base);
    const double t_bare = wall_median(reps, [&] {
      for (const std::string& f : reader.files()) {
        const h5::File file = h5::File::open(f);
        const size_t rows = file.root().open_dataset("PartType1/Coordinates").shape()[0];
        bare_read(f, "PartType1/Coordinates", peer, rows * 3);
      }
    });
    const double t_stream = wall_median(reps, [&] {
      double sum = 0;
      reader.for_each_position_chunk(
          [&](std::span<const std::array<double, 3>> chunk) { sum += chunk[0][0]; });
      if (sum < 0) std::exit(1);
    });
    const char* kind = blosc ? "Blosc" : "plain";
    char label[64];
    std::snprintf(label, sizeof label, "peer: bare H5Dread float, %s", kind);
    std::printf("%-44s %10.1f %10.1f %12s\n", label, t_bare * 1e3, np / t_bare / 1e6, "1.00");
    std::snprintf(label, sizeof label, "for_each_position_chunk, %s", kind);
    std::printf("%-44s %10.1f %10.1f %12.2f\n", label, t_stream * 1e3, np / t_stream / 1e6,
                t_stream / t_bare);
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".h5" || e.path().extension() == ".hdf5")
      std::filesystem::remove(e.path(), ec);
  std::filesystem::remove(dir, ec);
  return 0;
}
