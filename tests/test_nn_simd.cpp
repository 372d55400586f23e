// Highway dynamic dispatch: every SIMD target this machine supports, forced one at a time, runs
// the convolution kernels (each fast path: output-, input- and z-vectorised, forward and both
// backward passes) and agrees with the scalar reference loops; the reported width and name
// follow the forced target; a bad target name is refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "error_of.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/core/simd.hpp"
#include "fieldflow/nn/conv3d.hpp"
#include "nn_test_data.hpp"

namespace ff {
namespace {

using testing_data::fill_normal;
using testing_data::max_abs_diff;

// Restores the CPU's best target however the test ends.
struct ForcedTarget {
  explicit ForcedTarget(const std::string& name) { force_simd_target(name); }
  ~ForcedTarget() { force_simd_target(""); }
};

// One conv shape through Conv3d (forward with LeakyReLU, backward to weights, bias and input),
// automatic path against the reference path, both in T.
template <typename T>
double conv_error(int in, int out, int kernel, int n) {
  Conv3d<T> fast(in, out, kernel, "fast"), ref(in, out, kernel, "ref");
  ref.path = ConvPath::reference;
  fast.init_default(3, 4);
  ref.init_default(3, 4);
  Tensor<T> x(2, n, in), dy(2, n, out), yf, yr, dxf, dxr;
  fill_normal(x, 1);
  fill_normal(dy, 2);
  const Activation<T> leaky{true, T(0.1)};
  fast.forward(x, yf, leaky);
  ref.forward(x, yr, leaky);
  fast.backward(x, dy, &dxf);
  ref.backward(x, dy, &dxr);
  double err = max_abs_diff(yf.data, yr.data);
  err = std::max(err, max_abs_diff(dxf.data, dxr.data));
  err = std::max(err, max_abs_diff(fast.weight.grad, ref.weight.grad));
  err = std::max(err, max_abs_diff(fast.bias.grad, ref.bias.grad));
  return err;
}

TEST(Simd, TargetsAvailableAndNamed) {
  const auto targets = simd_available_targets();
  ASSERT_FALSE(targets.empty());
  // The dispatched target is the best available one.
  EXPECT_EQ(simd_target_name(), targets.front());
  // The scalar fallback is always compiled in and always supported.
  EXPECT_TRUE(std::find(targets.begin(), targets.end(), "SCALAR") != targets.end() ||
              std::find(targets.begin(), targets.end(), "EMU128") != targets.end());
}

TEST(Simd, EveryTargetAgreesWithReference) {
  for (const std::string& target : simd_available_targets()) {
    SCOPED_TRACE("target " + target);
    ForcedTarget forced(target);
    EXPECT_EQ(simd_target_name(), target);
    const int lanes_f = int(simd_lanes<float>()), lanes_d = int(simd_lanes<double>());
    // Vector widths of the target: 16 bytes (SSE4, NEON), 32 (AVX2), 64 (AVX3), 1 lane scalar.
    EXPECT_EQ(lanes_f, target == "SCALAR" || target == "EMU128" ? 1 : 2 * lanes_d);
    const int expected = target == "SSE4" || target == "NEON" ? 4
                         : target == "AVX2"                   ? 8
                         : target == "AVX3"                   ? 16
                                                              : lanes_f;
    EXPECT_EQ(lanes_f, expected);
    // Shapes that take each fast path at this width: out-vectorised (out = 2 vectors), in-
    // vectorised (in = 1 vector, 3 outputs), z-vectorised (few outputs, n = 1, 2 or 4 vectors).
    EXPECT_LT(conv_error<float>(3, 2 * lanes_f, 3, 6), 1e-4);
    EXPECT_LT(conv_error<float>(lanes_f, 3, 3, 6), 1e-4);
    EXPECT_LT(conv_error<float>(lanes_f, 2 * lanes_f, 1, 6), 1e-4);
    if (lanes_f > 1) {
      EXPECT_LT(conv_error<float>(3, 2, 3, lanes_f), 1e-4);
      EXPECT_LT(conv_error<float>(2, 5, 3, 2 * lanes_f), 1e-4);
      EXPECT_LT(conv_error<double>(3, 1, 3, 2 * lanes_d), 1e-11);
      EXPECT_LT(conv_error<float>(3, 2, 3, 4 * lanes_f), 1e-4);
      EXPECT_LT(conv_error<double>(3, 1, 3, 4 * lanes_d), 1e-11);
    }
    EXPECT_LT(conv_error<double>(3, 2 * lanes_d, 3, 6), 1e-11);
    EXPECT_LT(conv_error<double>(lanes_d, 3, 3, 6), 1e-11);
    EXPECT_GT(simd_fma_peak_gflops(1, 160'000, 1), 0.0);
  }
  EXPECT_EQ(simd_target_name(), simd_available_targets().front());
}

// The measured peak scales with the target's width: forcing the scalar fallback loses lanes.
TEST(Simd, PeakFollowsTarget) {
  const auto targets = simd_available_targets();
  if (targets.size() < 2) GTEST_SKIP() << "only one target on this machine";
  const double best = simd_fma_peak_gflops(1, 4'000'000, 3);
  double scalar = 0;
  {
    ForcedTarget forced(targets.back());
    scalar = simd_fma_peak_gflops(1, 4'000'000, 3);
  }
  EXPECT_GT(best, 1.5 * scalar) << targets.front() << " vs " << targets.back();
}

TEST(Simd, UnknownTargetRefused) {
  const std::string before = simd_target_name();
  const std::string message = error_of([] { force_simd_target("AVX9000"); });
  EXPECT_NE(message.find("AVX9000: SIMD target not available"), std::string::npos) << message;
  EXPECT_EQ(simd_target_name(), before);
}

}  // namespace
}  // namespace ff
