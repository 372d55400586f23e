#pragma once
// What a reconstruction sees: d = x + n on the observed voxels and nothing on the masked ones.
// The mask is 1 observed, 0 masked; the noise is white with a per-voxel sigma (in units of delta).
// Masks and noise come from counter-based randomness (core/rng.hpp): the same seed gives the same
// mask and noise on any machine and thread count.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fieldflow/core/grid.hpp"

namespace ff {

struct MaskSettings {
  std::string kind = "cubes";  // cubes | slab | sphere | file | none
  double fraction = 0.35;      // masked fraction of the volume (cubes, slab, sphere)
  int size = 4;                // side of the masked cubes, voxels
  uint64_t seed = 2;
  std::string file;  // kind file: HDF5 with /mask (or a grid file's /delta), 1 observed, 0 masked
};

// The mask (1 observed, 0 masked) on an n^3 grid.
//   cubes:  cubes of `size` voxels at random positions (periodic) until `fraction` is masked
//           (the last cube may overshoot by less than size^3 voxels);
//   slab:   round(fraction n) contiguous x-planes from a random start (periodic);
//   sphere: the round(fraction n^3) voxels nearest a random centre (periodic distance): a ball;
//   file:   read, checked to be n^3 values of 0 or 1;
//   none:   everything observed.
std::vector<double> make_mask(int n, const MaskSettings& settings);

struct Observation {
  int n = 0;
  double box_size_mpch = 0.0;
  double redshift = 0.0;
  std::vector<double> data;         // 0 on masked voxels
  std::vector<double> mask;         // 1 observed, 0 masked
  std::vector<double> noise_sigma;  // per voxel, > 0
  std::optional<std::vector<double>> truth;

  size_t size() const { return data.size(); }
  // M N^-1 per voxel: mask / sigma^2.
  std::vector<double> inverse_noise() const;
  double observed_fraction() const;
};

// d = mask (truth + sigma g), g standard normal from CounterRng(noise_seed, 0).
Observation observe(const Grid& truth, std::vector<double> mask, std::vector<double> noise_sigma,
                    uint64_t noise_seed);

// A per-voxel sigma map from an HDF5 file (/noise_sigma or a grid file's /delta), n^3 values > 0.
std::vector<double> read_noise_sigma_map(const std::string& path, int n);

}  // namespace ff
