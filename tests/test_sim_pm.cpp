// Initial conditions and the particle-mesh solver: the Gaussian field's spectrum, the force of a
// plane wave against its analytic value, the fd4 force against a brute-force evaluation, linear
// growth reproduced by FastPM's KDK, the non-Gaussian z = 0 field, determinism and conservation.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstring>
#include <numbers>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/simd.hpp"
#include "fieldflow/sim/cosmology.hpp"
#include "fieldflow/sim/initial_conditions.hpp"
#include "fieldflow/sim/linear_power.hpp"
#include "fieldflow/sim/particle_mesh.hpp"
#include "fieldflow/stats/paint.hpp"
#include "fieldflow/stats/power_spectrum.hpp"

namespace {

const ff::CosmologyParams kParams{};

const ff::LinearPower& linear_power() {
  static const ff::LinearPower pk(kParams, ff::TransferKind::eh98);
  return pk;
}
const ff::Cosmology& cosmology() {
  static const ff::Cosmology c(kParams);
  return c;
}

// The mean of P_lin(|k|) over the modes of each bin (same binning as measure_power_spectrum:
// bin i holds i <= |n| < i + 1, |n| <= N/2), so the expectation is exact for the bin.
std::vector<double> binned_linear_power(int n, double box, size_t bins) {
  std::vector<double> sum(bins + 2, 0.0), count(bins + 2, 0.0);
  const double kf = 2 * std::numbers::pi / box;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c < n; ++c) {
        const int x = ff::fft_wavenumber(a, n), y = ff::fft_wavenumber(b, n),
                  z = ff::fft_wavenumber(c, n);
        const double len = std::sqrt(double(x * x + y * y + z * z));
        if (len == 0 || len > n / 2) continue;
        const size_t bin = size_t(len);
        if (bin < 1 || bin > bins) continue;
        // The generator leaves the Nyquist planes empty.
        if (x == n / 2 || y == n / 2 || z == n / 2 || x == -n / 2 || y == -n / 2 || z == -n / 2)
          continue;
        sum[bin] += linear_power()(kf * len);
        count[bin] += 1;
      }
  std::vector<double> out(bins);
  for (size_t i = 0; i < bins; ++i) out[i] = count[i + 1] > 0 ? sum[i + 1] / count[i + 1] : 0.0;
  return out;
}

ff::PowerSpectrum painted_spectrum(const ff::Particles& p, int grid) {
  ff::Painter painter(grid, p.box_size_mpch, ff::MassAssignment::cic);
  painter.add(p.position_mpch);
  ff::PowerSpectrumOptions opts;
  opts.mas = ff::MassAssignment::cic;
  return ff::measure_power_spectrum(painter.delta(), opts);
}

