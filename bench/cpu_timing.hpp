#pragma once
// CPU seconds of this process: with one thread, robust on a machine shared with other jobs (wall
// time is not). Used by the reconstruction benchmarks (bench_recon, bench_posterior).
#include <time.h>

#include <algorithm>
#include <functional>
#include <vector>

inline double cpu_now() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// The median CPU seconds of reps calls of f.
inline double median_seconds(int reps, const std::function<void()>& f) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const double t0 = cpu_now();
    f();
    t.push_back(cpu_now() - t0);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}
