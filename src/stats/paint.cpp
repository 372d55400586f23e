#include "fieldflow/stats/paint.hpp"

#include <omp.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <complex>
#include <cstdint>
#include <numbers>
#ifdef __linux__
#endif

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/memory.hpp"
#include "fieldflow/core/periodic.hpp"

namespace ff {

MassAssignment parse_mass_assignment(const std::string& text) {
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return char(std::tolower(c)); });
  if (lower == "none") return MassAssignment::none;
  if (lower == "ngp") return MassAssignment::ngp;
  if (lower == "cic") return MassAssignment::cic;
  if (lower == "tsc") return MassAssignment::tsc;
  throw Error("mass assignment \"" + text + "\"",
              "unknown scheme (expected none, ngp, cic or tsc)");
}

const char* to_string(MassAssignment mas) {
  switch (mas) {
    case MassAssignment::ngp:
      return "ngp";
    case MassAssignment::cic:
      return "cic";
    case MassAssignment::tsc:
      return "tsc";
    default:
      return "none";
  }
}

std::vector<double> inverse_window_per_axis(int n, int power) {
  std::vector<double> inverse(size_t(std::max(n, 0)));
  for (int i = 0; i < n; ++i) {
    const double x = std::numbers::pi * fft_wavenumber(i, n) / n;
    inverse[size_t(i)] = x == 0.0 ? 1.0 : 1.0 / std::pow(std::sin(x) / x, power);
  }
  return inverse;
}

int window_order(MassAssignment mas) {
  switch (mas) {
    case MassAssignment::ngp:
      return 1;
    case MassAssignment::cic:
      return 2;
    case MassAssignment::tsc:
      return 3;
    default:
      return 0;
  }
}

std::vector<double> window_compensation(int n, MassAssignment mas) {
  return inverse_window_per_axis(n, window_order(mas));
}

