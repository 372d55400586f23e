#include "fieldflow/core/rng.hpp"

#include <cmath>
#include <numbers>

namespace ff {

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(kMul0) * c[0];
    const uint64_t p1 = uint64_t(kMul1) * c[2];
    c = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1), uint32_t(p0 >> 32) ^ c[3] ^ k[1],
         uint32_t(p0)};
    k[0] += kWeyl0;
    k[1] += kWeyl1;
  }
  return c;
}

std::array<uint64_t, 2> CounterRng::bits(uint64_t counter) const {
  const auto r = philox4x32_10(
      {uint32_t(counter), uint32_t(counter >> 32), uint32_t(stream_), uint32_t(stream_ >> 32)},
      {uint32_t(seed_), uint32_t(seed_ >> 32)});
  return {(uint64_t(r[1]) << 32) | r[0], (uint64_t(r[3]) << 32) | r[2]};
}

std::pair<double, double> CounterRng::uniform_pair(uint64_t counter) const {
  const auto b = bits(counter);
  // 53 random bits, shifted half a step off zero: values in (0, 1), never 0 or 1.
  constexpr double scale = 1.0 / 9007199254740992.0;  // 2^-53
  return {((b[0] >> 11) + 0.5) * scale, ((b[1] >> 11) + 0.5) * scale};
}

std::pair<double, double> CounterRng::normal_pair(uint64_t counter) const {
  const auto [u1, u2] = uniform_pair(counter);
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double phi = 2.0 * std::numbers::pi * u2;
  return {r * std::cos(phi), r * std::sin(phi)};
}

}  // namespace ff