TEST(SimInitialConditions, ModesAreHermitianAndIndependentOfLatticeAndThreads) {
  const int n = 16;
  const double box = 100.0;
  const auto m16 = ff::linear_density_modes(n, box, linear_power(), 7);
  const auto m32 = ff::linear_density_modes(2 * n, box, linear_power(), 7);
  const int nh = n / 2 + 1, nh2 = n + 1;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b) {
      const int kx = ff::fft_wavenumber(a, n), ky = ff::fft_wavenumber(b, n);
      // kz = 0 plane: delta(-k) = conj(delta(k)).
      const int ma = (n - a) % n, mb = (n - b) % n;
      EXPECT_EQ(m16[(size_t(a) * n + b) * nh], std::conj(m16[(size_t(ma) * n + mb) * nh]));
      for (int c = 0; c < nh; ++c) {
        const auto v16 = m16[(size_t(a) * n + b) * nh + c];
        if (kx == n / 2 || ky == n / 2 || c == n / 2 || (kx == 0 && ky == 0 && c == 0)) {
          EXPECT_EQ(v16, std::complex<double>(0.0));
          continue;
        }
        // The same wavevector on a lattice twice as fine: delta_k / N^3 agrees.
        const int a2 = kx < 0 ? kx + 2 * n : kx, b2 = ky < 0 ? ky + 2 * n : ky;
        const auto v32 = m32[(size_t(a2) * 2 * n + b2) * nh2 + c] / 8.0;
        EXPECT_NEAR(std::abs(v32 - v16), 0.0, 1e-12 * std::abs(v16));
      }
    }
  // Threads do not change a single bit, of the modes or of the displaced particles.
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto p1 = ff::lpt_initial_conditions(cosmology(), linear_power(), 32, 128.0, 11, 0.05);
  const auto one = ff::linear_density_modes(n, box, linear_power(), 7);
  omp_set_num_threads(std::max(2, threads));
  const auto p2 = ff::lpt_initial_conditions(cosmology(), linear_power(), 32, 128.0, 11, 0.05);
  omp_set_num_threads(threads);
  EXPECT_EQ(0, std::memcmp(one.data(), m16.data(), one.size() * sizeof(one[0])));
  EXPECT_EQ(0, std::memcmp(p1.position_mpch.data(), p2.position_mpch.data(), p1.size() * 24));
  EXPECT_EQ(0, std::memcmp(p1.momentum.data(), p2.momentum.data(), p1.size() * 24));
}

TEST(SimInitialConditions, SpectrumMatchesLinearWithinCosmicVariance) {
  const int n = 32, seeds = 4;
  const double box = 256.0, a_start = 0.05;
  const double d2 = std::pow(cosmology().growth(a_start), 2);
  std::vector<double> grf, part, nmodes;
  for (int s = 0; s < seeds; ++s) {
    const auto field = ff::linear_density_field(n, box, linear_power(), 100 + s);
    const auto pk = ff::measure_power_spectrum(field);
    const auto particles =
        ff::lpt_initial_conditions(cosmology(), linear_power(), n, box, 100 + s, a_start);
    const auto pp = painted_spectrum(particles, n);
    if (grf.empty()) {
      grf.assign(pk.pk.size(), 0.0);
      part.assign(pk.pk.size(), 0.0);
      nmodes = pk.nmodes;
    }
    for (size_t i = 0; i < pk.pk.size(); ++i) {
      grf[i] += pk.pk[i] / seeds;
      part[i] += pp.pk[i] / seeds / d2;
    }
  }
  const auto expect = binned_linear_power(n, box, grf.size());
  // nmodes counts k and -k: a bin holds nmodes/2 independent complex modes, each |delta_k|^2
  // exponential with variance P^2. The particles are checked up to half the lattice's Nyquist.
  double chi2 = 0;
  int bins = 0;
  for (size_t i = 0; i < grf.size(); ++i) {
    if (expect[i] == 0.0) continue;  // the last bin holds only Nyquist modes, left empty
    const double sigma = expect[i] / std::sqrt(nmodes[i] / 2.0 * seeds);
    const double z = (grf[i] - expect[i]) / sigma;
    EXPECT_LT(std::abs(z), 4.0) << "GRF bin " << i;
    chi2 += z * z;
    ++bins;
    if (i + 1 <= size_t(n / 4)) {
      const double zp = (part[i] - expect[i]) / sigma;
      EXPECT_LT(std::abs(zp), 4.0)
          << "particles at z = 19, bin " << i << " ratio " << part[i] / expect[i];
    }
  }
  std::printf("GRF chi2/bins = %.2f over %d bins\n", chi2 / bins, bins);
  EXPECT_LT(chi2 / bins, 2.0);
}

