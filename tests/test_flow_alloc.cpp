// After the first training step, a training step (NLL, backward, Adam) allocates nothing on the
// heap: every workspace is kept. Counted by replacing the global operator new in this binary.
#include <gtest/gtest.h>

// The replacements below pair operator new with free() on purpose (both sides are ours).
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <atomic>
#include <cstdlib>
#include <new>

#include "fieldflow/core/rng.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/nn/adam.hpp"

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
}  // namespace

void* operator new(size_t size) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t size, std::align_val_t align) {
  if (counting.load(std::memory_order_relaxed)) allocations.fetch_add(1);
  const size_t a = size_t(align);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, size_t, std::align_val_t) noexcept {
  std::free(p);
}

namespace ff {
namespace {

class NoAllocation : public ::testing::TestWithParam<MixingKind> {};

TEST_P(NoAllocation, AfterTheFirstTrainingStep) {
  FlowSpec spec = bench32_flow_spec();
  spec.grid = 16;
  spec.actnorm = true;
  spec.scale_bound = ScaleBound::tanh_scale;
  spec.mixing = GetParam();
  MultiScaleFlow<float> flow(spec);
  Adam<float> adam(flow.params(), AdamOptions{.lr = 1e-3, .clip_grad_norm = 1.0});
  Tensor<float> x(2, 16, 1);
  const CounterRng rng(1, 0);
  for (size_t i = 0; i < x.size(); ++i) x.data[i] = float(rng.normal(i));
  flow.initialize_actnorms(x);
  for (int step = 0; step < 2; ++step) {
    adam.zero_grad();
    flow.nll_backward(x);
    adam.step();
  }
  allocations = 0;
  counting = true;
  adam.zero_grad();
  const double nll = flow.nll_backward(x);
  adam.step();
  counting = false;
  EXPECT_TRUE(std::isfinite(nll));
  EXPECT_EQ(allocations.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(Mixings, NoAllocation,
                         ::testing::Values(MixingKind::none, MixingKind::permutation,
                                           MixingKind::orthogonal, MixingKind::lu));

}  // namespace
}  // namespace ff
