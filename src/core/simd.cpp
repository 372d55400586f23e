// Highway dynamic dispatch: which target runs, its width, target forcing, the FMA peak.
// See include/fieldflow/core/simd.hpp. This file is compiled once per target (foreach_target.h).
#include "fieldflow/core/simd.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "core/simd.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <type_traits>

#include "fieldflow/core/error.hpp"

HWY_BEFORE_NAMESPACE();
namespace ff {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

size_t LanesF32() {
  return hn::Lanes(hn::ScalableTag<float>());
}
size_t LanesF64() {
  return hn::Lanes(hn::ScalableTag<double>());
}
const char* DispatchedTargetName() {
  return hwy::TargetName(HWY_TARGET);
}

// GFLOP/s of independent FMA chains per thread, best of `repeats`. Twelve chains: more than the
// eight that two FMA pipes of latency 4 need, and with the two operands few enough for the
// 16 registers of AVX2 and SSE4 (sixteen chains spilled three of them to the stack there, and the
// "peak" came out about 40% low, below what the convolutions themselves reached).
double FmaPeakGflops(int threads, long fmas_per_thread, int repeats) {
  constexpr int kChains = 12;
  const hn::ScalableTag<float> d;
  // Read through volatile so the compiler can neither fold nor merge the chains.
  static volatile float mul_value = 0.999999f, add_value = 1e-7f;
  const long rounds = fmas_per_thread / kChains;
  double best = 0;
  for (int rep = 0; rep < repeats; ++rep) {
    float sink = 0;
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      const auto m = hn::Set(d, mul_value), a = hn::Set(d, add_value);
      hn::Vec<decltype(d)> chain[kChains];
      for (int c = 0; c < kChains; ++c) chain[c] = hn::Set(d, 1.0f + 0.01f * c);
      for (long i = 0; i < rounds; ++i)
        for (int c = 0; c < kChains; ++c) chain[c] = hn::MulAdd(chain[c], m, a);
      auto sum = chain[0];
      for (int c = 1; c < kChains; ++c) sum = hn::Add(sum, chain[c]);
      sink += hn::GetLane(sum);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (sink == 42.f) mul_value = sink;  // the result is used
    const double flop = 2.0 * double(hn::Lanes(d)) * double(rounds) * kChains * threads;
    best = std::max(best, flop / seconds / 1e9);
  }
  return best;
}

}  // namespace HWY_NAMESPACE
}  // namespace ff
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ff {

HWY_EXPORT(LanesF32);
HWY_EXPORT(LanesF64);
HWY_EXPORT(DispatchedTargetName);
HWY_EXPORT(FmaPeakGflops);

namespace {

// Targets compiled here (HWY_TARGETS) that the CPU supports, best (lowest bit) first.
std::vector<int64_t> available_target_bits() {
  std::vector<int64_t> bits;
  // SupportedTargets() honours a forced target; the real CPU's set is wanted here.
  for (int64_t t = hwy::SupportedTargets() & HWY_TARGETS; t != 0; t &= t - 1)
    bits.push_back(t & ~(t - 1));
  return bits;
}

int64_t forced_target = 0;  // 0: none

// Restricts SupportedTargets() to `bits` (0: the CPU's own set) and re-chooses the dispatch target.
void restrict_targets(int64_t bits) {
  hwy::SetSupportedTargetsForTest(bits);
  hwy::GetChosenTarget().Update(hwy::SupportedTargets());
}

}  // namespace

namespace detail {
void apply_simd_target_from_environment() {
  static const bool applied = [] {
    if (const char* name = std::getenv("FIELDFLOW_SIMD_TARGET"); name && *name) {
      try {
        force_simd_target(name);
      } catch (const Error& e) {
        throw Error("FIELDFLOW_SIMD_TARGET=" + std::string(name), e.problem());
      }
    }
    return true;
  }();
  (void)applied;
}
}  // namespace detail

template <typename T>
size_t simd_lanes() {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>);
  detail::apply_simd_target_from_environment();
  if constexpr (std::is_same_v<T, float>)
    return HWY_DYNAMIC_DISPATCH(LanesF32)();
  else
    return HWY_DYNAMIC_DISPATCH(LanesF64)();
}
template size_t simd_lanes<float>();
template size_t simd_lanes<double>();

std::string simd_target_name() {
  detail::apply_simd_target_from_environment();
  return HWY_DYNAMIC_DISPATCH(DispatchedTargetName)();
}

std::vector<std::string> simd_available_targets() {
  // With a target forced, SupportedTargets() reports only that one: lift the restriction to ask.
  const int64_t keep = forced_target;
  if (keep) restrict_targets(0);
  std::vector<std::string> names;
  for (int64_t bit : available_target_bits()) names.push_back(hwy::TargetName(bit));
  if (keep) restrict_targets(keep);
  return names;
}

void force_simd_target(const std::string& name) {
  if (name.empty()) {
    forced_target = 0;
    restrict_targets(0);
    return;
  }
  if (forced_target) restrict_targets(0);
  std::string list;
  for (int64_t bit : available_target_bits()) {
    if (name == hwy::TargetName(bit)) {
      forced_target = bit;
      restrict_targets(bit);
      return;
    }
    list += std::string(list.empty() ? "" : ", ") + hwy::TargetName(bit);
  }
  if (forced_target) restrict_targets(forced_target);
  throw Error(name, "SIMD target not available on this machine (available: " + list + ")");
}

double simd_fma_peak_gflops(int threads, long fmas_per_thread, int repeats) {
  detail::apply_simd_target_from_environment();
  return HWY_DYNAMIC_DISPATCH(FmaPeakGflops)(threads, fmas_per_thread, repeats);
}

}  // namespace ff
#endif  // HWY_ONCE
