// Background, growth and linear power spectrum of the simulation module, each against an
// independent truth: Heath's (1977) integral for D(a), the paper's formulas of Eisenstein & Hu
// (1998) re-typed here, a direct integral of the sound speed, brute-force quadrature of sigma8.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numbers>

#include "fieldflow/core/error.hpp"
#include "fieldflow/sim/cosmology.hpp"
#include "fieldflow/sim/linear_power.hpp"

namespace {

using ff::Cosmology;
using ff::CosmologyParams;

// Composite Simpson rule with n (even) intervals.
template <typename F>
double simpson(F f, double lo, double hi, int n) {
  const double h = (hi - lo) / n;
  double s = f(lo) + f(hi);
  for (int i = 1; i < n; ++i) s += (i % 2 ? 4.0 : 2.0) * f(lo + i * h);
  return s * h / 3.0;
}

// Heath (1977): for matter + Lambda, D(a) is proportional to E(a) int_0^a da' / (a' E(a'))^3.
// Substituting a' = u^2 removes the a'^(3/2) behaviour at 0 so Simpson converges fast.
double heath_integral(double om, double a) {
  const double ol = 1.0 - om;
  auto integrand = [&](double u) {
    if (u == 0.0) return 0.0;
    const double ap = u * u;
    const double e = std::sqrt(om / (ap * ap * ap) + ol);
    return 2.0 * u / std::pow(ap * e, 3);
  };
  return simpson(integrand, 0.0, std::sqrt(a), 20000);
}

TEST(SimCosmology, GrowthMatchesHeathIntegral) {
  const CosmologyParams p;
  const Cosmology c(p);
  const double om = p.omega_m, ol = 1.0 - om;
  auto e = [&](double a) { return std::sqrt(om / (a * a * a) + ol); };
  auto heath = [&](double a) { return e(a) * heath_integral(om, a); };
  const double h1 = heath(1.0);
  for (double a : {0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5}) {
    const double d_ref = heath(a) / h1;
    EXPECT_NEAR(c.growth(a) / d_ref, 1.0, 1e-4) << "a = " << a;
    // f = dlnD/dlna = dlnE/dlna + 1 / (a^2 E^3 I(a)).
    const double f_ref = -1.5 * om / (a * a * a * e(a) * e(a)) +
                         1.0 / (a * a * std::pow(e(a), 3) * heath_integral(om, a));
    EXPECT_NEAR(c.growth_rate(a) / f_ref, 1.0, 1e-4) << "a = " << a;
  }
  // Lambda slows growth: D(0.5) is above the EdS value 0.5 once normalised to D(1) = 1.
  EXPECT_GT(c.growth(0.5), 0.5 + 0.05);
}

TEST(SimCosmology, EinsteinDeSitterLimits) {
  CosmologyParams p;
  p.omega_m = 1.0;
  p.omega_b = 0.05;
  const Cosmology c(p);
  for (double a : {0.02, 0.3, 1.0}) {
    EXPECT_NEAR(c.growth(a), a, 1e-8 * a);
    EXPECT_NEAR(c.growth_rate(a), 1.0, 1e-8);
    EXPECT_NEAR(c.growth2(a), -3.0 / 7.0 * a * a, 1e-8 * a * a);
    EXPECT_NEAR(c.growth2_rate(a), 2.0, 1e-8);
  }
}

TEST(SimCosmology, SecondOrderGrowthNearStandardApproximation) {
  const Cosmology c{CosmologyParams{}};
  for (double a : {0.05, 0.2, 0.5, 1.0}) {
    const double d = c.growth(a);
    const double approx = -3.0 / 7.0 * d * d * std::pow(c.omega_m_of_a(a), -1.0 / 143.0);
    // Bouchet et al. (1995): the approximation holds to better than a percent for LCDM.
    EXPECT_NEAR(c.growth2(a) / approx, 1.0, 5e-3) << "a = " << a;
    EXPECT_NEAR(c.growth2_rate(a) / (2.0 * std::pow(c.omega_m_of_a(a), 6.0 / 11.0)), 1.0, 1e-2);
  }
}

TEST(SimCosmology, FastPmFactorDerivative) {
  const Cosmology c{CosmologyParams{}};
  for (double a : {0.05, 0.3, 0.9}) {
    const double h = 1e-5 * a;
    const double fd = (c.fastpm_gf(a + h) - c.fastpm_gf(a - h)) / (2 * h);
    EXPECT_NEAR(c.fastpm_gf_prime(a) / fd, 1.0, 1e-6) << "a = " << a;
    // G_f = a^3 E dD/da by its definition.
    const double dd = (c.growth(a + h) - c.growth(a - h)) / (2 * h);
    EXPECT_NEAR(c.fastpm_gf(a) / (a * a * a * c.hubble_e(a) * dd), 1.0, 1e-6);
  }
  EXPECT_THROW(c.growth(1e-4), ff::Error);
}

TEST(SimCosmology, RejectsBadParameters) {
  CosmologyParams p;
  p.omega_b = 0.5;
  EXPECT_THROW(Cosmology{p}, ff::Error);
  p = {};
  p.sigma8 = -1;
  EXPECT_THROW(Cosmology{p}, ff::Error);
}

// ---- Eisenstein & Hu 1998 ----

TEST(SimEisensteinHu, IntermediateQuantitiesFromThePaper) {
  const CosmologyParams p;
  const ff::EisensteinHu eh(p);
  // The paper's formulas, typed again from EH98 (T_CMB = 2.7255 K).
  const double h2 = p.h * p.h, wm = p.omega_m * h2, wb = p.omega_b * h2, th = 2.7255 / 2.7;
  const double z_eq = 2.5e4 * wm * std::pow(th, -4.0);
  const double k_eq = 0.0746 * wm * std::pow(th, -2.0);
  const double b1 = 0.313 * std::pow(wm, -0.419) * (1 + 0.607 * std::pow(wm, 0.674));
  const double b2 = 0.238 * std::pow(wm, 0.223);
  const double z_d =
      1291 * std::pow(wm, 0.251) / (1 + 0.659 * std::pow(wm, 0.828)) * (1 + b1 * std::pow(wb, b2));
  const double k_silk =
      1.6 * std::pow(wb, 0.52) * std::pow(wm, 0.73) * (1 + std::pow(10.4 * wm, -0.95));
  EXPECT_NEAR(eh.z_equality / z_eq, 1.0, 1e-12);
  EXPECT_NEAR(eh.k_equality / k_eq, 1.0, 1e-12);
  EXPECT_NEAR(eh.z_drag / z_d, 1.0, 1e-12);
  EXPECT_NEAR(eh.k_silk / k_silk, 1.0, 1e-12);
  // Beta_c (eq. 12) with the CDM fraction f_c = 1 - Omega_b/Omega_m.
  const double fc = 1 - p.omega_b / p.omega_m;
  const double bb1 = 0.944 / (1 + std::pow(458 * wm, -0.708)), bb2 = std::pow(0.395 * wm, -0.0266);
  EXPECT_NEAR(eh.beta_c * (1 + bb1 * (std::pow(fc, bb2) - 1)), 1.0, 1e-12);
  // Physically sensible: drag epoch near z ~ 1060, sound horizon ~ 150 Mpc for this cosmology.
  EXPECT_GT(eh.z_drag, 1000);
  EXPECT_LT(eh.z_drag, 1100);
  EXPECT_GT(eh.sound_horizon, 140);
  EXPECT_LT(eh.sound_horizon, 160);
  std::printf(
      "EH98: z_eq %.1f  z_drag %.2f  s %.3f Mpc (fit %.3f)  k_silk %.5f/Mpc  alpha_c %.4f "
      "beta_c %.4f  alpha_b %.4f  beta_b %.4f\n",
      eh.z_equality, eh.z_drag, eh.sound_horizon, eh.sound_horizon_fit, eh.k_silk, eh.alpha_c,
      eh.beta_c, eh.alpha_b, eh.beta_b);
}

TEST(SimEisensteinHu, SoundHorizonIsTheIntegralOfTheSoundSpeed) {
  // s = int c_s deta over matter + radiation with R = 3 rho_b / (4 rho_gamma) growing as a:
  // in u = a / a_eq, s = sqrt(2/3) / k_eq int_0^{u_d} du / sqrt((1 + R_eq u)(1 + u)).
  const ff::EisensteinHu eh{CosmologyParams{}};
  const double u_d = eh.r_drag / eh.r_equality;
  auto integrand = [&](double t) {  // u = t^2 keeps the integrand smooth at 0
    const double u = t * t;
    return 2.0 * t / std::sqrt((1 + eh.r_equality * u) * (1 + u));
  };
  const double s =
      std::sqrt(2.0 / 3.0) / eh.k_equality * simpson(integrand, 0.0, std::sqrt(u_d), 20000);
  EXPECT_NEAR(eh.sound_horizon / s, 1.0, 1e-8);
  // EH98's own fit (eq. 26) agrees with eq. 6 to a few percent.
  EXPECT_NEAR(eh.sound_horizon_fit / eh.sound_horizon, 1.0, 0.03);
}

TEST(SimEisensteinHu, NoWiggleFormIsEquations29To31) {
  const CosmologyParams p;
  const ff::EisensteinHu eh(p);
  const double h = p.h, wm = p.omega_m * h * h, wb = p.omega_b * h * h, fb = p.omega_b / p.omega_m;
  const double th = 2.7255 / 2.7;
  const double s = 44.5 * std::log(9.83 / wm) / std::sqrt(1 + 10 * std::pow(wb, 0.75));
  const double ag = 1 - 0.328 * std::log(431 * wm) * fb + 0.38 * std::log(22.3 * wm) * fb * fb;
  for (double k : {1e-4, 1e-3, 0.01, 0.05, 0.1, 0.2, 0.5, 1.0, 3.0, 10.0}) {
    const double kmpc = k * h;
    const double gamma = p.omega_m * h * (ag + (1 - ag) / (1 + std::pow(0.43 * kmpc * s, 4)));
    const double q = k * th * th / gamma;
    const double l0 = std::log(2 * std::numbers::e + 1.8 * q);
    const double c0 = 14.2 + 731 / (1 + 62.5 * q);
    EXPECT_NEAR(eh.transfer_no_wiggle(k) / (l0 / (l0 + c0 * q * q)), 1.0, 1e-12) << "k = " << k;
  }
}

TEST(SimEisensteinHu, WigglesOscillateAroundTheSmoothForm) {
  const ff::EisensteinHu eh{CosmologyParams{}};
  EXPECT_NEAR(eh.transfer(1e-5), 1.0, 1e-3);
  EXPECT_NEAR(eh.transfer_no_wiggle(1e-5), 1.0, 1e-3);
  // Across the BAO range the ratio crosses 1 several times and stays within ~10%.
  int crossings = 0;
  double prev = 0;
  double max_dev = 0;
  for (int i = 0; i <= 400; ++i) {
    const double k = 0.02 * std::pow(0.4 / 0.02, i / 400.0);
    const double r = eh.transfer(k) / eh.transfer_no_wiggle(k) - 1.0;
    if (i > 0 && r * prev < 0) ++crossings;
    prev = r;
    max_dev = std::max(max_dev, std::abs(r));
  }
  EXPECT_GE(crossings, 4);
  EXPECT_LT(max_dev, 0.1);
  EXPECT_GT(max_dev, 0.01);
  // Far beyond the Silk scale the baryon wiggles are damped away.
  EXPECT_NEAR(eh.transfer(5.0) / eh.transfer_no_wiggle(5.0), 1.0, 0.05);
}

// ---- sigma8 and the table input ----

double sigma8_brute_force(const ff::LinearPower& pk) {
  // Trapezoid rule in ln k on a very fine grid, independent of the library's Gauss-Legendre.
  const int n = 400000;
  const double lo = std::log(1e-5), hi = std::log(1e3), dl = (hi - lo) / n;
  double sum = 0;
  for (int i = 0; i <= n; ++i) {
    const double k = std::exp(lo + i * dl), x = 8 * k;
    const double w = 3 * (std::sin(x) - x * std::cos(x)) / (x * x * x);
    sum += (i == 0 || i == n ? 0.5 : 1.0) * k * k * k * pk(k) * w * w;
  }
  return std::sqrt(sum * dl / (2 * std::numbers::pi * std::numbers::pi));
}

TEST(SimLinearPower, NormalisedToSigma8) {
  const CosmologyParams p;
  for (auto kind : {ff::TransferKind::eh98, ff::TransferKind::eh98_no_wiggle}) {
    const ff::LinearPower pk(p, kind);
    EXPECT_NEAR(sigma8_brute_force(pk) / p.sigma8, 1.0, 1e-3);
    EXPECT_NEAR(pk.sigma_tophat(8.0) / p.sigma8, 1.0, 1e-6);
    // Shape: P ~ k^n_s on the largest scales.
    EXPECT_NEAR(std::log(pk(2e-5) / pk(1e-5)) / std::log(2.0), p.n_s, 2e-3);
  }
}

TEST(SimLinearPower, TableInterpolatesLogLog) {
  const CosmologyParams p;
  const ff::LinearPower ref(p, ff::TransferKind::eh98_no_wiggle);
  const auto dir = std::filesystem::temp_directory_path() /
                   ("fieldflow_test_sim_table_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "pk.dat").string();
  {
    std::ofstream out(path);
    out << "# k [h/Mpc]  P [(Mpc/h)^3]  (as CAMB writes it)\n\n";
    for (int i = 0; i <= 600; ++i) {
      const double k = 1e-4 * std::pow(1e6, i / 600.0);
      out << k << "  " << 2.0 * ref(k) << "\n";
    }
  }
  const ff::LinearPower raw(p, ff::read_power_table(path), false);
  const ff::LinearPower scaled(p, ff::read_power_table(path), true);
  for (double k : {3e-4, 0.0123, 0.1, 0.77, 5.0}) {
    EXPECT_NEAR(raw(k) / (2.0 * ref(k)), 1.0, 2e-4) << k;
    EXPECT_NEAR(scaled(k) / ref(k), 1.0, 2e-4) << k;
  }
  EXPECT_NEAR(scaled.sigma_tophat(8.0) / p.sigma8, 1.0, 1e-6);
  // Beyond the table: power laws through the end points.
  EXPECT_GT(raw(1e3), 0.0);
  {
    std::ofstream out(path);
    out << "0.1 1.0\n0.05 2.0\n";
  }
  EXPECT_THROW(ff::read_power_table(path), ff::Error);
  {
    std::ofstream out(path);
    out << "0.1 1.0\nfoo bar\n";
  }
  try {
    ff::read_power_table(path);
    FAIL() << "no error";
  } catch (const ff::Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ff::read_power_table((dir / "missing.dat").string()), ff::Error);
  std::filesystem::remove_all(dir);
}

}  // namespace