// 2LPT against the dynamics: particles started with Zel'dovich at a = 0.01 and evolved by the PM
// solver to a = 0.1 deviate from Zel'dovich at a = 0.1 by (mostly) the second-order displacement
// and momentum. Regressing that deviation on the 2LPT correction (2LPT - Zel'dovich at a = 0.1)
// must give a coefficient near +1: the sign and size of D2 s2 and of its momentum G2 s2.
TEST(SimInitialConditions, SecondOrderMatchesTheDynamics) {
  const int n = 32;
  const double box = 128.0, a1 = 0.1;
  auto evolved =
      ff::lpt_initial_conditions(cosmology(), linear_power(), n, box, 9, 0.01, ff::LptOrder::first);
  ff::PmOptions opt;
  opt.steps = 40;
  ff::evolve(cosmology(), evolved, {a1}, opt, [](int, const ff::Particles&) {});
  const auto two = ff::lpt_initial_conditions(cosmology(), linear_power(), n, box, 9, a1);
  const auto za =
      ff::lpt_initial_conditions(cosmology(), linear_power(), n, box, 9, a1, ff::LptOrder::first);
  auto wrap = [box](double v) { return v - box * std::round(v / box); };
  double num_x = 0, den_x = 0, num_p = 0, den_p = 0;
  for (size_t i = 0; i < za.size(); ++i)
    for (int d = 0; d < 3; ++d) {
      const double u = wrap(evolved.position_mpch[i][d] - za.position_mpch[i][d]);
      const double v = wrap(two.position_mpch[i][d] - za.position_mpch[i][d]);
      num_x += u * v;
      den_x += v * v;
      const double pu = evolved.momentum[i][d] - za.momentum[i][d];
      const double pv = two.momentum[i][d] - za.momentum[i][d];
      num_p += pu * pv;
      den_p += pv * pv;
    }
  std::printf("deviation from Zel'dovich along the 2LPT correction: positions %.3f, momenta %.3f\n",
              num_x / den_x, num_p / den_p);
  EXPECT_GT(num_x / den_x, 0.7);
  EXPECT_LT(num_x / den_x, 1.6);
  EXPECT_GT(num_p / den_p, 0.7);
  EXPECT_LT(num_p / den_p, 1.6);
}

// A plane wave x = q + A sin(k q_x): delta = -A k cos(k x) to first order, so -grad psi with
// lap psi = delta is A sin(k x) along x, exactly the displacement.
struct PlaneWaveResult {
  double response;  // projection of the x force on sin(k q), in units of A
  double worst;     // largest deviation from response * A sin(k q), in units of A
  double cross;     // largest y or z force, in units of A
  long ffts;
  int ffts_expected;
};

PlaneWaveResult plane_wave(ff::GradientKind grad, int n_mesh, int compensation, int mode) {
  const int np = 32;
  const double box = 128.0, amp = 0.05 * box / np;
  const double k = 2 * std::numbers::pi * mode / box;
  std::vector<std::array<double, 3>> x(size_t(np) * np * np), acc(x.size());
  std::vector<double> q(x.size());
  for (int i = 0; i < np; ++i)
    for (int j = 0; j < np; ++j)
      for (int l = 0; l < np; ++l) {
        const size_t p = (size_t(i) * np + j) * np + l;
        q[p] = i * box / np;
        x[p] = {q[p] + amp * std::sin(k * q[p]), j * box / np, l * box / np};
      }
  ff::ParticleMesh pm(n_mesh, box, grad, 0, compensation);
  pm.accelerations(x, acc);
  PlaneWaveResult r{};
  double proj = 0, norm = 0;
  for (size_t p = 0; p < x.size(); ++p) {
    proj += acc[p][0] * std::sin(k * q[p]);
    norm += amp * std::sin(k * q[p]) * std::sin(k * q[p]);
    r.cross = std::max(r.cross, std::max(std::abs(acc[p][1]), std::abs(acc[p][2])) / amp);
  }
  r.response = proj / norm;
  for (size_t p = 0; p < x.size(); ++p)
    r.worst = std::max(r.worst, std::abs(acc[p][0] - r.response * amp * std::sin(k * q[p])) / amp);
  r.ffts = pm.timing().ffts;
  r.ffts_expected = pm.ffts_per_force();
  return r;
}

