#pragma once
// Grid files (HDF5), the format documented in the README:
//   /delta   float32 or float64, shape [N,N,N] (x, y, z row-major) or [M,N,N,N] for a stack of M
//   root attributes box_size (double, Mpc/h) and redshift (double), and the provenance strings
//   (fieldflow_version, git_commit, settings; io/provenance.hpp).
// Readers validate and name the file in every error (missing dataset, non-cubic shape,
// non-finite value, box_size <= 0). Values convert to the requested type on read.
#include <string>
#include <vector>

#include "fieldflow/core/grid.hpp"
#include "fieldflow/core/provenance.hpp"

namespace ff {

enum class GridPrecision { float32, float64 };

struct GridFileInfo {
  int n = 0;      // grid points per side
  int count = 1;  // fields in the file (M for a stack, 1 otherwise)
  bool stacked = false;
  double box_size_mpch = 0.0;
  double redshift = 0.0;
  GridPrecision precision = GridPrecision::float32;
};

GridFileInfo inspect_grid_file(const std::string& path);

// One field; index selects a member of a stack.
template <typename T>
BasicGrid<T> read_grid_as(const std::string& path, int index = 0);
inline Grid read_grid(const std::string& path, int index = 0) {
  return read_grid_as<double>(path, index);
}
// One field straight into a caller's array of n^3 values (e.g. an FFT buffer), validated like
// read_grid_as; a file whose grid is not n^3 is refused. Returns the file's description.
template <typename T>
GridFileInfo read_grid_into(const std::string& path, int index, int n, T* values);
template <typename T>
std::vector<BasicGrid<T>> read_grid_stack_as(const std::string& path);
inline std::vector<Grid> read_grid_stack(const std::string& path) {
  return read_grid_stack_as<double>(path);
}

// Writes atomically; all grids of a stack must share n, box size and redshift. The provenance
// (io/provenance.hpp) becomes root attributes: pass the settings that made the grids.
template <typename T>
void write_grid(const std::string& path, const BasicGrid<T>& grid,
                GridPrecision precision = GridPrecision::float32,
                const Provenance& provenance = ff::provenance());
template <typename T>
void write_grid_stack(const std::string& path, const std::vector<BasicGrid<T>>& grids,
                      GridPrecision precision = GridPrecision::float32,
                      const Provenance& provenance = ff::provenance());

}  // namespace ff
