#pragma once
// Test data for the nn tests: reproducible normal fills and the largest elementwise difference.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "fieldflow/core/rng.hpp"
#include "fieldflow/nn/tensor.hpp"

namespace ff::testing_data {

template <typename T>
void fill_normal(Tensor<T>& t, uint64_t seed) {
  const CounterRng rng(seed, 1);
  for (size_t i = 0; i < t.size(); ++i) t.data[i] = T(rng.normal(i));
}

template <typename T>
void fill_normal(std::vector<T>& v, uint64_t seed, double scale = 1.0) {
  const CounterRng rng(seed, 2);
  for (size_t i = 0; i < v.size(); ++i) v[i] = T(scale * rng.normal(i));
}

template <typename A, typename B>
double max_abs_diff(const A& a, const B& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

}  // namespace ff::testing_data
