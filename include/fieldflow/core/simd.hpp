#pragma once
// Which SIMD target the kernels run on. The library is built for a portable baseline; the SIMD
// kernels (nn/conv3d, recon/wiener_kernels, sim/pm_kernels, this file) are compiled once per
// Highway target (SSE4, AVX2, AVX-512 = "AVX3" on x86; NEON on aarch64; a scalar fallback
// everywhere) and the best one the CPU supports is chosen at run time (Highway's dynamic
// dispatch).
//
// The environment variable FIELDFLOW_SIMD_TARGET=<name> (one of simd_available_targets())
// restricts the choice to that target, e.g. to run the test suite once per target.
#include <cstddef>
#include <string>
#include <vector>

namespace ff {

// Elements of T per vector on the dispatched target (1 for the scalar fallback).
template <typename T>
size_t simd_lanes();

// Highway's name of the dispatched target: "AVX3" (AVX-512), "AVX2", "SSE4", "NEON", "SCALAR"...
std::string simd_target_name();

// The targets compiled into the kernels that this CPU supports, best first.
std::vector<std::string> simd_available_targets();

// Restricts dispatch to the named target (one of simd_available_targets()); "" restores the
// best. Throws ff::Error for a name that is not available here. Not thread-safe: call it
// between computations (tests, benchmarks, startup).
void force_simd_target(const std::string& name);

// float32 fused multiply-add throughput (GFLOP/s, all threads together) on the dispatched
// target: every thread runs 12 independent FMA chains in registers; best of `repeats`.
// The "measured peak" that kernel efficiencies are quoted against.
double simd_fma_peak_gflops(int threads, long fmas_per_thread = 20'000'000, int repeats = 5);

namespace detail {
// Applies FIELDFLOW_SIMD_TARGET once, before the first dispatch (throws ff::Error for a bad name).
// Every dispatching entry point calls it.
void apply_simd_target_from_environment();
}  // namespace detail

}  // namespace ff
