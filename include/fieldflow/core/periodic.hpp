#pragma once
// Periodic wrapping, written once: grid indices and coordinates in a periodic box.
#include <cmath>

namespace ff {

// Index i in [-n, 2n) (a neighbour at most one period away) wrapped into [0, n). The hot-loop form:
// two compares, no division.
constexpr int wrap_index_near(int i, int n) {
  return i < 0 ? i + n : (i >= n ? i - n : i);
}

// Any index wrapped into [0, n); no division when it is inside already.
constexpr int wrap_index(int i, int n) {
  if (i >= 0 && i < n) return i;
  const int r = i % n;
  return r < 0 ? r + n : r;
}

// Coordinate x (any finite value) wrapped into [0, period): x itself when it is inside already;
// L and every value that rounds to L after wrapping (e.g. -1e-20 + L) give 0; -0 gives +0.
// Real is float or double: the arithmetic stays in Real, so the result is < period in Real too.
template <typename Real>
inline Real wrap_periodic(Real x, Real period) {
  if (x > Real(0) && x < period) return x;
  x -= period * std::floor(x / period);
  // floor of a rounded quotient can be one off: land on [0, period) in every case.
  if (x >= period) x -= period;
  if (x < Real(0)) x += period;
  return x >= period || x < Real(0) ? Real(0) : x + Real(0);  // + 0: -0 becomes +0
}

}  // namespace ff
