// Fuzzing of the HDF5 readers: grid files, snapshots and flow checkpoints. Every input, however
// damaged, must end in success or one ff::Error: no crash, hang, sanitizer report, other exception
// or allocation the machine cannot give.
//
// One source, two drivers:
// - standalone (any compiler; run by ctest as `fuzz_io_readers`, also under ASan/UBSan):
//     fuzz_io_readers CORPUS_DIR [--runs N] [--seconds S] [--seed X] [--skip K]...
//   applies N deterministic random mutations (bit flips, interesting bytes and integers,
//   truncation, zeroed or repeated blocks) to the files of CORPUS_DIR (tests/fuzz_corpus) and reads
//   each result with every reader. A failing input is kept as fuzz_failure.h5 in the working
//   folder. --skip K leaves run K unread (its mutation still happens, so later runs stay the same):
//   for inputs on which libhdf5 itself reads out of bounds (tests/CMakeLists.txt says which).
// - libFuzzer (clang): configure with CC=clang CXX=clang++ -DFIELDFLOW_SANITIZE=ON
//   -DFIELDFLOW_LIBFUZZER=ON and run build/tests/fuzz_io_readers_libfuzzer tests/fuzz_corpus.
//
//     fuzz_io_readers --make-seeds DIR
// writes the seed files with fieldflow's own writers (grid, stack, snapshot, checkpoint): how
// tests/fuzz_corpus was made, and how tests/cli_hardening.sh gets a checkpoint.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <typeinfo>
#include <vector>

#include "fieldflow/core/error.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/io/snapshot.hpp"

namespace fs = std::filesystem;

namespace {

// Reads the file at path with every reader; returns false (and says why) on anything that is not
// success or an ff::Error.
bool read_with_every_reader(const std::string& path, std::string& why) {
  const auto guarded = [&](const char* reader, auto&& read) {
    try {
      read();
    } catch (const ff::Error&) {
    } catch (const std::exception& e) {
      why = std::string(reader) + ": " + typeid(e).name() + ": " + e.what();
      return false;
    }
    return true;
  };
  return guarded("grid",
                 [&] {
                   const ff::GridFileInfo info = ff::inspect_grid_file(path);
                   (void)ff::read_grid_as<float>(path, info.count - 1);
                 }) &&
         guarded("snapshot",
                 [&] {
                   const ff::SnapshotReader reader(path);
                   size_t seen = 0;
                   reader.for_each_position_chunk([&](auto chunk) { seen += chunk.size(); }, 4096);
                   (void)reader.particle_mass();
                 }) &&
         guarded("checkpoint", [&] { (void)ff::load_flow_checkpoint(path); });
}

std::string scratch_path() {
  static const std::string path =
      (fs::temp_directory_path() / ("ff_fuzz_" + std::to_string(::getpid()) + ".h5")).string();
  return path;
}

void write_bytes(const std::string& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
}

// SplitMix64: a small deterministic generator (the runs repeat exactly).
struct Random {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  size_t below(size_t n) { return n == 0 ? 0 : size_t(next() % n); }
};

void mutate(std::vector<uint8_t>& bytes, Random& random) {
  static const uint64_t interesting[] = {0,          1,          0x7f,       0x80,
                                         0xff,       0x7fff,     0xffff,     0x7fffffff,
                                         0xffffffff, 1ull << 32, ~0ull >> 1, ~0ull};
  const int count = 1 + int(random.below(8));
  for (int m = 0; m < count && !bytes.empty(); ++m) {
    const size_t at = random.below(bytes.size());
    switch (random.below(6)) {
      case 0:  // flip a bit
        bytes[at] ^= uint8_t(1u << random.below(8));
        break;
      case 1:  // an interesting byte
        bytes[at] = uint8_t(interesting[random.below(5)]);
        break;
      case 2: {  // an interesting 2-, 4- or 8-byte integer (little-endian, as HDF5 stores them)
        const uint64_t v = interesting[random.below(std::size(interesting))];
        const size_t width = size_t(2) << random.below(3);
        for (size_t b = 0; b < width && at + b < bytes.size(); ++b)
          bytes[at + b] = uint8_t(v >> (8 * b));
        break;
      }
      case 3:  // truncate
        bytes.resize(at);
        break;
      case 4: {  // zero a block
        const size_t len = std::min(bytes.size() - at, 1 + random.below(64));
        std::memset(bytes.data() + at, 0, len);
        break;
      }
      default: {  // copy a block over another place
        const size_t from = random.below(bytes.size());
        const size_t len = std::min({bytes.size() - at, bytes.size() - from, 1 + random.below(64)});
        std::memmove(bytes.data() + at, bytes.data() + from, len);
        break;
      }
    }
  }
}

void make_seeds(const fs::path& dir) {
  fs::create_directories(dir);
  ff::GridF grid(4, 50.0, 0.5);
  for (size_t i = 0; i < grid.size(); ++i) grid.values[i] = float(i % 7) * 0.25f - 0.5f;
  ff::write_grid((dir / "grid.h5").string(), grid, ff::GridPrecision::float32);
  ff::Grid grid64(4, 50.0, 0.5);
  for (size_t i = 0; i < grid64.size(); ++i) grid64.values[i] = double(i % 5) * 0.1;
  ff::write_grid_stack((dir / "stack.h5").string(), std::vector<ff::Grid>{grid64, grid64},
                       ff::GridPrecision::float64);
  ff::SnapshotHeader header;
  header.box_size_mpch = 50.0;
  header.redshift = 1.0;
  header.time = 0.5;
  header.omega_m = 0.3;
  header.omega_lambda = 0.7;
  header.hubble_param = 0.7;
  header.mass_table[1] = 1.0;
  std::vector<std::array<double, 3>> positions, velocities;
  std::vector<uint64_t> ids;
  for (int i = 0; i < 8; ++i) {
    positions.push_back({6.25 * i, 50.0 - 6.25 * i, 3.0});
    velocities.push_back({1.0, -1.0, 0.5 * i});
    ids.push_back(uint64_t(i));
  }
  ff::SnapshotWriteOptions options;
  options.unit = ff::LengthUnit::kpc_h;
  ff::write_snapshot((dir / "snap").string(), header, positions, velocities, ids, options);
  ff::FlowSpec spec;
  spec.grid = 4;
  spec.levels = {{1, 1, 2, 2}, {1, 0, 2, 0}};
  ff::MultiScaleFlow<float> flow(spec);
  flow.perturb(1, 0.05);
  ff::save_flow_checkpoint((dir / "checkpoint.h5").string(), flow, ff::Preprocessing{},
                           ff::TrainingData{64.0, 0.0});
}

}  // namespace

