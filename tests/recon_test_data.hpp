#pragma once
// Observations the recon tests share: a truth seen through random 2^3 cubes and white noise.
#include <cstdint>
#include <vector>

#include "fieldflow/core/grid.hpp"
#include "fieldflow/recon/observation.hpp"

namespace ff::test {

// fraction of the volume masked in cubes of 2 voxels (none when 0), noise sigma; the mask's and
// the noise's seeds follow from seed.
inline Observation observe_through_cubes(const Grid& truth, double fraction, double sigma,
                                         uint64_t seed) {
  MaskSettings ms;
  ms.kind = fraction > 0 ? "cubes" : "none";
  ms.fraction = fraction;
  ms.size = 2;
  ms.seed = seed + 7;
  return observe(truth, make_mask(truth.n, ms), std::vector<double>(truth.size(), sigma),
                 seed + 11);
}

}  // namespace ff::test