namespace {

// Each kernel takes a coordinate u in cell units (grid point i at u = i), fills the weights of the
// `support` grid points it touches and returns the first of them (before periodic wrapping).
struct NgpKernel {
  static constexpr int support = 1;
  static int weights(double u, double* w) {
    w[0] = 1.0;
    return int(std::floor(u + 0.5));
  }
};
struct CicKernel {
  static constexpr int support = 2;
  static int weights(double u, double* w) {
    const double left = std::floor(u);
    const double d = u - left;  // distance to the left point, [0, 1)
    w[0] = 1.0 - d;
    w[1] = d;
    return int(left);
  }
};
struct TscKernel {
  static constexpr int support = 3;
  static int weights(double u, double* w) {
    const double nearest = std::floor(u + 0.5);
    const double d = u - nearest;  // [-1/2, 1/2)
    w[0] = 0.5 * (0.5 - d) * (0.5 - d);
    w[1] = 0.75 - d * d;
    w[2] = 0.5 * (0.5 + d) * (0.5 + d);
    return int(nearest) - 1;
  }
};

// A zero grid whose storage is advised for huge pages before the vector zero-fills it.
Grid zeroed_grid(int n, double box_size_mpch) {
  Grid g;
  g.n = n;
  g.box_size_mpch = box_size_mpch;
  const size_t cells = size_t(n) * n * n;
  g.values.reserve(cells);
  advise_huge_pages(g.values.data(), cells * sizeof(double));
  g.values.resize(cells);
  return g;
}

// Position (Mpc/h, any finite value) to cell units wrapped into [0, n).
inline double to_cell_units(double x, double inv_cell, double shift, int n) {
  return wrap_periodic(x * inv_cell + shift, double(n));
}

// Groups of consecutive x-planes painted concurrently: an even number of groups, each at least 4
// planes wide (> support - 1), so groups of equal parity never write the same plane. Depends on n
// only, which keeps the summation order independent of the thread count.
int plane_group_count(int n) {
  if (n < 8) return 1;
  return std::min(n / 4, 256) & ~1;
}

template <typename Kernel>
void paint_sorted(double* mesh, int n, const std::array<double, 3>* sorted,
                  const std::vector<size_t>& plane_start) {
  constexpr int S = Kernel::support;
  const size_t plane_size = size_t(n) * n;
  const int groups = plane_group_count(n);
#pragma omp parallel
  {
    // Within a plane the particles are sorted again, by first y-row (a stable counting sort in
    // cache), so consecutive particles hit the same few rows: the mesh stays in L1/L2.
    std::vector<std::array<double, 3>> by_row;
    std::vector<int> row_of;
    std::vector<size_t> row_start(size_t(n) + 1);
    paint_groups_by_parity(groups, [&](int g) {
      const int first_plane = int(int64_t(n) * g / groups);
      const int end_plane = int(int64_t(n) * (g + 1) / groups);
      for (int p = first_plane; p < end_plane; ++p) {
        const size_t begin = plane_start[p], count = plane_start[p + 1] - begin;
        by_row.resize(count);
        row_of.resize(count);
        std::fill(row_start.begin(), row_start.end(), 0);
        double w[S];
        for (size_t q = 0; q < count; ++q) {
          row_of[q] = wrap_index(Kernel::weights(sorted[begin + q][1], w), n);
          ++row_start[row_of[q] + 1];
        }
        for (int r = 0; r < n; ++r) row_start[r + 1] += row_start[r];
        for (size_t q = 0; q < count; ++q) by_row[row_start[row_of[q]]++] = sorted[begin + q];

        // Rows come in order: prefetch the rows S ahead in the S planes while painting this
        // one (random z within a row defeats the hardware prefetcher).
        for (int r = 0; r < n; ++r) {
          const int ahead = wrap_index(r + S, n);
          for (int sx = 0; sx < S; ++sx) {
            const char* next = reinterpret_cast<const char*>(
                mesh + size_t(wrap_index(p + sx, n)) * plane_size + size_t(ahead) * n);
            for (size_t b = 0; b < size_t(n) * sizeof(double); b += 64)
              __builtin_prefetch(next + b, 1, 3);
          }
          for (size_t q = r == 0 ? 0 : row_start[r - 1]; q < row_start[r]; ++q) {
            const auto& u = by_row[q];
            double wx[S], wy[S], wz[S];
            int ix[S], iy[S], iz[S];
            Kernel::weights(u[0], wx);
            const int y0 = Kernel::weights(u[1], wy);
            const int z0 = Kernel::weights(u[2], wz);
            for (int s = 0; s < S; ++s) {
              ix[s] = wrap_index(p + s, n);
              iy[s] = wrap_index(y0 + s, n);
              iz[s] = wrap_index(z0 + s, n);
            }
            for (int sx = 0; sx < S; ++sx) {
              double* slab = mesh + size_t(ix[sx]) * plane_size;
              for (int sy = 0; sy < S; ++sy) {
                double* row = slab + size_t(iy[sy]) * n;
                const double wxy = wx[sx] * wy[sy];
                for (int sz = 0; sz < S; ++sz) row[iz[sz]] += wxy * wz[sz];
              }
            }
          }
        }
      }
    });
  }
}

// Stable counting sort by first x-plane: thread t histograms, then scatters, its contiguous range
// of particles, so the sorted order does not depend on the thread count. Returns false if a
// position is not finite.
template <typename Kernel>
bool sort_by_plane(std::span<const std::array<double, 3>> positions, double inv_cell,
                   double shift_cells, int n, std::array<double, 3>* sorted, int* plane_of,
                   std::vector<size_t>& plane_start) {
  const size_t m = positions.size();
  plane_start.assign(size_t(n) + 1, 0);
  std::vector<size_t> counts(size_t(omp_get_max_threads()) * n, 0);
  bool all_finite = true;
#pragma omp parallel reduction(&& : all_finite)
  {
    const int threads = omp_get_num_threads(), t = omp_get_thread_num();
    const size_t begin = m * t / threads, end = m * (t + 1) / threads;
    size_t* hist = counts.data() + size_t(t) * n;
    double w[Kernel::support];
    for (size_t i = begin; i < end; ++i) {
      const auto& x = positions[i];
      if (!std::isfinite(x[0]) || !std::isfinite(x[1]) || !std::isfinite(x[2])) {
        all_finite = false;
        plane_of[i] = -1;  // not counted: the scatter below must skip it too
        continue;
      }
      const double u = to_cell_units(x[0], inv_cell, shift_cells, n);
      const int p = wrap_index(Kernel::weights(u, w), n);
      plane_of[i] = p;
      ++hist[p];
    }
#pragma omp barrier
#pragma omp single
    {
      size_t running = 0;
      for (int p = 0; p < n; ++p) {
        plane_start[p] = running;
        for (int s = 0; s < threads; ++s) {
          const size_t c = counts[size_t(s) * n + p];
          counts[size_t(s) * n + p] = running;
          running += c;
        }
      }
      plane_start[n] = running;
    }
    for (size_t i = begin; i < end; ++i) {
      const auto& x = positions[i];
      if (plane_of[i] < 0) continue;
      sorted[hist[plane_of[i]]++] = {to_cell_units(x[0], inv_cell, shift_cells, n),
                                     to_cell_units(x[1], inv_cell, shift_cells, n),
                                     to_cell_units(x[2], inv_cell, shift_cells, n)};
    }
  }
  return all_finite;
}

template <typename Kernel>
void sort_and_paint(double* mesh, int n, std::span<const std::array<double, 3>> positions,
                    double inv_cell, double shift_cells, std::array<double, 3>* sorted,
                    int* plane_of, std::vector<size_t>& plane_start) {
  if (!sort_by_plane<Kernel>(positions, inv_cell, shift_cells, n, sorted, plane_of, plane_start))
    throw Error("paint", "a particle position is not finite (NaN or infinity)");
  paint_sorted<Kernel>(mesh, n, sorted, plane_start);
}

}  // namespace