// The kernels on a mesh coarser than the lattice (two particle planes per cell: the lattice is
// invisible to the mesh), paint and read-out windows divided out: the response is the
// gradient's own, 1 for the spectral one and (8 sin w - sin 2w) / (6 w), w = k H, for fd4.
TEST(SimParticleMesh, PlaneWaveForceKernels) {
  for (auto grad : {ff::GradientKind::spectral, ff::GradientKind::fd4})
    for (int mode : {1, 3}) {
      const int n_mesh = 16;
      const double w = 2 * std::numbers::pi * mode / n_mesh;
      const double expect =
          grad == ff::GradientKind::spectral ? 1.0 : (8 * std::sin(w) - std::sin(2 * w)) / (6 * w);
      const auto r = plane_wave(grad, n_mesh, 2, mode);
      std::printf("%s, mesh 16 (B = 1/2), mode %d: response %.4f (kernel %.4f), worst %.4f A\n",
                  ff::to_string(grad), mode, r.response, expect, r.worst);
      // (Point by point, CIC read-out between coarse nodes scatters; the mode's amplitude is
      // what the kernel sets.)
      EXPECT_NEAR(r.response / expect, 1.0, 0.01) << ff::to_string(grad) << " mode " << mode;
      EXPECT_LT(r.cross, 1e-4);  // float rounding of the mesh
      EXPECT_EQ(r.ffts, r.ffts_expected);
    }
}

// The production set-up, B = 2 with the lattice at the mesh's cell centres: fd4 returns the
// continuum force at every particle. (The spectral gradient picks up the dipole pattern a
// displaced lattice paints at the mesh's Nyquist frequency, docs/simulate.md.)
TEST(SimParticleMesh, PlaneWaveForceOnTheLattice) {
  for (int mode : {1, 3}) {
    const auto r = plane_wave(ff::GradientKind::fd4, 64, 0, mode);
    const auto s = plane_wave(ff::GradientKind::spectral, 64, 0, mode);
    std::printf(
        "B = 2, mode %d: fd4 response %.4f worst %.4f A; spectral response %.4f worst %.4f A\n",
        mode, r.response, r.worst, s.response, s.worst);
    EXPECT_NEAR(r.response, 1.0, 0.005) << "mode " << mode;
    EXPECT_LT(r.worst, 0.01) << "mode " << mode;
    EXPECT_LT(r.cross, 1e-4);  // float rounding of the mesh
  }
}

