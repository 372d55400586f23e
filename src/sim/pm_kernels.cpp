// The particle-mesh read-out (include/fieldflow/sim/particle_mesh.hpp, detail). Compiled once
// per Highway target (foreach_target.h) and dispatched at run time (core/simd.hpp): the same plain
// loop, but built with the target's FMAs and vector width rather than the portable baseline's SSE2.
#include "fieldflow/sim/particle_mesh.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "sim/pm_kernels.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#include <cstring>

#include "fieldflow/core/periodic.hpp"
#include "fieldflow/core/simd.hpp"

HWY_BEFORE_NAMESPACE();
namespace ff {
namespace HWY_NAMESPACE {

// -grad psi at the particles: FastPM's 4-point central difference evaluated at the eight
// CIC nodes of each particle, straight from psi (8 MB of floats stays in cache far better
// than a precomputed three-component gradient mesh would). The CIC-weighted differences are
// one separable sum over the points i-2 .. i+3 of each axis: along the differentiated axis
// the weights of the difference at the two nodes combined, along the others the two CIC
// weights. So each component reads whole z-rows: the four rows through the CIC nodes
// (six values each, for the z difference) and, for x and y, four more rows on each side (two
// values each), twenty rows in all instead of 72 scattered values; the sums run as short
// vectors.
void Fd4Readout(const float* psi, int n, double cell, std::span<const ParticleMesh::CicCell> cells,
                std::span<std::array<double, 3>> accel) {
  const double fd = 1.0 / (12.0 * cell);
  const size_t plane = size_t(n) * n;
#pragma omp parallel for schedule(static)
  for (long p = 0; p < long(cells.size()); ++p) {
    const ParticleMesh::CicCell& c = cells[p];
    // Single precision like the mesh itself: the stencil's rounding is far below the force error.
    float w[3][2], diff[3][6];
    for (int d = 0; d < 3; ++d) {
      const float f = c.f[d], w0 = 1.0f - f;
      w[d][0] = w0;
      w[d][1] = f;
      // sum_s w_s (8 (v[3+s] - v[1+s]) - (v[4+s] - v[s])) as coefficients of v[0..5].
      diff[d][0] = w0;
      diff[d][1] = f - 8.0f * w0;
      diff[d][2] = -8.0f * f;
      diff[d][3] = 8.0f * w0;
      diff[d][4] = 8.0f * f - w0;
      diff[d][5] = -f;
    }
    size_t x_off[6], y_off[6];  // wrapped i-2 .. i+3 along x and y, as offsets into psi
    for (int t = 0; t < 6; ++t) {
      x_off[t] = size_t(wrap_index_near(c.i0[0] + t - 2, n)) * plane;
      y_off[t] = size_t(wrap_index_near(c.i0[1] + t - 2, n)) * n;
    }
    const int z = c.i0[2];
    const int z1 = wrap_index_near(z + 1, n);
    // gx, gy: the x and y sums at the two z nodes; gz: the z sum along the z points z-2 .. z+3.
    float gx[2] = {0, 0}, gy[2] = {0, 0}, gz[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    // The four rows through the CIC nodes: all three components.
    const bool z_inside = z >= 2 && z + 6 <= n;  // z-2 .. z+5 without wrapping
    for (int a = 0; a < 2; ++a)
      for (int b = 0; b < 2; ++b) {
        const float* row = psi + x_off[2 + a] + y_off[2 + b];
        float v[8];
        if (z_inside) {
          std::memcpy(v, row + z - 2, sizeof v);
        } else {
          for (int t = 0; t < 6; ++t) v[t] = row[wrap_index_near(z + t - 2, n)];
          v[6] = v[7] = 0.0f;
        }
        const float wxy = w[0][a] * w[1][b], dx = diff[0][2 + a] * w[1][b],
                    dy = w[0][a] * diff[1][2 + b];
        for (int l = 0; l < 8; ++l) gz[l] += wxy * v[l];
        for (int e = 0; e < 2; ++e) {
          gx[e] += dx * v[2 + e];
          gy[e] += dy * v[2 + e];
        }
      }
    // The rows two and one cells before the nodes and one and two after them: x or y only.
    for (int t : {0, 1, 4, 5})
      for (int s = 0; s < 2; ++s) {
        const float* row_x = psi + x_off[t] + y_off[2 + s];
        const float* row_y = psi + x_off[2 + s] + y_off[t];
        const float dx = diff[0][t] * w[1][s], dy = w[0][s] * diff[1][t];
        gx[0] += dx * row_x[z];
        gx[1] += dx * row_x[z1];
        gy[0] += dy * row_y[z];
        gy[1] += dy * row_y[z1];
      }
    float sz = 0.0f;
    for (int t = 0; t < 6; ++t) sz += diff[2][t] * gz[t];
    const float sx = w[2][0] * gx[0] + w[2][1] * gx[1];
    const float sy = w[2][0] * gy[0] + w[2][1] * gy[1];
    accel[p] = {-sx * fd, -sy * fd, -sz * fd};
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace ff
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ff {
HWY_EXPORT(Fd4Readout);

namespace detail {
void fd4_readout(const float* psi, int n, double cell, std::span<const ParticleMesh::CicCell> cells,
                 std::span<std::array<double, 3>> accel) {
  apply_simd_target_from_environment();
  HWY_DYNAMIC_DISPATCH(Fd4Readout)(psi, n, cell, cells, accel);
}
}  // namespace detail
}  // namespace ff
#endif  // HWY_ONCE
