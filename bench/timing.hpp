#pragma once
// Timing for the benchmarks. CPU seconds of this process are robust on a machine shared with
// other jobs when one thread runs (wall time is not); wall seconds are what a multi-threaded
// figure needs. Every benchmark takes the median of its repetitions through median_seconds.
#include <time.h>

#include <algorithm>
#include <functional>
#include <vector>

enum class BenchClock { cpu, wall };

inline double clock_seconds(BenchClock clock) {
  timespec t{};
  clock_gettime(clock == BenchClock::cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

inline double cpu_now() {
  return clock_seconds(BenchClock::cpu);
}

// The median seconds of reps calls of f, after warmup untimed calls (for an even count, the mean
// of the two middle ones).
inline double median_seconds(int reps, const std::function<void()>& f,
                             BenchClock clock = BenchClock::cpu, int warmup = 0) {
  for (int r = 0; r < warmup; ++r) f();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    const double t0 = clock_seconds(clock);
    f();
    t.push_back(clock_seconds(clock) - t0);
  }
  std::sort(t.begin(), t.end());
  const size_t m = t.size() / 2;
  return t.size() % 2 ? t[m] : 0.5 * (t[m - 1] + t[m]);
}