// The fd4 force against a brute-force evaluation of its definition in double precision: CIC mass
// on the nodes (j + 1/2) H, a direct (per-axis) DFT, psi_k = -delta_k / k^2, the 4-point central
// difference on the mesh and CIC interpolation of it at each particle. Positions cover the box's
// edges (0, just below L, the last half cell) so every wrapped row and plane is read. The read-out
// is compiled per SIMD target: every target this machine has, forced in turn, is checked.
TEST(SimParticleMesh, Fd4ForceMatchesBruteForceOnEverySimdTarget) {
  const int n = 16;
  const double box = 40.0, cell = box / n;
  std::vector<std::array<double, 3>> x;
  uint64_t state = 12345;
  auto uniform = [&] {  // xorshift: the test needs no statistics, only spread
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return double(state >> 11) * 0x1.0p-53;
  };
  for (int i = 0; i < 300; ++i) x.push_back({box * uniform(), box * uniform(), box * uniform()});
  const double edges[] = {0.0, 1e-9, 0.5 * cell, box - 0.5 * cell, box - 1e-9, box - cell};
  for (double a : edges)
    for (double b : edges)
      x.push_back({a, b, box * uniform()}), x.push_back({b, box * uniform(), a});
  for (double a : edges) x.push_back({box * uniform(), box * uniform(), a});

  // Brute force. CIC weights of a coordinate on the nodes (j + 1/2) H.
  auto cic = [&](double u, int& j0, double& f) {
    const double s = u / cell - 0.5, fl = std::floor(s);
    j0 = int(fl);
    f = s - fl;
  };
  auto wrap = [&](int j) { return ((j % n) + n) % n; };
  const size_t N = size_t(n) * n * n;
  auto at = [&](int a, int b, int c) { return (size_t(wrap(a)) * n + wrap(b)) * n + wrap(c); };
  std::vector<std::complex<double>> field(N, 0.0);
  for (const auto& p : x) {
    int j[3];
    double f[3];
    for (int d = 0; d < 3; ++d) cic(p[d], j[d], f[d]);
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b)
        for (int c = 0; c < 2; ++c)
          field[at(j[0] + a, j[1] + b, j[2] + c)] +=
              (a ? f[0] : 1 - f[0]) * (b ? f[1] : 1 - f[1]) * (c ? f[2] : 1 - f[2]);
  }
  // Direct DFT along each axis in turn (sign -1 forward, +1 inverse, unnormalised).
  auto dft = [&](int sign) {
    std::vector<std::complex<double>> line(n);
    for (int axis = 0; axis < 3; ++axis)
      for (int u = 0; u < n; ++u)
        for (int v = 0; v < n; ++v) {
          auto index = [&](int t) {
            return axis == 0 ? at(t, u, v) : axis == 1 ? at(u, t, v) : at(u, v, t);
          };
          for (int k = 0; k < n; ++k) {
            line[k] = 0.0;
            for (int t = 0; t < n; ++t)
              line[k] += field[index(t)] * std::polar(1.0, sign * 2 * std::numbers::pi * k * t / n);
          }
          for (int k = 0; k < n; ++k) field[index(k)] = line[k];
        }
  };
  dft(-1);
  const double kf = 2 * std::numbers::pi / box;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c < n; ++c) {
        const double k2 =
            kf * kf *
            (std::pow(ff::fft_wavenumber(a, n), 2) + std::pow(ff::fft_wavenumber(b, n), 2) +
             std::pow(ff::fft_wavenumber(c, n), 2));
        // delta_k = n^3 / N_p mass_k (k != 0); the inverse DFT's 1 / n^3 folded in.
        field[at(a, b, c)] *= k2 > 0 ? -1.0 / (double(x.size()) * k2) : 0.0;
      }
  dft(+1);
  std::vector<std::array<double, 3>> brute(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    int j[3];
    double f[3];
    for (int d = 0; d < 3; ++d) cic(x[i][d], j[d], f[d]);
    for (int d = 0; d < 3; ++d) {
      double g = 0;
      for (int a = 0; a < 2; ++a)
        for (int b = 0; b < 2; ++b)
          for (int c = 0; c < 2; ++c) {
            int node[3] = {j[0] + a, j[1] + b, j[2] + c};
            auto psi = [&](int shift) {
              int q[3] = {node[0], node[1], node[2]};
              q[d] += shift;
              return field[at(q[0], q[1], q[2])].real();
            };
            const double diff = (8 * (psi(1) - psi(-1)) - (psi(2) - psi(-2))) / (12 * cell);
            g -= (a ? f[0] : 1 - f[0]) * (b ? f[1] : 1 - f[1]) * (c ? f[2] : 1 - f[2]) * diff;
          }
      brute[i][d] = g;
    }
  }
  struct Restore {
    ~Restore() { ff::force_simd_target(""); }
  } restore;
  for (const std::string& target : ff::simd_available_targets()) {
    ff::force_simd_target(target);
    ff::ParticleMesh pm(n, box, ff::GradientKind::fd4);
    std::vector<std::array<double, 3>> acc(x.size());
    pm.accelerations(x, acc);
    double worst = 0, largest = 0;
    for (size_t i = 0; i < x.size(); ++i)
      for (int d = 0; d < 3; ++d) {
        worst = std::max(worst, std::abs(acc[i][d] - brute[i][d]));
        largest = std::max(largest, std::abs(brute[i][d]));
      }
    std::printf("%s: fd4 force against brute force: worst %.3g of the largest %.3g\n",
                target.c_str(), worst, largest);
    ASSERT_GT(largest, 0.0);
    EXPECT_LT(worst, 1e-5 * largest) << target;  // single-precision mesh and stencil
  }
}

