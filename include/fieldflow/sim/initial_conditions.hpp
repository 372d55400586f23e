#pragma once
// Gaussian initial conditions on a particle lattice and their Lagrangian perturbation theory
// displacements.
//
// The linear density contrast at z = 0 (D1 = 1) is drawn mode by mode in Fourier space:
//   delta_k = sqrt(P(|k|) N^6 / (2 L^3)) (g1 + i g2),  so <|delta_k|^2> = P N^6 / L^3
// (the README's convention P = L^3 |delta_k|^2 / N^6), with (g1, g2) the CounterRng(seed) normal
// pair whose counter is the integer wavevector (kx, ky, kz) itself. Each mode is therefore a pure
// function of (seed, wavevector): independent of threads and ranks, and the same large-scale modes
// at any lattice size. With fixed_amplitude (Angulo & Pontzen 2016, Quijote's "fixed" sims)
// |delta_k|^2 = P N^6 / L^3 exactly and only the phase, 2 pi u1 from the same pair, is random.
// Hermitian symmetry: the half-space kz = 0 modes with kx < 0 (or kx = 0,
// ky < 0) are the conjugates of their partners; the Nyquist planes and k = 0 are zero.
//
// Lattice points q = (i, j, k) L / N. Displacements (Crocce, Pueblas & Scoccimarro 2006):
//   x = q + D1 s1 + D2 s2,   s1 = -grad phi1, lap phi1 = delta;   s2 = grad phi2,
//   lap phi2 = sum_{i<j} (phi1_ii phi1_jj - phi1_ij^2),  D2 ~ -3/7 D1^2 from Cosmology.
// Momenta p = a^3 E dx/da = G_f(a) s1 + G_f2(a) s2 (Cosmology::fastpm_gf, fastpm_gf2), the
// variable the particle-mesh integrator advances; peculiar velocity = 100 p / a km/s.
#include <array>
#include <cmath>
#include <complex>
#include <cstdint>
#include <vector>

#include "fieldflow/core/grid.hpp"
#include "fieldflow/sim/cosmology.hpp"
#include "fieldflow/sim/linear_power.hpp"

namespace ff {

// The CounterRng counter of integer wavevector (kx, ky, kz), each in (-2^20, 2^20).
uint64_t mode_counter(int kx, int ky, int kz);

// The linear density modes at z = 0 in RealFft3d's half-complex layout [n][n][n/2 + 1].
std::vector<std::complex<double>> linear_density_modes(int n, double box_size_mpch,
                                                       const LinearPower& power, uint64_t seed,
                                                       bool fixed_amplitude = false);
// The same field in real space at z = 0.
Grid linear_density_field(int n, double box_size_mpch, const LinearPower& power, uint64_t seed,
                          bool fixed_amplitude = false);

enum class LptOrder { first = 1, second = 2 };

struct Particles {
  double a = 0.0;  // scale factor the state belongs to
  double box_size_mpch = 0.0;
  int n_per_side = 0;                                // lattice of n^3 particles
  std::vector<std::array<double, 3>> position_mpch;  // comoving, wrapped into [0, L)
  std::vector<std::array<double, 3>> momentum;       // p = a^3 E dx/da, Mpc/h (H0 = 1)
  std::vector<uint64_t> ids;                         // lattice index + 1
  size_t size() const { return position_mpch.size(); }
};

// n^3 particles displaced to scale factor a_start at first or second order.
Particles lpt_initial_conditions(const Cosmology& cosmology, const LinearPower& power, int n,
                                 double box_size_mpch, uint64_t seed, double a_start,
                                 LptOrder order = LptOrder::second, bool fixed_amplitude = false);

// Gadget's stored velocity, v_pec / sqrt(a) in km/s, of momentum p at scale factor a.
inline std::array<double, 3> gadget_velocity(const std::array<double, 3>& p, double a) {
  const double s = 100.0 / (a * std::sqrt(a));
  return {p[0] * s, p[1] * s, p[2] * s};
}

}  // namespace ff
