#pragma once
// The linear matter power spectrum at z = 0, P(k) in (Mpc/h)^3 with k in h/Mpc:
// either A k^n_s T(k)^2 with Eisenstein & Hu's (1998, ApJ 496, 605) transfer function and its
// amplitude A set so that sigma(8 Mpc/h) = sigma8, or a two-column table (k, P) as CAMB's
// matterpower.dat or CLASS's pk.dat write it, interpolated in log-log (power laws through the two
// end points outside the table), optionally rescaled to sigma8.
#include <functional>
#include <string>
#include <vector>

#include "fieldflow/sim/cosmology.hpp"

namespace ff {

// The intermediate quantities of EH98 section 2 and 4 (lengths in Mpc, wavenumbers in 1/Mpc, as in
// the paper), exposed so that tests can check them.
struct EisensteinHu {
  explicit EisensteinHu(const CosmologyParams& params);

  // EH98 eq. 16-24: CDM + baryons with acoustic oscillations. k in h/Mpc.
  double transfer(double k_hmpc) const;
  // EH98 eq. 26-31: the zero-baryon-like shape without oscillations. k in h/Mpc.
  double transfer_no_wiggle(double k_hmpc) const;

  double omega_m_h2 = 0, omega_b_h2 = 0, f_baryon = 0, f_cdm = 0, theta_cmb = 0, h = 0;
  double z_equality = 0;         // eq. 2
  double k_equality = 0;         // eq. 3, 1/Mpc
  double z_drag = 0;             // eq. 4
  double r_drag = 0;             // eq. 5 at z_drag
  double r_equality = 0;         // eq. 5 at z_equality
  double sound_horizon = 0;      // eq. 6, Mpc
  double k_silk = 0;             // eq. 7, 1/Mpc
  double alpha_c = 0;            // eq. 11
  double beta_c = 0;             // eq. 12
  double alpha_b = 0;            // eq. 14
  double beta_b = 0;             // eq. 24
  double beta_node = 0;          // eq. 23
  double sound_horizon_fit = 0;  // eq. 26, Mpc
  double alpha_gamma = 0;        // eq. 31

 private:
  double t0_tilde(double q, double alpha_c_, double beta_c_) const;  // eq. 19-20
};

enum class TransferKind { eh98, eh98_no_wiggle, table };
TransferKind parse_transfer_kind(const std::string& text);  // "eh98", "eh98_nowiggle", "table"

struct PowerTable {
  std::vector<double> k_hmpc, p_mpch3;
};
// Reads a table: lines "k P [more columns ignored]", '#' comments and blank lines skipped; k must
// increase strictly, P be positive. Errors name the file and line.
PowerTable read_power_table(const std::string& path);

class LinearPower {
 public:
  // EH98 (with or without wiggles), normalised to params.sigma8.
  LinearPower(const CosmologyParams& params, TransferKind kind);
  // A table; normalise_sigma8 rescales it so that sigma8 = params.sigma8.
  LinearPower(const CosmologyParams& params, PowerTable table, bool normalise_sigma8);

  double operator()(double k_hmpc) const;  // P(k) at z = 0; P(0) = 0
  // sigma(R) for a top-hat sphere of radius R (Mpc/h), from P by quadrature.
  double sigma_tophat(double radius_mpch) const;
  TransferKind kind() const { return kind_; }
  double amplitude() const { return amplitude_; }

 private:
  double shape(double k_hmpc) const;  // P up to the amplitude

  CosmologyParams params_;
  TransferKind kind_;
  EisensteinHu eh_;
  PowerTable table_;
  double amplitude_ = 1.0;
};

// sigma^2(R) = 1/(2 pi^2) int k^2 P(k) W(kR)^2 dk with W the top-hat window, by Gauss-Legendre
// quadrature in ln k over [1e-6, 1e4] h/Mpc split into many panels.
double sigma_tophat_of(const std::function<double(double)>& power_of_k, double radius_mpch);

}  // namespace ff
