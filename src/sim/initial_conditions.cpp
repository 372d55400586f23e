#include "fieldflow/sim/initial_conditions.hpp"

#include <cmath>
#include <numbers>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/periodic.hpp"
#include "fieldflow/core/rng.hpp"

namespace ff {

uint64_t mode_counter(int kx, int ky, int kz) {
  constexpr int64_t offset = int64_t(1) << 20;
  return (uint64_t(kx + offset) << 42) | (uint64_t(ky + offset) << 21) | uint64_t(kz + offset);
}

namespace {
void check_lattice(int n, double box) {
  if (n < 2 || n % 2 != 0 || n >= (1 << 20))
    throw Error("simulation",
                "particles per side must be even, >= 2 and < 2^20, got " + std::to_string(n));
  if (!(box > 0.0)) throw Error("simulation", "box size must be positive");
}
}  // namespace

std::vector<std::complex<double>> linear_density_modes(int n, double box, const LinearPower& power,
                                                       uint64_t seed, bool fixed_amplitude) {
  check_lattice(n, box);
  const int nh = n / 2 + 1;
  std::vector<std::complex<double>> modes(size_t(n) * n * nh);
  const CounterRng rng(seed, 0);
  const double kf = 2.0 * std::numbers::pi / box;
  const double n3 = double(n) * n * n;
  const double norm = n3 * n3 / (box * box * box);
#pragma omp parallel for schedule(static)
  for (int a = 0; a < n; ++a) {
    const int kx = fft_wavenumber(a, n);
    for (int b = 0; b < n; ++b) {
      const int ky = fft_wavenumber(b, n);
      for (int c = 0; c < nh; ++c) {
        const int kz = c;
        std::complex<double>& out = modes[(size_t(a) * n + b) * nh + c];
        if (kx == n / 2 || ky == n / 2 || kz == n / 2 || (kx == 0 && ky == 0 && kz == 0)) {
          out = 0.0;
          continue;
        }
        // In the kz = 0 plane only one of (kx, ky) and (-kx, -ky) is drawn; the other is its
        // conjugate.
        const bool mirrored = kz == 0 && (kx < 0 || (kx == 0 && ky < 0));
        const int cx = mirrored ? -kx : kx, cy = mirrored ? -ky : ky;
        const uint64_t counter = mode_counter(cx, cy, kz);
        const double k = kf * std::sqrt(double(kx) * kx + double(ky) * ky + double(kz) * kz);
        double re, im;
        if (fixed_amplitude) {
          const double amp = std::sqrt(power(k) * norm);
          const double phase = 2.0 * std::numbers::pi * rng.uniform(counter);
          re = amp * std::cos(phase);
          im = amp * std::sin(phase);
        } else {
          const double amp = std::sqrt(power(k) * norm / 2.0);
          const auto [g1, g2] = rng.normal_pair(counter);
          re = amp * g1;
          im = amp * g2;
        }
        out = std::complex<double>(re, mirrored ? -im : im);
      }
    }
  }
  return modes;
}

Grid linear_density_field(int n, double box, const LinearPower& power, uint64_t seed,
                          bool fixed_amplitude) {
  auto modes = linear_density_modes(n, box, power, seed, fixed_amplitude);
  RealFft3d<double> fft(n);
  std::copy(modes.begin(), modes.end(), fft.complex());
  fft.inverse();
  Grid g(n, box, 0.0);
  const double inv = 1.0 / (double(n) * n * n);
  for (size_t i = 0; i < g.size(); ++i) g.values[i] = fft.real()[i] * inv;
  return g;
}

namespace {
// Fills fft.complex() with modes * kernel(kx, ky, kz) (physical wavevector, h/Mpc) and transforms
// to real space, normalised (divided by n^3).
template <typename Kernel>
void inverse_with(RealFft3d<double>& fft, const std::vector<std::complex<double>>& modes,
                  double box, Kernel kernel) {
  const int n = fft.n(), nh = n / 2 + 1;
  const double kf = 2.0 * std::numbers::pi / box;
  std::complex<double>* out = fft.complex();
#pragma omp parallel for schedule(static)
  for (int a = 0; a < n; ++a) {
    const double kx = kf * fft_wavenumber(a, n);
    for (int b = 0; b < n; ++b) {
      const double ky = kf * fft_wavenumber(b, n);
      for (int c = 0; c < nh; ++c) {
        const size_t i = (size_t(a) * n + b) * nh + c;
        out[i] = modes[i] * kernel(kx, ky, kf * c);
      }
    }
  }
  fft.inverse();
  const double inv = 1.0 / (double(n) * n * n);
  double* r = fft.real();
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < fft.real_size(); ++i) r[i] *= inv;
}

// The displacement -grad(lap^-1 source) = i k source_k / k^2, component d, into out.
void displacement_component(RealFft3d<double>& fft, const std::vector<std::complex<double>>& source,
                            double box, int d, std::vector<double>& out) {
  inverse_with(fft, source, box, [d](double kx, double ky, double kz) {
    const double k2 = kx * kx + ky * ky + kz * kz;
    if (k2 == 0.0) return std::complex<double>(0.0);
    const double kd = d == 0 ? kx : d == 1 ? ky : kz;
    return std::complex<double>(0.0, kd / k2);
  });
  out.assign(fft.real(), fft.real() + fft.real_size());
}
}  // namespace

