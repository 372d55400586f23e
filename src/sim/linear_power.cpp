#include "fieldflow/sim/linear_power.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <numbers>
#include <sstream>

#include "fieldflow/core/error.hpp"

namespace ff {

EisensteinHu::EisensteinHu(const CosmologyParams& p) {
  h = p.h;
  omega_m_h2 = p.omega_m * p.h * p.h;
  omega_b_h2 = p.omega_b * p.h * p.h;
  f_baryon = p.omega_b / p.omega_m;
  f_cdm = 1.0 - f_baryon;
  theta_cmb = p.t_cmb_k / 2.7;
  const double wm = omega_m_h2, wb = omega_b_h2, th2 = theta_cmb * theta_cmb, th4 = th2 * th2;

  z_equality = 2.50e4 * wm / th4;   // eq. 2
  k_equality = 7.46e-2 * wm / th2;  // eq. 3
  {                                 // eq. 4
    const double b1 = 0.313 * std::pow(wm, -0.419) * (1.0 + 0.607 * std::pow(wm, 0.674));
    const double b2 = 0.238 * std::pow(wm, 0.223);
    z_drag = 1291.0 * std::pow(wm, 0.251) / (1.0 + 0.659 * std::pow(wm, 0.828)) *
             (1.0 + b1 * std::pow(wb, b2));
  }
  auto baryon_ratio = [&](double z) { return 31.5 * wb / th4 * (1000.0 / z); };  // eq. 5
  r_drag = baryon_ratio(z_drag);
  r_equality = baryon_ratio(z_equality);
  sound_horizon = 2.0 / (3.0 * k_equality) * std::sqrt(6.0 / r_equality) *  // eq. 6
                  std::log((std::sqrt(1.0 + r_drag) + std::sqrt(r_drag + r_equality)) /
                           (1.0 + std::sqrt(r_equality)));
  k_silk = 1.6 * std::pow(wb, 0.52) * std::pow(wm, 0.73) *  // eq. 7
           (1.0 + std::pow(10.4 * wm, -0.95));
  {  // eq. 11
    const double a1 = std::pow(46.9 * wm, 0.670) * (1.0 + std::pow(32.1 * wm, -0.532));
    const double a2 = std::pow(12.0 * wm, 0.424) * (1.0 + std::pow(45.0 * wm, -0.582));
    alpha_c = std::pow(a1, -f_baryon) * std::pow(a2, -f_baryon * f_baryon * f_baryon);
  }
  {  // eq. 12
    const double b1 = 0.944 / (1.0 + std::pow(458.0 * wm, -0.708));
    const double b2 = std::pow(0.395 * wm, -0.0266);
    beta_c = 1.0 / (1.0 + b1 * (std::pow(f_cdm, b2) - 1.0));
  }
  {  // eq. 14-15
    const double y = (1.0 + z_equality) / (1.0 + z_drag);
    const double s = std::sqrt(1.0 + y);
    const double g = y * (-6.0 * s + (2.0 + 3.0 * y) * std::log((s + 1.0) / (s - 1.0)));
    alpha_b = 2.07 * k_equality * sound_horizon * std::pow(1.0 + r_drag, -0.75) * g;
  }
  beta_b =
      0.5 + f_baryon + (3.0 - 2.0 * f_baryon) * std::sqrt(std::pow(17.2 * wm, 2) + 1.0);  // eq. 24
  beta_node = 8.41 * std::pow(wm, 0.435);                                                 // eq. 23
  sound_horizon_fit =
      44.5 * std::log(9.83 / wm) / std::sqrt(1.0 + 10.0 * std::pow(wb, 0.75));  // eq. 26
  alpha_gamma = 1.0 - 0.328 * std::log(431.0 * wm) * f_baryon +                 // eq. 31
                0.38 * std::log(22.3 * wm) * f_baryon * f_baryon;
}

double EisensteinHu::t0_tilde(double q, double ac, double bc) const {
  const double l = std::log(std::numbers::e + 1.8 * bc * q);              // eq. 19
  const double c = 14.2 / ac + 386.0 / (1.0 + 69.9 * std::pow(q, 1.08));  // eq. 20
  return l / (l + c * q * q);
}

double EisensteinHu::transfer(double k_hmpc) const {
  if (k_hmpc <= 0.0) return 1.0;
  const double k = k_hmpc * h;                // 1/Mpc
  const double q = k / (13.41 * k_equality);  // eq. 10
  const double ks = k * sound_horizon;
  // CDM, eq. 17-18.
  const double f = 1.0 / (1.0 + std::pow(ks / 5.4, 4));
  const double tc = f * t0_tilde(q, 1.0, beta_c) + (1.0 - f) * t0_tilde(q, alpha_c, beta_c);
  // Baryons, eq. 21-22.
  const double s_tilde = sound_horizon / std::cbrt(1.0 + std::pow(beta_node / ks, 3));
  const double x = k * s_tilde;
  const double j0 = std::abs(x) < 1e-6 ? 1.0 - x * x / 6.0 : std::sin(x) / x;
  const double tb =
      (t0_tilde(q, 1.0, 1.0) / (1.0 + std::pow(ks / 5.2, 2)) +
       alpha_b / (1.0 + std::pow(beta_b / ks, 3)) * std::exp(-std::pow(k / k_silk, 1.4))) *
      j0;
  return f_baryon * tb + f_cdm * tc;  // eq. 16
}

double EisensteinHu::transfer_no_wiggle(double k_hmpc) const {
  if (k_hmpc <= 0.0) return 1.0;
  const double k = k_hmpc * h;              // 1/Mpc
  const double omega_m_h = omega_m_h2 / h;  // Omega_0 h
  const double gamma_eff =                  // eq. 30
      omega_m_h *
      (alpha_gamma + (1.0 - alpha_gamma) / (1.0 + std::pow(0.43 * k * sound_horizon_fit, 4)));
  const double q = k_hmpc * theta_cmb * theta_cmb / gamma_eff;  // eq. 28
  const double l0 = std::log(2.0 * std::numbers::e + 1.8 * q);  // eq. 29
  const double c0 = 14.2 + 731.0 / (1.0 + 62.5 * q);
  return l0 / (l0 + c0 * q * q);
}

TransferKind parse_transfer_kind(const std::string& text) {
  std::string t = text;
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  if (t == "eh98") return TransferKind::eh98;
  if (t == "eh98_nowiggle" || t == "eh98_no_wiggle") return TransferKind::eh98_no_wiggle;
  if (t == "table") return TransferKind::table;
  throw Error("transfer", "expected eh98, eh98_nowiggle or table, got \"" + text + "\"");
}

PowerTable read_power_table(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path, "cannot open the power-spectrum table");
  PowerTable t;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    std::istringstream fields(line);
    double k = 0, p = 0;
    if (!(fields >> k >> p))
      throw Error(path, "line " + std::to_string(line_no) + ": expected two numbers \"k P\"");
    if (!(k > 0.0) || !(p > 0.0) || !std::isfinite(k) || !std::isfinite(p))
      throw Error(path,
                  "line " + std::to_string(line_no) + ": k and P must be positive and finite");
    if (!t.k_hmpc.empty() && k <= t.k_hmpc.back())
      throw Error(path, "line " + std::to_string(line_no) + ": k must increase strictly");
    t.k_hmpc.push_back(k);
    t.p_mpch3.push_back(p);
  }
  if (t.k_hmpc.size() < 2) throw Error(path, "a power-spectrum table needs at least two rows");
  return t;
}

