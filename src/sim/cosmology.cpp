#include "fieldflow/sim/cosmology.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <string>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/settings.hpp"
#include "fieldflow/core/text.hpp"

namespace ff {

const SettingsTable<CosmologyParams>& cosmology_table() {
  using C = CosmologyParams;
  static const auto table =
      SettingsTable<C>("cosmology", "Flat LambdaCDM; the defaults are Quijote's fiducial values.")
          .number("omega_m", &C::omega_m, 0.3175, Range::between(0, 1).open_below(),
                  "matter density today, Omega_m")
          .number("omega_b", &C::omega_b, 0.049, Range::between(0, 1).open_below(),
                  "baryon density today, Omega_b (below omega_m)")
          .number("h", &C::h, 0.6711, Range::between(0, 10).open_below().open_above(),
                  "H0 / (100 km/s/Mpc)")
          .number("n_s", &C::n_s, 0.9624, Range::between(0, 3).open_below().open_above(),
                  "primordial spectral index")
          .number("sigma8", &C::sigma8, 0.834, Range::positive(),
                  "rms linear density contrast in spheres of 8 Mpc/h at z = 0")
          .number("t_cmb", &C::t_cmb_k, 2.7255, Range::positive(),
                  "CMB temperature in K (enters the EH98 transfer function only)")
          .check([](const C& c, const Reject& reject) {
            if (!(c.omega_b < c.omega_m))
              reject("omega_b", "expected a number below omega_m (" + format_number(c.omega_m) +
                                    "), got " + format_number(c.omega_b));
          });
  return table;
}

void validate(const CosmologyParams& p, const std::string& source) {
  cosmology_table().validate(p, source);
}

double Cosmology::hubble_e(double a) const {
  return std::sqrt(params_.omega_m / (a * a * a) + omega_lambda());
}

double Cosmology::omega_m_of_a(double a) const {
  const double e = hubble_e(a);
  return params_.omega_m / (a * a * a * e * e);
}

double Cosmology::dlnE_dlna(double a) const {
  return -1.5 * omega_m_of_a(a);
}

Cosmology::Cosmology(const CosmologyParams& params) : params_(params) {
  validate(params, "cosmology");
  // RK4 in ln a on the state (D1, D1', D2, D2'), from deep in matter domination where the growing
  // modes are D1 = a, D2 = -3/7 a^2 (corrections ~ (Omega_L/Omega_m) a^3 ~ 1e-15 at a = 1e-5).
  using State = std::array<double, 4>;
  auto rhs = [this](double lna, const State& y) -> State {
    const double a = std::exp(lna);
    const double om = omega_m_of_a(a);
    const double friction = 2.0 + dlnE_dlna(a);
    return {y[1], -friction * y[1] + 1.5 * om * y[0], y[3],
            -friction * y[3] + 1.5 * om * (y[2] - y[0] * y[0])};
  };
  const double lna_start = std::log(1e-5);
  dlna_ = 1.0 / 512.0;
  lna0_ = std::log(a_min());
  const int n_nodes = int(std::ceil((std::log(a_max()) - lna0_) / dlna_)) + 2;
  const int n_before = int(std::ceil((lna0_ - lna_start) / dlna_));
  double lna = lna0_ - n_before * dlna_;
  const double a_start = std::exp(lna);
  State y{a_start, a_start, -3.0 / 7.0 * a_start * a_start, -6.0 / 7.0 * a_start * a_start};
  auto step = [&](double h) {
    const State k1 = rhs(lna, y);
    State t;
    for (int i = 0; i < 4; ++i) t[i] = y[i] + 0.5 * h * k1[i];
    const State k2 = rhs(lna + 0.5 * h, t);
    for (int i = 0; i < 4; ++i) t[i] = y[i] + 0.5 * h * k2[i];
    const State k3 = rhs(lna + 0.5 * h, t);
    for (int i = 0; i < 4; ++i) t[i] = y[i] + h * k3[i];
    const State k4 = rhs(lna + h, t);
    for (int i = 0; i < 4; ++i) y[i] += h / 6.0 * (k1[i] + 2.0 * k2[i] + 2.0 * k3[i] + k4[i]);
    lna += h;
  };
  // Four RK4 substeps per table node keep the integration error far below the interpolation's.
  for (int i = 0; i < n_before; ++i)
    for (int s = 0; s < 4; ++s) step(dlna_ / 4);
  table_.resize(n_nodes);
  for (int i = 0; i < n_nodes; ++i) {
    table_[i] = {y[0], y[1], y[2], y[3]};
    if (i + 1 < n_nodes)
      for (int s = 0; s < 4; ++s) step(dlna_ / 4);
  }
  // Normalise D1(1) = 1 (D2 scales as D1^2, its source being quadratic in the linear field).
  const Node at_one = interpolate(1.0);
  const double s1 = 1.0 / at_one.d1, s2 = s1 * s1;
  for (auto& node : table_) {
    node.d1 *= s1;
    node.d1p *= s1;
    node.d2 *= s2;
    node.d2p *= s2;
  }
}

Cosmology::Node Cosmology::interpolate(double a) const {
  if (!(a >= a_min() * (1 - 1e-12) && a <= a_max() * (1 + 1e-12)))
    throw Error("cosmology", "scale factor " + format_number(a) + " outside the tabulated range [" +
                                 format_number(a_min()) + ", " + format_number(a_max()) + "]");
  const double x = (std::log(a) - lna0_) / dlna_;
  int i = int(std::floor(x));
  if (i < 0) i = 0;
  if (i > int(table_.size()) - 2) i = int(table_.size()) - 2;
  const double t = x - i;
  const Node& n0 = table_[i];
  const Node& n1 = table_[i + 1];
  // Cubic Hermite in ln a from the values and their ln-a derivatives; the derivative itself is
  // interpolated with the second derivatives the growth equation gives at the nodes.
  const double h00 = (1 + 2 * t) * (1 - t) * (1 - t), h10 = t * (1 - t) * (1 - t);
  const double h01 = t * t * (3 - 2 * t), h11 = t * t * (t - 1);
  const double a0 = std::exp(lna0_ + i * dlna_), a1 = std::exp(lna0_ + (i + 1) * dlna_);
  auto second = [this](double aa, double d, double dp, double source) {
    const double om = omega_m_of_a(aa);
    return -(2.0 + dlnE_dlna(aa)) * dp + 1.5 * om * (d - source);
  };
  const double d1pp0 = second(a0, n0.d1, n0.d1p, 0.0), d1pp1 = second(a1, n1.d1, n1.d1p, 0.0);
  const double d2pp0 = second(a0, n0.d2, n0.d2p, n0.d1 * n0.d1);
  const double d2pp1 = second(a1, n1.d2, n1.d2p, n1.d1 * n1.d1);
  const double h = dlna_;
  Node r;
  r.d1 = h00 * n0.d1 + h10 * h * n0.d1p + h01 * n1.d1 + h11 * h * n1.d1p;
  r.d1p = h00 * n0.d1p + h10 * h * d1pp0 + h01 * n1.d1p + h11 * h * d1pp1;
  r.d2 = h00 * n0.d2 + h10 * h * n0.d2p + h01 * n1.d2 + h11 * h * n1.d2p;
  r.d2p = h00 * n0.d2p + h10 * h * d2pp0 + h01 * n1.d2p + h11 * h * d2pp1;
  return r;
}

double Cosmology::growth(double a) const {
  return interpolate(a).d1;
}
double Cosmology::dgrowth_dlna(double a) const {
  return interpolate(a).d1p;
}
double Cosmology::growth_rate(double a) const {
  const Node n = interpolate(a);
  return n.d1p / n.d1;
}
double Cosmology::growth2(double a) const {
  return interpolate(a).d2;
}
double Cosmology::dgrowth2_dlna(double a) const {
  return interpolate(a).d2p;
}
double Cosmology::growth2_rate(double a) const {
  const Node n = interpolate(a);
  return n.d2p / n.d2;
}

// a^3 E dD/da = a^2 E dD/dln a.
double Cosmology::fastpm_gf(double a) const {
  return a * a * hubble_e(a) * dgrowth_dlna(a);
}
double Cosmology::fastpm_gf2(double a) const {
  return a * a * hubble_e(a) * dgrowth2_dlna(a);
}
// d/da (a^2 E D') = a E (D'' + (2 + dlnE/dlna) D') = (3/2) Om(a) a E D = (3/2) Om D / (a^2 E).
double Cosmology::fastpm_gf_prime(double a) const {
  return 1.5 * params_.omega_m * growth(a) / (a * a * hubble_e(a));
}

}  // namespace ff