Particles lpt_initial_conditions(const Cosmology& cosmo, const LinearPower& power, int n,
                                 double box, uint64_t seed, double a_start, LptOrder order,
                                 bool fixed_amplitude) {
  check_lattice(n, box);
  const auto delta = linear_density_modes(n, box, power, seed, fixed_amplitude);
  RealFft3d<double> fft(n);
  const size_t count = size_t(n) * n * n;

  // First order: s1 = -grad phi1 with lap phi1 = delta, i.e. s1_k = i k delta_k / k^2.
  std::array<std::vector<double>, 3> s1, s2;
  for (int d = 0; d < 3; ++d) displacement_component(fft, delta, box, d, s1[d]);

  if (order == LptOrder::second) {
    // phi1_ij = lap^-1 d_i d_j delta: in Fourier k_i k_j delta_k / k^2 (two factors of i and the
    // minus of the inverse Laplacian cancel).
    std::array<std::vector<double>, 6> phi;  // xx, yy, zz, xy, xz, yz
    const int pairs[6][2] = {{0, 0}, {1, 1}, {2, 2}, {0, 1}, {0, 2}, {1, 2}};
    for (int m = 0; m < 6; ++m) {
      const int i = pairs[m][0], j = pairs[m][1];
      inverse_with(fft, delta, box, [i, j](double kx, double ky, double kz) {
        const double k2 = kx * kx + ky * ky + kz * kz;
        if (k2 == 0.0) return std::complex<double>(0.0);
        const double k[3] = {kx, ky, kz};
        return std::complex<double>(k[i] * k[j] / k2, 0.0);
      });
      phi[m].assign(fft.real(), fft.real() + count);
    }
    // Second-order source sum_{i<j} (phi_ii phi_jj - phi_ij^2).
    double* r = fft.real();
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; ++i)
      r[i] = phi[0][i] * phi[1][i] + phi[0][i] * phi[2][i] + phi[1][i] * phi[2][i] -
             phi[3][i] * phi[3][i] - phi[4][i] * phi[4][i] - phi[5][i] * phi[5][i];
    for (auto& p : phi) std::vector<double>().swap(p);
    fft.forward();
    std::vector<std::complex<double>> source(fft.complex(), fft.complex() + fft.complex_size());
    // The Nyquist planes of a product field are aliased; keep them out as for delta.
    const int nh = n / 2 + 1;
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b)
        for (int c = 0; c < nh; ++c)
          if (a == n / 2 || b == n / 2 || c == n / 2) source[(size_t(a) * n + b) * nh + c] = 0.0;
    // s2 = grad phi2 with lap phi2 = source: s2_k = -(i k source_k / k^2).
    for (int d = 0; d < 3; ++d) {
      displacement_component(fft, source, box, d, s2[d]);
      for (auto& v : s2[d]) v = -v;
    }
  }

  const double d1 = cosmo.growth(a_start), g1 = cosmo.fastpm_gf(a_start);
  const double d2 = order == LptOrder::second ? cosmo.growth2(a_start) : 0.0;
  const double g2 = order == LptOrder::second ? cosmo.fastpm_gf2(a_start) : 0.0;
  Particles p;
  p.a = a_start;
  p.box_size_mpch = box;
  p.n_per_side = n;
  p.position_mpch.resize(count);
  p.momentum.resize(count);
  p.ids.resize(count);
  const double cell = box / n;
  const bool second = order == LptOrder::second;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k) {
        const size_t idx = (size_t(i) * n + j) * n + k;
        const double q[3] = {i * cell, j * cell, k * cell};
        for (int d = 0; d < 3; ++d) {
          const double sa = s1[d][idx], sb = second ? s2[d][idx] : 0.0;
          p.position_mpch[idx][d] = wrap_periodic(q[d] + d1 * sa + d2 * sb, box);
          p.momentum[idx][d] = g1 * sa + g2 * sb;
        }
        p.ids[idx] = idx + 1;
      }
  return p;
}

}  // namespace ff
