#pragma once
// Particle-mesh gravity and FastPM's kick-drift-kick integrator (Feng et al. 2016,
// arXiv:1603.00476).
//
// Forces: particles are CIC-painted onto a periodic force mesh of n_mesh^3 cells (n_mesh = B times
// the particle lattice), delta = rho / mean - 1 is transformed, psi_k = -delta_k / k^2 (exact k^2),
// and the "acceleration" a = -grad psi (lap psi = delta) is read back with CIC:
//   spectral: -grad psi from i k psi_k, three inverse FFTs (1 forward + 3 inverse per force);
//   fd4:      one inverse FFT of psi, then FastPM's 4-point central difference
//             (8 [psi(i+1) - psi(i-1)] - [psi(i+2) - psi(i-2)]) / (12 H) at the eight CIC nodes
//             (1 forward + 1 inverse per force).
// The mesh's nodes sit at (j + 1/2) H, so the unperturbed particle lattice (points i L / N_p) lies
// at cell centres and paints to a uniform mesh (no lattice comb to alias back onto the particles).
// The mesh is single precision (the force's own error, from CIC and the finite mesh, is far larger
// than float rounding). Painting sorts the particles (stably) into slabs of two x-planes and paints
// even slabs in parallel, then odd ones, each slab by one thread in particle order: no atomics, and
// the sums, hence the whole simulation, are bit-identical whatever the number of threads.
//
// Integrator, in the momentum p = a^3 E dx/da (comoving x in Mpc/h, H0 = 1):
//   kick   a_i -> a_f, force at a_c:  p += (G_f(a_f) - G_f(a_i)) / D1(a_c) * (-grad psi(a_c))
//   drift  a_i -> a_f, momentum at a_c: x += p (D1(a_f) - D1(a_i)) / G_f(a_c)
// with G_f = a^3 E dD1/da. Both are exact for linear growth whatever the step size (the force
// on a linear field is D1(a) times a constant field), hence few steps suffice on large scales.
// One KDK step a_i -> a_{i+1}: kick to a_half = (a_i + a_{i+1}) / 2 with the force at a_i, drift
// to a_{i+1} with p at a_half, new force at a_{i+1}, kick a_half -> a_{i+1}; the force is reused
// by the next step's first kick, so one force computation per step.
#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "fieldflow/core/fft.hpp"
#include "fieldflow/sim/cosmology.hpp"
#include "fieldflow/sim/initial_conditions.hpp"

namespace ff {

enum class GradientKind { spectral, fd4 };
GradientKind parse_gradient_kind(const std::string& text);  // "spectral", "fd4"
const char* to_string(GradientKind kind);

// Where the time of one force computation went (seconds, accumulated).
struct ForceTiming {
  double paint = 0, fft = 0, kernel = 0, readout = 0;
  long ffts = 0;   // transforms executed
  long calls = 0;  // force computations
  double total() const { return paint + fft + kernel + readout; }
};

class ParticleMesh {
 public:
  ParticleMesh(int n_mesh, double box_size_mpch, GradientKind gradient, int threads = 0,
               int compensation = 0);

  int n_mesh() const { return n_; }
  GradientKind gradient() const { return gradient_; }
  // FFTs one force computation executes.
  int ffts_per_force() const { return gradient_ == GradientKind::spectral ? 4 : 2; }

  // accel[i] = -grad psi at position i, lap psi = delta of the painted positions (mean density
  // n_particles / n_mesh^3 per cell).
  void accelerations(std::span<const std::array<double, 3>> positions_mpch,
                     std::span<std::array<double, 3>> accel);

  // The painted delta of the last accelerations() call is not kept; this paints on its own, for
  // tests (CIC, no window correction; node j at (j + 1/2) H).
  BasicGrid<float> paint_delta(std::span<const std::array<double, 3>> positions_mpch);

  const ForceTiming& timing() const { return timing_; }
  struct CicCell {
    int32_t i0[3];  // lower mesh node per axis
    float f[3];     // offset from it in cells, the upper node's weight
  };
  void reset_timing() { timing_ = {}; }
  RealFft3d<float>& fft() { return fft_; }  // for benchmarks timing bare transforms

 private:
  void paint(std::span<const std::array<double, 3>> positions_mpch);  // mass into fft_.real()

  int n_;
  double box_;
  GradientKind gradient_;
  int compensation_;
  RealFft3d<float> fft_;
  std::vector<CicCell> cells_;              // per particle, from the last paint
  std::vector<int> slab_of_;                // painting: slab of two x-planes per particle
  std::vector<size_t> slab_start_;          // first entry of each slab in sorted_cells_
  std::vector<CicCell> sorted_cells_;       // cells_ sorted (stably) by slab
  std::vector<size_t> slab_next_;           // painting's sort: per thread and slab
  std::vector<std::complex<float>> psi_k_;  // spectral: psi_k kept across the three inverses
  std::vector<float> green_;                // psi_k / delta_k per mode, for green_count_ particles
  long green_count_ = -1;
  ForceTiming timing_;
};

namespace detail {
// accel = -grad psi at each particle's CIC cell: FastPM's 4-point central difference of the
// potential psi (n^3 floats, node j at (j + 1/2) H, H = cell) at the eight CIC nodes. The fd4
// read-out of ParticleMesh::accelerations, compiled per SIMD target (sim/pm_kernels.cpp).
void fd4_readout(const float* psi, int n, double cell, std::span<const ParticleMesh::CicCell> cells,
                 std::span<std::array<double, 3>> accel);
}  // namespace detail

// The scale factors of the integration: `steps` steps spaced linearly in a from a_start to the
// last (smallest-z) output, with every output scale factor inserted as a step boundary.
std::vector<double> time_steps(double a_start, const std::vector<double>& output_a, int steps);

struct PmOptions {
  int mesh_factor = 2;  // B: force mesh = B x particle lattice per side
  GradientKind gradient = GradientKind::fd4;
  int steps = 20;
  int compensation =
      1;  // divide the Green's function by prod sinc^(2p): 0 none, 1 paint, 2 paint + read-out
};

// Advances particles (at particles.a) through time_steps(particles.a, output_a, steps), calling
// on_output(index, particles) at each output scale factor (ascending; positions and momenta both
// at that a). A non-null timing accumulates the force timing.
void evolve(const Cosmology& cosmology, Particles& particles, const std::vector<double>& output_a,
            const PmOptions& options, const std::function<void(int, const Particles&)>& on_output,
            ForceTiming* timing = nullptr);

}  // namespace ff
