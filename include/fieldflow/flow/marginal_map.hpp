#pragma once
// A monotone map of one variable, y = h(t), through knots (t_i, y_i) with both strictly
// increasing: piecewise cubic Hermite with PCHIP slopes (Fritsch & Butland's weighted harmonic
// mean, each held below 2.9 times its neighbouring secants so that h' > 0 everywhere, not only
// h' >= 0), continued linearly beyond the end knots with the end secants' slopes (C1 there too).
// Preprocessing applies it after the standardisation: `fieldflow calibrate` (method marginal)
// fits it so that the flow's samples get the training fields' one-point distribution.
// Empty (no knots): the identity.
#include <vector>

namespace ff {

class MarginalMap {
 public:
  MarginalMap() = default;
  // Throws Error("marginal map", ...) unless t and y are finite, of equal size >= 2 and strictly
  // increasing.
  MarginalMap(std::vector<double> t, std::vector<double> y);

  bool empty() const { return t_.empty(); }
  const std::vector<double>& t_knots() const { return t_; }
  const std::vector<double>& y_knots() const { return y_; }

  double value(double t) const;
  double derivative(double t) const;            // h'(t) > 0
  double log_derivative_slope(double t) const;  // d/dt log h'(t) = h''(t) / h'(t)
  double inverse(double y) const;               // t with h(t) = y

 private:
  struct Local {  // the segment of t and its normalised coordinate s in [0, 1]
    size_t i;
    double s, width;
  };
  Local locate(double t) const;

  std::vector<double> t_, y_, slope_;
};

}  // namespace ff
