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

// GFLOP/s of 16 independent FMA chains per thread, best of `repeats`.
double FmaPeakGflops(int threads, long fmas_per_thread, int repeats) {
  const hn::ScalableTag<float> d;
  // Read through volatile so the compiler can neither fold nor merge the chains.
  static volatile float mul_value = 0.999999f, add_value = 1e-7f;
  const long rounds = fmas_per_thread / 16;
  double best = 0;
  for (int rep = 0; rep < repeats; ++rep) {
    float sink = 0;
    const auto start = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      const auto m = hn::Set(d, mul_value), a = hn::Set(d, add_value);
      auto c0 = hn::Set(d, 1.00f), c1 = hn::Set(d, 1.01f), c2 = hn::Set(d, 1.02f),
           c3 = hn::Set(d, 1.03f), c4 = hn::Set(d, 1.04f), c5 = hn::Set(d, 1.05f),
           c6 = hn::Set(d, 1.06f), c7 = hn::Set(d, 1.07f), c8 = hn::Set(d, 1.08f),
           c9 = hn::Set(d, 1.09f), c10 = hn::Set(d, 1.10f), c11 = hn::Set(d, 1.11f),
           c12 = hn::Set(d, 1.12f), c13 = hn::Set(d, 1.13f), c14 = hn::Set(d, 1.14f),
           c15 = hn::Set(d, 1.15f);
      for (long i = 0; i < rounds; ++i) {
        c0 = hn::MulAdd(c0, m, a);
        c1 = hn::MulAdd(c1, m, a);
        c2 = hn::MulAdd(c2, m, a);
        c3 = hn::MulAdd(c3, m, a);
        c4 = hn::MulAdd(c4, m, a);
        c5 = hn::MulAdd(c5, m, a);
        c6 = hn::MulAdd(c6, m, a);
        c7 = hn::MulAdd(c7, m, a);
        c8 = hn::MulAdd(c8, m, a);
        c9 = hn::MulAdd(c9, m, a);
        c10 = hn::MulAdd(c10, m, a);
        c11 = hn::MulAdd(c11, m, a);
        c12 = hn::MulAdd(c12, m, a);
        c13 = hn::MulAdd(c13, m, a);
        c14 = hn::MulAdd(c14, m, a);
        c15 = hn::MulAdd(c15, m, a);
      }
      auto sum = hn::Add(hn::Add(hn::Add(c0, c1), hn::Add(c2, c3)),
                         hn::Add(hn::Add(c4, c5), hn::Add(c6, c7)));
      sum = hn::Add(sum, hn::Add(hn::Add(hn::Add(c8, c9), hn::Add(c10, c11)),
                                 hn::Add(hn::Add(c12, c13), hn::Add(c14, c15))));
      sink += hn::GetLane(sum);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (sink == 42.f) mul_value = sink;  // the result is used
    const double flop = 2.0 * double(hn::Lanes(d)) * double(rounds) * 16 * threads;
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
