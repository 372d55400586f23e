#pragma once
// Tiny training data and configs shared by test_train*.cpp and mpi_train*.cpp: stacks of 8^3
// log-normal fields (delta > -1, non-Gaussian) and a small flow, so a training step takes
// milliseconds.
#include <omp.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/train/settings.hpp"

namespace ff::testing_train {

// One thread: tiny grids gain nothing from more, and a busy machine makes OpenMP teams slow.
inline const int one_thread = [] {
  omp_set_num_threads(1);
  return 1;
}();

namespace fs = std::filesystem;

inline fs::path temp_dir(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("fieldflow_train_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

// count log-normal fields of n^3, smoothed over neighbours so they have a spectrum.
inline std::vector<GridF> lognormal_fields(int count, int n, double box, uint64_t seed,
                                           double sigma = 0.8) {
  std::vector<GridF> out;
  for (int m = 0; m < count; ++m) {
    GridF g(n, box, 0.0);
    const CounterRng rng(seed, uint64_t(m));
    std::vector<double> white(g.size());
    for (size_t i = 0; i < g.size(); ++i) white[i] = rng.normal(i);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        for (int k = 0; k < n; ++k) {
          double s = 0;
          for (int d = -1; d <= 1; ++d)
            s += white[g.index((i + d + n) % n, j, k)] + white[g.index(i, (j + d + n) % n, k)] +
                 white[g.index(i, j, (k + d + n) % n)];
          const double gauss = sigma * s / std::sqrt(9.0);
          g(i, j, k) = float(std::exp(gauss - 0.5 * sigma * sigma) - 1.0);
        }
    out.push_back(std::move(g));
  }
  return out;
}

inline std::string write_stack(const fs::path& dir, const std::string& name, int count, int n,
                               double box, uint64_t seed) {
  const std::string path = (dir / name).string();
  write_grid_stack(path, lognormal_fields(count, n, box, seed));
  return path;
}

// A tiny flow on 8^3 and a few steps; overrides are `--set`-style "key=value" strings.
inline TrainConfig tiny_config(const std::string& train_glob, const std::string& run_dir,
                               const std::vector<std::string>& overrides = {}) {
  const std::string yaml =
      "flow:\n"
      "  grid: 8\n"
      "  levels:\n"
      "    checkerboard_couplings: [2, 2]\n"
      "    channel_couplings: [2, 0]\n"
      "    hidden_checkerboard: [4, 8]\n"
      "    hidden_channel: [8, 0]\n"
      "  seed: 1\n"
      "data:\n"
      "  train: \"" +
      train_glob +
      "\"\n"
      "  validation_fraction: 0.2\n"
      "train:\n"
      "  run_dir: \"" +
      run_dir +
      "\"\n"
      "  steps: 6\n"
      "  batch: 4\n"
      "  lr: 3.0e-3\n"
      "  warmup_steps: 2\n"
      "  checkpoint_every: 3\n"
      "  validate_every: 3\n"
      "  check_every: 1\n"
      "  print_every_s: 1000\n";
  Config config = Config::parse(yaml, "tiny.yaml", overrides);
  return read_train_config(config);
}

}  // namespace ff::testing_train
