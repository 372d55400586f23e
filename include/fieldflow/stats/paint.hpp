#pragma once
// Mass assignment of particles onto a periodic N^3 grid (NGP, CIC, TSC), as in Pylians3 and
// nbodykit: grid point (i, j, k) sits at (i, j, k) * L / N. Optional interlacing (Sefusatti et al.
// 2016): a second mesh shifted by half a cell, combined with the first in Fourier space.
//
// Threads never write the same cell at the same time (no atomics): each add() sorts its particles
// into x-planes (a stable counting sort) and paints fixed groups of planes, even groups then odd
// groups. The groups depend on N only, so the summation order into every cell, and hence the
// result, is the same bit for bit whatever the thread count.
#include <array>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fieldflow/core/grid.hpp"

namespace ff {

enum class MassAssignment { none, ngp, cic, tsc };
// "none", "ngp", "cic", "tsc" (case-insensitive); anything else is an Error naming the text.
MassAssignment parse_mass_assignment(const std::string& text);
const char* to_string(MassAssignment mas);
int window_order(MassAssignment mas);  // p in sinc^p: 0, 1, 2, 3
// Per FFT index i of an axis of n points, the factor 1 / sinc(pi w / n)^p (w the signed wavenumber
// of i) that divides the mass-assignment window out of a Fourier mode: the product over the three
// axes compensates the mode (Pylians3's MAS correction). All ones for MassAssignment::none.
std::vector<double> window_compensation(int n, MassAssignment mas);

// The same for any power: entry i is 1 / sinc(pi w / n)^power, w = fft_wavenumber(i, n) (1 at
// w = 0). window_compensation is power = p; a particle-mesh force that paints and reads out with
// CIC undoes W twice (power 2 x its compensation order).
std::vector<double> inverse_window_per_axis(int n, int power);

// Paints groups of consecutive planes from all threads without two threads writing one plane at
// once and without atomics: even groups concurrently, then odd ones, each group by one thread in
// its own order (so the sums do not depend on the thread count). A group may write into the
// first planes of the next group, never further. With an odd count the last group (whose writes
// wrap onto group 0) is painted alone at the end. Call from every thread of an enclosing
// `#pragma omp parallel` (or from serial code); paint_group(g) paints group g.
template <typename PaintGroup>
void paint_groups_by_parity(int groups, PaintGroup&& paint_group) {
  const int paired = groups % 2 == 0 ? groups : groups - 1;
  for (int parity = 0; parity < 2; ++parity) {
#pragma omp for schedule(dynamic, 1)
    for (int g = parity; g < paired; g += 2) paint_group(g);
  }
  if (paired != groups) {
#pragma omp single
    paint_group(groups - 1);
  }
}

class Painter {
 public:
  // Particles per add() worth feeding: each add() sweeps the whole mesh once, so denser batches
  // paint faster (4M particles: ~100 MB of scratch here plus the caller's buffer).
  static constexpr size_t preferred_chunk = size_t(1) << 22;

  // n >= 1 (even when interlaced: the combination goes through an FFT); mas ngp, cic or tsc.
  Painter(int n, double box_size_mpch, MassAssignment mas, bool interlaced = false);
  // Adds unit-mass particles (positions in Mpc/h, any finite values: wrapped periodically).
  void add(std::span<const std::array<double, 3>> positions_mpch);
  size_t particle_count() const { return count_; }
  // Mass (particle count) per grid point, of the unshifted mesh.
  const Grid& mass() const { return mesh_; }
  // delta = rho / mean(rho) - 1 of everything added so far (interlaced: the combined field).
  Grid delta() const;
  // The same, converting the mesh in place instead of allocating a second grid; the painter is
  // left empty (no particles, no mesh) and must not be used afterwards.
  Grid release_delta();

 private:
  void paint_into(Grid& mesh, std::span<const std::array<double, 3>> positions_mpch,
                  double shift_cells);

  int n_;
  double box_size_mpch_;
  MassAssignment mas_;
  bool interlaced_;
  size_t count_ = 0;
  Grid mesh_;          // mass on the grid
  Grid shifted_mesh_;  // mass on the half-cell-shifted grid (interlacing only)
  // Scratch reused between add() calls: positions in cell units, sorted by first x-plane.
  // Allocated without zero-filling, so that its first touch happens in the parallel loops.
  std::unique_ptr<std::array<double, 3>[]> sorted_;
  std::unique_ptr<int[]> plane_of_;
  size_t scratch_capacity_ = 0;
  std::vector<size_t> plane_start_;
};

}  // namespace ff