#ifdef FIELDFLOW_LIBFUZZER
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  write_bytes(scratch_path(), data, size);
  std::string why;
  if (!read_with_every_reader(scratch_path(), why)) {
    std::fprintf(stderr, "fuzz_io_readers: %s\n", why.c_str());
    std::abort();
  }
  return 0;
}
#else
int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--make-seeds") {
    try {
      make_seeds(argv[2]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "fuzz_io_readers: %s\n", e.what());
      return 1;
    }
    return 0;
  }
  if (argc < 2) {
    std::fprintf(
        stderr,
        "usage: fuzz_io_readers CORPUS_DIR [--runs N] [--seconds S] [--seed X] [--skip K]...\n"
        "       fuzz_io_readers --make-seeds DIR\n");
    return 2;
  }
  long runs = 2000;
  double seconds = 20.0;
  uint64_t seed = 1;
  long first_run = 0;  // --from K: skip the reading of runs before K (their mutations still happen)
  std::vector<long> skipped;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--from") first_run = std::atol(argv[i + 1]);
    if (flag == "--runs") runs = std::atol(argv[i + 1]);
    if (flag == "--seconds") seconds = std::atof(argv[i + 1]);
    if (flag == "--seed") seed = std::strtoull(argv[i + 1], nullptr, 10);
    if (flag == "--skip") skipped.push_back(std::atol(argv[i + 1]));
  }
  std::vector<std::vector<uint8_t>> seeds;
  std::vector<std::string> names;
  const auto add_seeds = [&](const fs::path& dir, const std::string& prefix) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      names.push_back(prefix + entry.path().filename().string());
    }
  };
  add_seeds(argv[1], "");
  // The committed corpus plus seeds from today's writers (the checkpoint format evolves).
  const fs::path fresh =
      fs::temp_directory_path() / ("ff_fuzz_seeds_" + std::to_string(::getpid()));
  try {
    make_seeds(fresh);
    add_seeds(fresh, "fresh/");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_io_readers: cannot write fresh seeds: %s\n", e.what());
    return 1;
  }
  std::error_code ec;
  fs::remove_all(fresh, ec);
  if (seeds.empty()) {
    std::fprintf(stderr, "fuzz_io_readers: %s: no seed files\n", argv[1]);
    return 1;
  }
  // Seeds in name order: the same runs on every file system.
  std::vector<size_t> order(seeds.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return names[a] < names[b]; });

  std::string why;
  for (const size_t s : order) {  // the seeds themselves must read
    write_bytes(scratch_path(), seeds[s].data(), seeds[s].size());
    if (!read_with_every_reader(scratch_path(), why)) {
      std::fprintf(stderr, "fuzz_io_readers: seed %s: %s\n", names[s].c_str(), why.c_str());
      return 1;
    }
  }
  // A crash leaves the input being read at this path.
  std::printf("fuzz_io_readers: reading mutated files at %s\n", scratch_path().c_str());
  std::fflush(stdout);
  Random random{seed};
  const auto start = std::chrono::steady_clock::now();
  long done = 0;
  for (; done < runs; ++done) {
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > seconds)
      break;
    const size_t s = order[size_t(done) % order.size()];
    std::vector<uint8_t> bytes = seeds[s];
    mutate(bytes, random);
    if (done < first_run || std::find(skipped.begin(), skipped.end(), done) != skipped.end())
      continue;
    write_bytes(scratch_path(), bytes.data(), bytes.size());
    if (!read_with_every_reader(scratch_path(), why)) {
      write_bytes("fuzz_failure.h5", bytes.data(), bytes.size());
      std::fprintf(stderr, "fuzz_io_readers: run %ld (mutated %s, kept as fuzz_failure.h5): %s\n",
                   done, names[s].c_str(), why.c_str());
      std::remove(scratch_path().c_str());
      return 1;
    }
  }
  std::remove(scratch_path().c_str());
  std::printf("fuzz_io_readers: %ld mutated files from %zu seeds read without a fault\n", done,
              seeds.size());
  return 0;
}
#endif
