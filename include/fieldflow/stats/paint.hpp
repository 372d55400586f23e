#pragma once
// Mass assignment of particles onto a periodic N^3 grid (NGP, CIC, TSC), as in Pylians3 and
// nbodykit: grid point (i, j, k) sits at (i, j, k) * L / N. Optional interlacing (Sefusatti et al.
// 2016): a second mesh shifted by half a cell, combined with the first in Fourier space.
#include <array>
#include <span>
#include <string>

#include "fieldflow/core/grid.hpp"

namespace ff {

enum class MassAssignment { none, ngp, cic, tsc };
// "none", "ngp", "cic", "tsc" (case-insensitive); anything else is an Error naming the text.
MassAssignment parse_mass_assignment(const std::string& text);
const char* to_string(MassAssignment mas);
int window_order(MassAssignment mas);  // p in sinc^p: 0, 1, 2, 3

class Painter {
 public:
  Painter(int n, double box_size_mpch, MassAssignment mas, bool interlaced = false);
  // Adds unit-mass particles (positions in Mpc/h, any real values: wrapped periodically).
  void add(std::span<const std::array<double, 3>> positions_mpch);
  size_t particle_count() const { return count_; }
  // delta = rho / mean(rho) - 1 of everything added so far.
  Grid delta() const;

 private:
  int n_;
  double box_size_mpch_;
  MassAssignment mas_;
  bool interlaced_;
  size_t count_ = 0;
  Grid mesh_;          // mass on the grid
  Grid shifted_mesh_;  // mass on the half-cell-shifted grid (interlacing only)
};

}  // namespace ff
