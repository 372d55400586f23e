#include "fieldflow/io/grid_file.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/memory.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/io/hdf5.hpp"
#include "fieldflow/io/provenance.hpp"

namespace ff {

namespace {

constexpr const char* kDataset = "delta";

struct OpenGrid {
  h5::File file;
  h5::Dataset delta;
  GridFileInfo info;
};

OpenGrid open_grid_file(const std::string& path) {
  OpenGrid g;
  g.file = h5::File::open(path);
  const h5::Group& root = g.file.root();
  if (!root.has(kDataset)) throw Error(path, "no /delta dataset (not a fieldflow grid file?)");
  g.delta = root.open_dataset(kDataset);
  const std::vector<hsize_t> dims = g.delta.shape();
  auto shape_text = [&] {
    std::string s;
    for (size_t i = 0; i < dims.size(); ++i) s += (i ? "x" : "") + std::to_string(dims[i]);
    return s.empty() ? std::string("scalar") : s;
  };
  if (dims.size() != 3 && dims.size() != 4)
    throw Error(path, "/delta has shape " + shape_text() + ", expected [N,N,N] or [M,N,N,N]");
  const size_t off = dims.size() - 3;
  if (dims[off] != dims[off + 1] || dims[off] != dims[off + 2])
    throw Error(path, "/delta has shape " + shape_text() + ": the grid is not cubic");
  if (dims[off] == 0 || (off == 1 && dims[0] == 0))
    throw Error(path, "/delta has shape " + shape_text() + ": empty");
  if (dims[off] > 65536) throw Error(path, "/delta has shape " + shape_text() + ": too large");
  const std::string type = g.delta.type_name();
  if (type == "float32")
    g.info.precision = GridPrecision::float32;
  else if (type == "float64")
    g.info.precision = GridPrecision::float64;
  else
    throw Error(path, "/delta holds " + type + ", expected float32 or float64");
  g.delta.require_complete_storage();
  g.info.n = int(dims[off]);
  g.info.stacked = off == 1;
  g.info.count = g.info.stacked ? int(dims[0]) : 1;

  if (!root.has_attribute("box_size")) throw Error(path, "missing root attribute box_size (Mpc/h)");
  g.info.box_size_mpch = root.read_attribute<double>("box_size");
  if (!(g.info.box_size_mpch > 0) || !std::isfinite(g.info.box_size_mpch))
    throw Error(path, "box_size is " + format_number(g.info.box_size_mpch) +
                          ", expected a positive length in Mpc/h");
  // redshift is optional for files from other tools: 0 when absent.
  if (root.has_attribute("redshift")) {
    g.info.redshift = root.read_attribute<double>("redshift");
    if (!std::isfinite(g.info.redshift)) throw Error(path, "redshift is not a finite number");
  }
  return g;
}

// Count of non-finite values and the first one's flat index (SIZE_MAX when none).
template <typename T>
std::pair<size_t, size_t> scan_non_finite(const T* v, size_t n) {
  const T largest = std::numeric_limits<T>::max();
  // Branch-free count (vectorises): |x| <= max is false exactly for NaN and +-inf.
  size_t count = 0;
#pragma omp parallel for reduction(+ : count) schedule(static)
  for (size_t i = 0; i < n; ++i) count += std::abs(v[i]) <= largest ? 0 : 1;
  size_t first = std::numeric_limits<size_t>::max();
  if (count > 0)
    for (size_t i = 0; i < n && first == std::numeric_limits<size_t>::max(); ++i)
      if (!std::isfinite(v[i])) first = i;
  return {count, first};
}

template <typename T>
void check_finite(const std::string& path, const T* values, const GridFileInfo& info, int index) {
  const size_t n = size_t(info.n);
  const auto [count, first] = scan_non_finite(values, n * n * n);
  if (count == 0) return;
  const size_t i = first / (n * n), j = (first / n) % n, k = first % n;
  std::string where = info.stacked ? "/delta[" + std::to_string(index) + "]" : "/delta";
  throw Error(path, where + " has " + std::to_string(count) + " non-finite value" +
                        (count == 1 ? "" : "s") + ", the first at (" + std::to_string(i) + ", " +
                        std::to_string(j) + ", " + std::to_string(k) + ")");
}

template <typename T>
void read_member_into(const std::string& path, const OpenGrid& g, int index, T* values) {
  if (g.info.stacked)
    g.delta.read_rows(hsize_t(index), 1, values);
  else
    g.delta.read(values);
  check_finite(path, values, g.info, index);
}

// A header can claim any size (a small chunked file may declare a 65536^3 grid): refuse what the
// machine cannot hold before allocating it.
template <typename T>
void require_memory_for(const std::string& path, const GridFileInfo& info, int members) {
  const double n = double(info.n);
  require_memory(
      n * n * n * sizeof(T) * members, path,
      "reading " + std::to_string(members) + " grid(s) of " + std::to_string(info.n) + "^3");
}

template <typename T>
BasicGrid<T> read_member(const std::string& path, const OpenGrid& g, int index) {
  require_memory_for<T>(path, g.info, 1);
  BasicGrid<T> grid(g.info.n, g.info.box_size_mpch, g.info.redshift);
  read_member_into(path, g, index, grid.values.data());
  return grid;
}

void check_index(const std::string& path, const GridFileInfo& info, int index) {
  if (index < 0 || index >= info.count)
    throw Error(path, "index " + std::to_string(index) + " out of range: the file holds " +
                          std::to_string(info.count) + " field" + (info.count == 1 ? "" : "s"));
}

template <typename T>
void check_writable(const std::string& path, const BasicGrid<T>& grid, const BasicGrid<T>& first) {
  if (grid.n <= 0 || grid.values.size() != size_t(grid.n) * grid.n * grid.n)
    throw Error(path, "cannot write a grid whose values do not match n^3");
  if (!(grid.box_size_mpch > 0) || !std::isfinite(grid.box_size_mpch))
    throw Error(path, "cannot write a grid with box size " + format_number(grid.box_size_mpch));
  if (grid.n != first.n || grid.box_size_mpch != first.box_size_mpch ||
      grid.redshift != first.redshift)
    throw Error(path, "the grids of a stack must share n, box size and redshift");
  const auto [count, index] = scan_non_finite(grid.values.data(), grid.values.size());
  if (count > 0)
    throw Error(path, "refusing to write " + std::to_string(count) +
                          " non-finite values (first at flat index " + std::to_string(index) + ")");
}

template <typename T>
void write_grids(const std::string& path, const std::vector<const BasicGrid<T>*>& grids,
                 bool stacked, GridPrecision precision, const Provenance& provenance) {
  if (grids.empty()) throw Error(path, "no grids to write");
  for (const BasicGrid<T>* g : grids) check_writable(path, *g, *grids[0]);
  const hsize_t n = hsize_t(grids[0]->n);
  std::vector<hsize_t> shape{n, n, n};
  if (stacked) shape.insert(shape.begin(), hsize_t(grids.size()));

  AtomicFile out(path);
  {
    h5::File file = h5::File::create(out);
    h5::Dataset delta = file.root().create_dataset(
        kDataset,
        precision == GridPrecision::float64 ? h5::ElementType::float64 : h5::ElementType::float32,
        shape);
    if (stacked) {
      for (size_t m = 0; m < grids.size(); ++m) delta.write_rows(m, 1, grids[m]->values.data());
    } else {
      delta.write(grids[0]->values.data());
    }
    delta.close();
    file.root().write_attribute("box_size", grids[0]->box_size_mpch);
    file.root().write_attribute("redshift", grids[0]->redshift);
    write_provenance(file.root(), provenance);
    file.close();
  }
  out.commit();
}

}  // namespace

GridFileInfo inspect_grid_file(const std::string& path) {
  return open_grid_file(path).info;
}

template <typename T>
BasicGrid<T> read_grid_as(const std::string& path, int index) {
  const OpenGrid g = open_grid_file(path);
  check_index(path, g.info, index);
  return read_member<T>(path, g, index);
}

template <typename T>
GridFileInfo read_grid_into(const std::string& path, int index, int n, T* values) {
  const OpenGrid g = open_grid_file(path);
  check_index(path, g.info, index);
  if (g.info.n != n)
    throw Error(path, "holds a " + std::to_string(g.info.n) + "^3 grid, expected " +
                          std::to_string(n) + "^3");
  read_member_into(path, g, index, values);
  return g.info;
}

template <typename T>
std::vector<BasicGrid<T>> read_grid_stack_as(const std::string& path) {
  const OpenGrid g = open_grid_file(path);
  require_memory_for<T>(path, g.info, g.info.count);
  std::vector<BasicGrid<T>> grids;
  grids.reserve(size_t(g.info.count));
  for (int m = 0; m < g.info.count; ++m) grids.push_back(read_member<T>(path, g, m));
  return grids;
}

template <typename T>
void write_grid(const std::string& path, const BasicGrid<T>& grid, GridPrecision precision,
                const Provenance& provenance) {
  write_grids<T>(path, {&grid}, false, precision, provenance);
}

template <typename T>
void write_grid_stack(const std::string& path, const std::vector<BasicGrid<T>>& grids,
                      GridPrecision precision, const Provenance& provenance) {
  std::vector<const BasicGrid<T>*> pointers;
  for (const BasicGrid<T>& g : grids) pointers.push_back(&g);
  write_grids<T>(path, pointers, true, precision, provenance);
}

template BasicGrid<float> read_grid_as<float>(const std::string&, int);
template BasicGrid<double> read_grid_as<double>(const std::string&, int);
template GridFileInfo read_grid_into<float>(const std::string&, int, int, float*);
template GridFileInfo read_grid_into<double>(const std::string&, int, int, double*);
template std::vector<BasicGrid<float>> read_grid_stack_as<float>(const std::string&);
template std::vector<BasicGrid<double>> read_grid_stack_as<double>(const std::string&);
template void write_grid<float>(const std::string&, const BasicGrid<float>&, GridPrecision,
                                const Provenance&);
template void write_grid<double>(const std::string&, const BasicGrid<double>&, GridPrecision,
                                 const Provenance&);
template void write_grid_stack<float>(const std::string&, const std::vector<BasicGrid<float>>&,
                                      GridPrecision, const Provenance&);
template void write_grid_stack<double>(const std::string&, const std::vector<BasicGrid<double>>&,
                                       GridPrecision, const Provenance&);

}  // namespace ff