TEST(SimParticleMesh, TimeSteps) {
  const auto a = ff::time_steps(0.1, {1.0}, 9);
  ASSERT_EQ(a.size(), 10u);
  EXPECT_DOUBLE_EQ(a.front(), 0.1);
  EXPECT_DOUBLE_EQ(a.back(), 1.0);
  EXPECT_NEAR(a[1] - a[0], 0.1, 1e-12);
  const auto b = ff::time_steps(0.1, {1.0, 0.5, 0.55}, 9);  // 0.5 is a boundary, 0.55 inserted
  EXPECT_EQ(b.size(), 11u);
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
  EXPECT_NE(std::find(b.begin(), b.end(), 0.55), b.end());
  EXPECT_THROW(ff::time_steps(1.0, {0.5}, 4), ff::Error);
}

TEST(SimParticleMesh, LinearGrowthOnLargeScales) {
  // Fixed-amplitude initial conditions take the cosmic variance of the initial |delta_k| out, so
  // the few large-scale modes can be compared with D(1)^2 P_lin directly.
  const int np = 32, seeds = 8;
  const double box = 256.0, a_start = 1.0 / 20.0;
  ff::PmOptions opt;
  opt.steps = 10;
  for (auto grad : {ff::GradientKind::fd4}) {
    opt.gradient = grad;
    std::vector<double> mean;
    for (int s = 0; s < seeds; ++s) {
      auto p = ff::lpt_initial_conditions(cosmology(), linear_power(), np, box, 500 + s, a_start,
                                          ff::LptOrder::second, true);
      ff::Particles final_state;
      ff::evolve(cosmology(), p, {1.0}, opt, [&](int, const ff::Particles& q) { final_state = q; });
      const auto pk = painted_spectrum(final_state, np);
      if (mean.empty()) mean.assign(3, 0.0);
      for (size_t i = 0; i < 3; ++i) mean[i] += pk.pk[i] / seeds;
    }
    const auto expect = binned_linear_power(np, box, 3);
    for (size_t i = 0; i < 3; ++i) {
      std::printf("%s: bin %zu  P/(D^2 P_lin) = %.4f\n", ff::to_string(grad), i,
                  mean[i] / expect[i]);
      EXPECT_NEAR(mean[i] / expect[i], 1.0, 0.05) << ff::to_string(grad) << " bin " << i;
    }
  }
}

TEST(SimParticleMesh, DeterministicAndConserving) {
  const int np = 16;
  const double box = 64.0;
  ff::PmOptions opt;
  opt.steps = 5;
  auto run = [&](int threads) {
    const int old = omp_get_max_threads();
    omp_set_num_threads(threads);
    auto p = ff::lpt_initial_conditions(cosmology(), linear_power(), np, box, 3, 0.1);
    ff::Particles out;
    ff::evolve(cosmology(), p, {1.0}, opt, [&](int, const ff::Particles& q) { out = q; });
    omp_set_num_threads(old);
    return out;
  };
  const auto a = run(1), b = run(1), c = run(2), d = run(3);
  ASSERT_EQ(a.size(), size_t(np) * np * np);
  EXPECT_EQ(0, std::memcmp(a.position_mpch.data(), b.position_mpch.data(), a.size() * 24));
  EXPECT_EQ(0, std::memcmp(a.momentum.data(), b.momentum.data(), a.size() * 24));
  // Thread count: particles are painted in a fixed order (a stable sort into slabs, each thread
  // sorting its share), so even this is bit-identical.
  EXPECT_EQ(0, std::memcmp(a.position_mpch.data(), c.position_mpch.data(), a.size() * 24));
  EXPECT_EQ(0, std::memcmp(a.position_mpch.data(), d.position_mpch.data(), a.size() * 24));
  // Count and IDs conserved, all inside the box, and the painted mass is the particle count.
  std::vector<uint64_t> ids = a.ids;
  std::sort(ids.begin(), ids.end());
  for (size_t i = 0; i < ids.size(); ++i) ASSERT_EQ(ids[i], i + 1);
  for (const auto& x : a.position_mpch)
    for (double v : x) ASSERT_TRUE(v >= 0.0 && v < box);
  ff::ParticleMesh pm(2 * np, box, ff::GradientKind::fd4);
  const auto delta = pm.paint_delta(a.position_mpch);
  double sum = 0;
  for (float v : delta.values) sum += v;
  EXPECT_NEAR(sum / delta.size(), 0.0, 1e-6);
}