double sigma_tophat_of(const std::function<double(double)>& power, double radius) {
  // 8-point Gauss-Legendre on 2000 panels in ln k: the integrand's oscillations (period ~ 2 pi / R
  // in k) are resolved many times over up to k R ~ 1e4 R, where the window has killed it.
  static constexpr double x8[4] = {0.1834346424956498, 0.5255324099163290, 0.7966664774136267,
                                   0.9602898564975363};
  static constexpr double w8[4] = {0.3626837833783620, 0.3137066458778873, 0.2223810344533745,
                                   0.1012285362903763};
  const double lo = std::log(1e-6), hi = std::log(1e4);
  const int panels = 4000;
  const double width = (hi - lo) / panels;
  double sum = 0.0;
  for (int p = 0; p < panels; ++p) {
    const double mid = lo + (p + 0.5) * width;
    for (int j = 0; j < 8; ++j) {
      const double lnk = mid + 0.5 * width * (j < 4 ? -x8[j] : x8[j - 4]);
      const double w = 0.5 * width * w8[j < 4 ? j : j - 4];
      const double k = std::exp(lnk);
      const double x = k * radius;
      const double win =
          x < 1e-3 ? 1.0 - x * x / 10.0 : 3.0 * (std::sin(x) - x * std::cos(x)) / (x * x * x);
      sum += w * k * k * k * power(k) * win * win;  // dk = k dln k
    }
  }
  return std::sqrt(sum / (2.0 * std::numbers::pi * std::numbers::pi));
}

LinearPower::LinearPower(const CosmologyParams& params, TransferKind kind)
    : params_(params), kind_(kind), eh_(params) {
  if (kind == TransferKind::table) throw Error("power", "a table spectrum needs its table");
  amplitude_ = 1.0;
  const double s = sigma_tophat_of([this](double k) { return shape(k); }, 8.0);
  amplitude_ = params.sigma8 * params.sigma8 / (s * s);
}

LinearPower::LinearPower(const CosmologyParams& params, PowerTable table, bool normalise_sigma8)
    : params_(params), kind_(TransferKind::table), eh_(params), table_(std::move(table)) {
  if (table_.k_hmpc.size() < 2 || table_.k_hmpc.size() != table_.p_mpch3.size())
    throw Error("power", "a power-spectrum table needs at least two rows of (k, P)");
  // Work in log-log from here on.
  for (auto& k : table_.k_hmpc) k = std::log(k);
  for (auto& p : table_.p_mpch3) p = std::log(p);
  amplitude_ = 1.0;
  if (normalise_sigma8) {
    const double s = sigma_tophat_of([this](double k) { return shape(k); }, 8.0);
    amplitude_ = params.sigma8 * params.sigma8 / (s * s);
  }
}

double LinearPower::shape(double k) const {
  if (k <= 0.0) return 0.0;
  switch (kind_) {
    case TransferKind::eh98: {
      const double t = eh_.transfer(k);
      return std::pow(k, params_.n_s) * t * t;
    }
    case TransferKind::eh98_no_wiggle: {
      const double t = eh_.transfer_no_wiggle(k);
      return std::pow(k, params_.n_s) * t * t;
    }
    case TransferKind::table: {
      const auto& lk = table_.k_hmpc;
      const auto& lp = table_.p_mpch3;
      const double x = std::log(k);
      // Segment holding x; the end segments extend as power laws.
      size_t i = std::upper_bound(lk.begin(), lk.end(), x) - lk.begin();
      i = std::clamp<size_t>(i, 1, lk.size() - 1);
      const double t = (x - lk[i - 1]) / (lk[i] - lk[i - 1]);
      return std::exp(lp[i - 1] + t * (lp[i] - lp[i - 1]));
    }
  }
  return 0.0;
}

double LinearPower::operator()(double k) const {
  return amplitude_ * shape(k);
}

double LinearPower::sigma_tophat(double radius) const {
  return sigma_tophat_of([this](double k) { return (*this)(k); }, radius);
}

}  // namespace ff
