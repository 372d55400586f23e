// The monotone cubic map of the preprocessing. See include/fieldflow/flow/marginal_map.hpp.
#include "fieldflow/flow/marginal_map.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "fieldflow/core/error.hpp"

namespace ff {

MarginalMap::MarginalMap(std::vector<double> t, std::vector<double> y)
    : t_(std::move(t)), y_(std::move(y)) {
  if (t_.size() != y_.size() || t_.size() < 2)
    throw Error("marginal map", "needs as many y as t knots, at least 2 (got " +
                                    std::to_string(t_.size()) + " and " +
                                    std::to_string(y_.size()) + ")");
  for (size_t i = 0; i < t_.size(); ++i) {
    if (!std::isfinite(t_[i]) || !std::isfinite(y_[i]))
      throw Error("marginal map", "knot " + std::to_string(i) + " is not finite");
    if (i > 0 && !(t_[i] > t_[i - 1] && y_[i] > y_[i - 1]))
      throw Error("marginal map",
                  "knots must be strictly increasing (knot " + std::to_string(i) + ")");
  }
  const size_t K = t_.size();
  std::vector<double> secant(K - 1), width(K - 1);
  for (size_t i = 0; i + 1 < K; ++i) {
    width[i] = t_[i + 1] - t_[i];
    secant[i] = (y_[i + 1] - y_[i]) / width[i];
  }
  slope_.assign(K, 0.0);
  slope_[0] = secant[0];  // the linear continuations' slopes: C1 at the end knots
  slope_[K - 1] = secant[K - 2];
  for (size_t i = 1; i + 1 < K; ++i) {
    const double w1 = 2 * width[i] + width[i - 1], w2 = width[i] + 2 * width[i - 1];
    const double pchip = (w1 + w2) / (w1 / secant[i - 1] + w2 / secant[i]);
    // h' on a segment is positive when both end slopes lie in (0, 3) times its secant; PCHIP
    // gives (0, 3], and 3 at both ends would touch zero mid-segment.
    slope_[i] = std::min(pchip, 2.9 * std::min(secant[i - 1], secant[i]));
  }
}

MarginalMap::Local MarginalMap::locate(double t) const {
  const size_t K = t_.size();
  size_t i = size_t(std::upper_bound(t_.begin(), t_.end(), t) - t_.begin());
  i = std::clamp<size_t>(i, 1, K - 1) - 1;
  const double width = t_[i + 1] - t_[i];
  return {i, (t - t_[i]) / width, width};
}

// Hermite basis on a segment: y = h00 y0 + h10 w m0 + h01 y1 + h11 w m1.
double MarginalMap::value(double t) const {
  if (empty()) return t;
  if (t <= t_.front()) return y_.front() + slope_.front() * (t - t_.front());
  if (t >= t_.back()) return y_.back() + slope_.back() * (t - t_.back());
  const Local l = locate(t);
  const double s = l.s, s2 = s * s, s3 = s2 * s;
  return (2 * s3 - 3 * s2 + 1) * y_[l.i] + (s3 - 2 * s2 + s) * l.width * slope_[l.i] +
         (-2 * s3 + 3 * s2) * y_[l.i + 1] + (s3 - s2) * l.width * slope_[l.i + 1];
}

double MarginalMap::derivative(double t) const {
  if (empty()) return 1.0;
  if (t <= t_.front()) return slope_.front();
  if (t >= t_.back()) return slope_.back();
  const Local l = locate(t);
  const double s = l.s, s2 = s * s;
  return (6 * s2 - 6 * s) * (y_[l.i] - y_[l.i + 1]) / l.width + (3 * s2 - 4 * s + 1) * slope_[l.i] +
         (3 * s2 - 2 * s) * slope_[l.i + 1];
}

double MarginalMap::log_derivative_slope(double t) const {
  if (empty() || t <= t_.front() || t >= t_.back()) return 0.0;
  const Local l = locate(t);
  const double s = l.s;
  const double second = ((12 * s - 6) * (y_[l.i] - y_[l.i + 1]) / l.width +
                         (6 * s - 4) * slope_[l.i] + (6 * s - 2) * slope_[l.i + 1]) /
                        l.width;
  return second / derivative(t);
}

double MarginalMap::inverse(double y) const {
  if (empty()) return y;
  if (y <= y_.front()) return t_.front() + (y - y_.front()) / slope_.front();
  if (y >= y_.back()) return t_.back() + (y - y_.back()) / slope_.back();
  size_t i = size_t(std::upper_bound(y_.begin(), y_.end(), y) - y_.begin());
  i = std::clamp<size_t>(i, 1, t_.size() - 1) - 1;
  // h is increasing on the segment: Newton's steps kept inside a shrinking bracket.
  double lo = t_[i], hi = t_[i + 1];
  double t = lo + (hi - lo) * (y - y_[i]) / (y_[i + 1] - y_[i]);
  for (int it = 0; it < 100; ++it) {
    const double r = value(t) - y;
    if (r == 0) break;
    (r > 0 ? hi : lo) = t;
    double next = t - r / derivative(t);
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    if (std::abs(next - t) <= 1e-15 * (std::abs(t) + 1e-300) || hi - lo <= 1e-15 * std::abs(hi))
      return next;
    t = next;
  }
  return t;
}

}  // namespace ff