TEST(SimParticleMesh, NonGaussianAtTrainingResolution) {
  // The default set-up: 64^3 particles in 128 Mpc/h to z = 0, painted to 32^3 (4 Mpc/h cells).
  const int np = 64, grid = 32;
  const double box = 128.0;
  ff::PmOptions opt;
  opt.steps = 10;  // FastPM's factors: few steps suffice (the default is 20)
  auto p = ff::lpt_initial_conditions(cosmology(), linear_power(), np, box, 42, 0.05);
  ff::Particles z0;
  ff::evolve(cosmology(), p, {1.0}, opt, [&](int, const ff::Particles& q) { z0 = q; });
  ff::Painter painter(grid, box, ff::MassAssignment::cic);
  painter.add(z0.position_mpch);
  const auto delta = painter.delta();
  const double mean = delta.mean(), var = delta.variance(), sd = std::sqrt(var);
  double m3 = 0;
  for (double v : delta.values) m3 += std::pow(v - mean, 3);
  const double skew = m3 / delta.size() / (var * sd);
  // The one-point PDF against a Gaussian of the same mean and variance, in bins of half a sigma.
  std::printf("z = 0, 32^3 cells of 4 Mpc/h: sigma %.3f  skewness %.3f\n", sd, skew);
  std::printf("  (delta - mean)/sigma   P(cells)   P(Gaussian)   ratio\n");
  auto gauss_between = [](double lo, double hi) {
    return 0.5 * (std::erfc(lo / std::sqrt(2.0)) - std::erfc(hi / std::sqrt(2.0)));
  };
  double ratio_high = 0, ratio_low = 0;
  for (double lo = -2.0; lo < 5.0; lo += 0.5) {
    const double hi = lo + 0.5;
    size_t in = 0;
    for (double v : delta.values) in += (v - mean) >= lo * sd && (v - mean) < hi * sd;
    const double frac = double(in) / delta.size(), g = gauss_between(lo, hi);
    std::printf("  [%5.1f, %5.1f)        %.5f    %.5f      %.3g\n", lo, hi, frac, g, frac / g);
  }
  size_t above3 = 0, below = 0;
  for (double v : delta.values) {
    above3 += (v - mean) > 3 * sd;
    below += (v - mean) < -0.5 * sd;
  }
  ratio_high = double(above3) / delta.size() / gauss_between(3.0, 1e9);
  ratio_low = double(below) / delta.size() / gauss_between(-1e9, -0.5);
  std::printf("  P(> 3 sigma) / Gaussian = %.2f   P(< -0.5 sigma) / Gaussian = %.3f\n", ratio_high,
              ratio_low);
  EXPECT_GT(ratio_high, 5.0);  // a heavy overdense tail
  EXPECT_LT(ratio_low, 0.5);   // and no room below delta = -1 for the Gaussian's underdense tail
  double min_v = 1e9;
  for (double v : delta.values) min_v = std::min(min_v, v);
  EXPECT_GT(sd, 0.8);
  EXPECT_GT(skew, 1.5);
  EXPECT_GE(min_v, -1.0);
}

}  // namespace