Painter::Painter(int n, double box_size_mpch, MassAssignment mas, bool interlaced)
    : n_(n), box_size_mpch_(box_size_mpch), mas_(mas), interlaced_(interlaced) {
  if (n < 1 || n > 4096)
    throw Error("paint", "grid size must be in [1, 4096], got " + std::to_string(n));
  if (!(box_size_mpch > 0.0) || !std::isfinite(box_size_mpch))
    throw Error("paint",
                "box size must be positive and finite, got " + std::to_string(box_size_mpch));
  if (mas == MassAssignment::none) throw Error("paint", "mass assignment must be ngp, cic or tsc");
  if (interlaced && n % 2 != 0)
    throw Error("paint", "interlacing needs an even grid size, got " + std::to_string(n));
  mesh_ = zeroed_grid(n, box_size_mpch);
  if (interlaced) shifted_mesh_ = zeroed_grid(n, box_size_mpch);
}

void Painter::add(std::span<const std::array<double, 3>> positions_mpch) {
  if (mesh_.values.empty()) throw Error("paint", "the mesh was already released (release_delta)");
  paint_into(mesh_, positions_mpch, 0.0);
  // The second mesh's points sit half a cell further along each axis, i.e. at (i + 1/2) H:
  // equivalently, the particles move by +H/2 onto the ordinary grid.
  if (interlaced_) paint_into(shifted_mesh_, positions_mpch, 0.5);
  count_ += positions_mpch.size();
}

void Painter::paint_into(Grid& mesh, std::span<const std::array<double, 3>> positions,
                         double shift_cells) {
  if (positions.empty()) return;
  if (positions.size() > scratch_capacity_) {
    const size_t m = positions.size();
    sorted_.reset(new std::array<double, 3>[m]);  // (new T[m], not make_unique: no zero fill)
    plane_of_.reset(new int[m]);
    advise_huge_pages(sorted_.get(), m * sizeof(std::array<double, 3>));
    scratch_capacity_ = m;
  }
  const double inv_cell = n_ / box_size_mpch_;
  double* m = mesh.values.data();
  switch (mas_) {
    case MassAssignment::ngp:
      sort_and_paint<NgpKernel>(m, n_, positions, inv_cell, shift_cells, sorted_.get(),
                                plane_of_.get(), plane_start_);
      break;
    case MassAssignment::cic:
      sort_and_paint<CicKernel>(m, n_, positions, inv_cell, shift_cells, sorted_.get(),
                                plane_of_.get(), plane_start_);
      break;
    default:
      sort_and_paint<TscKernel>(m, n_, positions, inv_cell, shift_cells, sorted_.get(),
                                plane_of_.get(), plane_start_);
      break;
  }
}

Grid Painter::release_delta() {
  if (interlaced_) return delta();
  if (count_ == 0) throw Error("paint", "no particles were painted");
  const double inv_mean = double(mesh_.size()) / double(count_);
  Grid out = std::move(mesh_);
  const size_t cells = out.size();
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < cells; ++i) out.values[i] = out.values[i] * inv_mean - 1.0;
  mesh_ = Grid();
  count_ = 0;
  return out;
}

Grid Painter::delta() const {
  if (count_ == 0) throw Error("paint", "no particles were painted");
  const int n = n_;
  const size_t cells = mesh_.size();
  const double inv_mean = double(cells) / double(count_);
  Grid out(n, box_size_mpch_);
  if (!interlaced_) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < cells; ++i) out.values[i] = mesh_.values[i] * inv_mean - 1.0;
    return out;
  }
  // Interlacing: the shifted mesh samples the field at x - H/2 (particles moved by +H/2), so its
  // transform carries a phase exp(-i k.(H/2)(1,1,1)); undo it, average, transform back.
  RealFft3d<double> plain(n), shifted(n);
  plain.forward(mesh_.values.data());
  shifted.forward(shifted_mesh_.values.data());
  std::vector<std::complex<double>> phase(n);  // exp(i pi n_i / N) per axis
  for (int i = 0; i < n; ++i)
    phase[i] = std::polar(1.0, std::numbers::pi * fft_wavenumber(i, n) / n);
  const int nc = n / 2 + 1;
  std::complex<double>* a = plain.complex();
  const std::complex<double>* b = shifted.complex();
#pragma omp parallel for schedule(static)
  for (int ia = 0; ia < n; ++ia)
    for (int ib = 0; ib < n; ++ib) {
      const std::complex<double> pab = phase[ia] * phase[ib];
      const size_t row = (size_t(ia) * n + ib) * nc;
      for (int ic = 0; ic < nc; ++ic)
        a[row + ic] = 0.5 * (a[row + ic] + pab * phase[ic] * b[row + ic]);
    }
  plain.inverse();
  const double scale = inv_mean / double(cells);  // c2r is unnormalised
  const double* r = plain.real();
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < cells; ++i) out.values[i] = r[i] * scale - 1.0;
  return out;
}

}  // namespace ff
