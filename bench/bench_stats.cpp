// Painting and power-spectrum speed, one command, one table (docs/BENCHMARKS.md):
//  (a) `fieldflow pk` on a 256^3 float32 grid file, the whole command (process start, file read,
//      FFT, binning, CSV) against the bare fftwf r2c of a 256^3 grid (same thread count, same
//      planner flag FFTW_ESTIMATE) timed in the same run: target ratio <= 1.5.
//  (b) CIC painting of 256^3 particles (uniform random positions, the worst case for caches, fed
//      in the chunks `fieldflow paint` reads, Painter::preferred_chunk = 2^22) onto a 256^3
//      grid, from constructing the Painter to the finished delta: target >= 20 million particles
//      per second per core.
// Both at 1 and 2 threads; each figure is the median of several repetitions.
//
// Usage: bench_stats [--reps R] [--n N] [--threads T1,T2,...]
#include <fftw3.h>
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/grid.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/stats/paint.hpp"
#include "fieldflow/stats/power_spectrum.hpp"

using namespace ff;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// CPU seconds (user + system, all threads) of this process, or of its finished children.
double cpu_seconds(bool children) {
  rusage u{};
  getrusage(children ? RUSAGE_CHILDREN : RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

// Median wall time, and median CPU time beside it: on a busy machine the wall figures wander
// while the CPU figures stay put.
struct Timing {
  double wall, cpu;
};
Timing median_timing(int reps, const std::function<void()>& f, bool children = false) {
  std::vector<double> wall, cpu;
  for (int r = 0; r < reps; ++r) {
    const double c0 = cpu_seconds(children);
    const auto t0 = Clock::now();
    f();
    wall.push_back(seconds_since(t0));
    cpu.push_back(cpu_seconds(children) - c0);
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  return {wall[wall.size() / 2], cpu[cpu.size() / 2]};
}
double median_seconds(int reps, const std::function<void()>& f) {
  return median_timing(reps, f).wall;
}

// The reference: a bare out-of-place fftwf r2c, planned with FFTW_ESTIMATE (what RealFft3d and
// hence `fieldflow pk` use), executed on an already filled buffer.
Timing bare_fftwf_r2c(int n, int threads, int reps, const std::vector<float>& data) {
  fftwf_plan_with_nthreads(threads);
  float* in = fftwf_alloc_real(data.size());
  fftwf_complex* out = fftwf_alloc_complex(size_t(n) * n * (n / 2 + 1));
  fftwf_plan plan = fftwf_plan_dft_r2c_3d(n, n, n, in, out, FFTW_ESTIMATE);
  std::copy(data.begin(), data.end(), in);
  fftwf_execute(plan);  // warm-up: page faults, caches
  const Timing t = median_timing(reps, [&] { fftwf_execute(plan); });
  fftwf_destroy_plan(plan);
  fftwf_free(in);
  fftwf_free(out);
  return t;
}

struct Row {
  std::string what;
  int threads;
  std::string measured, reference, target;
  bool pass;
};

}  // namespace

int main(int argc, char** argv) {
  int reps = 5, n = 256;
  std::vector<int> thread_counts{1, 2};
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--n")) n = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--threads")) {
      thread_counts.clear();
      for (const char* p = argv[i + 1]; *p;) {
        thread_counts.push_back(std::atoi(p));
        while (*p && *p != ',') ++p;
        if (*p) ++p;
      }
    }
  }
  const double box = 1000.0;
  { RealFft3d<float> init(2); }  // lets core initialise FFTW's threads once, as the CLI does

  const auto dir =
      std::filesystem::temp_directory_path() / ("bench_stats_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string grid_path = (dir / "grid.h5").string(), csv_path = (dir / "pk.csv").string();

  std::printf("bench_stats: n = %d, %d repetitions per figure (median)\n", n, reps);
  GridF field(n, box);
  {
    CounterRng rng(1);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < field.size() / 2; ++i) {
      const auto [a, b] = rng.normal_pair(i);
      field.values[2 * i] = float(a);
      field.values[2 * i + 1] = float(b);
    }
  }
  write_grid(grid_path, field, GridPrecision::float32);
  std::vector<Row> rows;

  for (int threads : thread_counts) {
    omp_set_num_threads(threads);
    const Timing fft = bare_fftwf_r2c(n, threads, reps, field.values);
    // The whole command, as a user runs it.
    const std::string cmd = "OMP_NUM_THREADS=" + std::to_string(threads) + " " + FIELDFLOW_BINARY +
                            " pk " + grid_path + " --out " + csv_path;
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "bench_stats: %s failed\n", cmd.c_str());
      return 1;
    }
    const Timing cli = median_timing(
        reps,
        [&] {
          if (std::system(cmd.c_str()) != 0) std::exit(1);
        },
        true);
    // The same path in process, split into its parts.
    const double read = median_seconds(reps, [&] { (void)read_grid_as<float>(grid_path); });
    const double pk = median_seconds(reps, [&] { (void)measure_power_spectrum(field); });
    char measured[128], reference[64], target[64];
    std::snprintf(measured, sizeof measured,
                  "%.3f s, cpu %.3f s (in process: read %.3f, P(k) %.3f)", cli.wall, cli.cpu, read,
                  pk);
    std::snprintf(reference, sizeof reference, "r2c %.3f s, cpu %.3f s", fft.wall, fft.cpu);
    std::snprintf(target, sizeof target, "<= 1.5x (%.2fx, cpu %.2fx)", cli.wall / fft.wall,
                  cli.cpu / fft.cpu);
    rows.push_back({"fieldflow pk " + std::to_string(n) + "^3 float32", threads, measured,
                    reference, target, cli.wall <= 1.5 * fft.wall});
  }

  {
    const size_t count = size_t(n) * n * n;
    std::vector<std::array<double, 3>> pos(count);
    CounterRng rng(2);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; ++i) {
      const auto [u, v] = rng.uniform_pair(2 * i);
      pos[i] = {u * box, v * box, rng.uniform(2 * i + 1) * box};
    }
    const std::span<const std::array<double, 3>> all(pos);
    const size_t chunk = Painter::preferred_chunk;  // what `fieldflow paint` reads per add()
    for (int threads : thread_counts) {
      omp_set_num_threads(threads);
      double checksum = 0;
      const Timing t = median_timing(std::max(3, reps / 2), [&] {
        Painter painter(n, box, MassAssignment::cic);
        for (size_t first = 0; first < count; first += chunk)
          painter.add(all.subspan(first, std::min(chunk, count - first)));
        checksum = painter.release_delta().values[12345];
      });
      const double rate = double(count) / t.wall / threads / 1e6;
      char measured[128], target[64];
      std::snprintf(measured, sizeof measured, "%.3f s = %.1f M/s/core (cpu %.3f s = %.1f M/s)",
                    t.wall, rate, t.cpu, double(count) / t.cpu / 1e6);
      std::snprintf(target, sizeof target, ">= 20 M/s/core");
      rows.push_back({"paint cic " + std::to_string(n) + "^3 particles", threads, measured, "-",
                      target, rate >= 20.0});
      (void)checksum;
    }
  }
  std::filesystem::remove_all(dir);

  std::printf("\n%-28s %7s  %-62s %-28s %-28s %s\n", "benchmark", "threads", "measured",
              "reference (same run)", "target", "result");
  bool all_pass = true;
  for (const Row& r : rows) {
    std::printf("%-28s %7d  %-62s %-28s %-28s %s\n", r.what.c_str(), r.threads, r.measured.c_str(),
                r.reference.c_str(), r.target.c_str(), r.pass ? "PASS" : "FAIL");
    all_pass = all_pass && r.pass;
  }
  return all_pass ? 0 : 1;
}
