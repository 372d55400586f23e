#pragma once
// Flat LambdaCDM background and linear growth (matter + Lambda; radiation is neglected after the
// start of a simulation, as in FastPM and 2LPTic).
//
// Growth factors come from integrating the growth equations in ln a, not from the
// Einstein-de Sitter shortcut:
//   D1'' + (2 + dlnE/dlna) D1' = (3/2) Om(a) D1
//   D2'' + (2 + dlnE/dlna) D2' = (3/2) Om(a) (D2 - D1^2)
// (' = d/dln a), started on the growing modes D1 = a, D2 = -3/7 a^2 deep in matter domination,
// and normalised so that D1(1) = 1 (D2 by the same factor squared). D2 is the second-order LPT
// growth factor of x = q + D1 s1 + D2 s2 (Crocce, Pueblas & Scoccimarro 2006 sign convention:
// D2 < 0, s2 = grad phi2).
#include <string>
#include <vector>

namespace ff {

struct CosmologyParams {
  // Quijote's fiducial cosmology.
  double omega_m = 0.3175;
  double omega_b = 0.049;
  double h = 0.6711;
  double n_s = 0.9624;
  double sigma8 = 0.834;
  double t_cmb_k = 2.7255;  // CMB temperature, used by the EH98 transfer function only
};

template <class S>
class SettingsTable;
// The `cosmology:` keys, declared once (defaults, ranges, docs).
const SettingsTable<CosmologyParams>& cosmology_table();
// Checks ranges (0 < omega_b < omega_m <= 1, h > 0, sigma8 > 0); source names the input in errors.
void validate(const CosmologyParams& params, const std::string& source);

class Cosmology {
 public:
  explicit Cosmology(const CosmologyParams& params);

  const CosmologyParams& params() const { return params_; }
  double omega_m() const { return params_.omega_m; }
  double omega_lambda() const { return 1.0 - params_.omega_m; }

  double hubble_e(double a) const;      // E(a) = H(a)/H0
  double dlnE_dlna(double a) const;     // -(3/2) Om(a)
  double omega_m_of_a(double a) const;  // Om a^-3 / E^2

  // Valid for a_min() <= a <= a_max(); outside, an Error.
  double growth(double a) const;         // D1(a), D1(1) = 1
  double growth_rate(double a) const;    // f1 = dlnD1/dlna
  double growth2(double a) const;        // D2(a) (negative), ~ -3/7 D1^2 Om(a)^(-1/143)
  double growth2_rate(double a) const;   // f2 = dlnD2/dlna
  double dgrowth_dlna(double a) const;   // D1' = f1 D1
  double dgrowth2_dlna(double a) const;  // D2' = f2 D2

  // FastPM's kick and drift factors (Feng et al. 2016, arXiv:1603.00476), in units where the
  // momentum is p = a^3 E dx/da (x comoving, Mpc/h; H0 = 1):
  //   G_f(a) = a^3 E(a) dD1/da,   g_f(a) = dG_f/da = (3/2) Om D1(a) / (a^2 E(a)).
  double fastpm_gf(double a) const;        // G_f
  double fastpm_gf_prime(double a) const;  // g_f
  double fastpm_gf2(double a) const;       // a^3 E dD2/da, the second-order LPT momentum factor

  static constexpr double a_min() { return 1e-3; }
  static constexpr double a_max() { return 2.0; }

 private:
  struct Node {
    double d1, d1p, d2, d2p;  // D and dD/dln a
  };
  Node interpolate(double a) const;

  CosmologyParams params_;
  double lna0_ = 0.0, dlna_ = 0.0;
  std::vector<Node> table_;
};

}  // namespace ff
