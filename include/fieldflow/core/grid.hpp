#pragma once
// A cubic periodic grid of n^3 real values over a box of side box_size_mpch (Mpc/h).
// Index order (x, y, z), row-major: value (i, j, k) is values[(i * n + j) * n + k] and sits at
// position (i, j, k) * box_size_mpch / n, as in Pylians3 and nbodykit.
// Grid (double) is what simulation and statistics use; GridF (float) what files and flows hold.
#include <cstddef>
#include <numbers>
#include <vector>

namespace ff {

template <typename T>
struct BasicGrid {
  using value_type = T;
  int n = 0;
  double box_size_mpch = 0.0;
  double redshift = 0.0;
  std::vector<T> values;

  BasicGrid() = default;
  BasicGrid(int n_, double box_size_mpch_, double redshift_ = 0.0)
      : n(n_), box_size_mpch(box_size_mpch_), redshift(redshift_), values(size_t(n_) * n_ * n_) {}

  size_t size() const { return values.size(); }
  size_t index(int i, int j, int k) const { return (size_t(i) * n + j) * n + k; }
  T& operator()(int i, int j, int k) { return values[index(i, j, k)]; }
  T operator()(int i, int j, int k) const { return values[index(i, j, k)]; }
  double cell_size_mpch() const { return box_size_mpch / n; }
  double fundamental_k_hmpc() const { return 2.0 * std::numbers::pi / box_size_mpch; }  // k_F
  double nyquist_k_hmpc() const { return std::numbers::pi * n / box_size_mpch; }        // k_N

  double mean() const {
    double sum = 0.0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (size_t i = 0; i < values.size(); ++i) sum += values[i];
    return values.empty() ? 0.0 : sum / double(values.size());
  }
  double variance() const {
    const double m = mean();
    double sum = 0.0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (size_t i = 0; i < values.size(); ++i) sum += (values[i] - m) * (values[i] - m);
    return values.empty() ? 0.0 : sum / double(values.size());
  }
};

using Grid = BasicGrid<double>;
using GridF = BasicGrid<float>;

}  // namespace ff
