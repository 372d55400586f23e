#pragma once
// Counter-based randomness (Philox4x32-10, Salmon et al. 2011, as in Random123 and JAX):
// every draw is a pure function of (seed, stream, counter), so a simulation's initial field or a
// training batch does not depend on how many ranks or threads produced it.
#include <array>
#include <cstdint>
#include <utility>

namespace ff {

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

class CounterRng {
 public:
  // seed picks the key; stream separates independent uses of one seed (e.g. simulation index).
  explicit CounterRng(uint64_t seed, uint64_t stream = 0) : seed_(seed), stream_(stream) {}

  // 128 random bits for this counter.
  std::array<uint64_t, 2> bits(uint64_t counter) const;
  // Two independent uniforms in the open interval (0, 1).
  std::pair<double, double> uniform_pair(uint64_t counter) const;
  double uniform(uint64_t counter) const { return uniform_pair(counter).first; }
  // Two independent standard normals (Box-Muller on uniform_pair(counter)).
  std::pair<double, double> normal_pair(uint64_t counter) const;
  double normal(uint64_t counter) const { return normal_pair(counter).first; }

  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }

 private:
  uint64_t seed_;
  uint64_t stream_;
};

}  // namespace ff
