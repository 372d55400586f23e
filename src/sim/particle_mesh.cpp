#include "fieldflow/sim/particle_mesh.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/periodic.hpp"
#include "fieldflow/stats/paint.hpp"

namespace ff {

GradientKind parse_gradient_kind(const std::string& text) {
  if (text == "spectral") return GradientKind::spectral;
  if (text == "fd4") return GradientKind::fd4;
  throw Error("gradient", "expected spectral or fd4, got \"" + text + "\"");
}

const char* to_string(GradientKind kind) {
  return kind == GradientKind::spectral ? "spectral" : "fd4";
}

namespace {
struct Cic {
  int i0[3], i1[3];
  double w0[3], w1[3];
};

// The force mesh's nodes sit at (j + 1/2) H, half a cell off the box's grid: the particle lattice
// (at multiples of B H) then lies at cell centres, each unperturbed particle shares its mass
// equally between nodes, the lattice is uniform on the mesh and a small displacement deposits a
// dipole centred on the particle. With nodes on the lattice instead, CIC turns a displacement into
// a one-sided difference (a half-cell phase error, ~ k H / 2) and the lattice's comb sits at the
// mesh Nyquist frequency, whose sidebands alias back onto the particles.
inline Cic cic_of(const std::array<double, 3>& x, double inv_cell, int n) {
  Cic c;
  for (int d = 0; d < 3; ++d) {
    const double u = x[d] * inv_cell - 0.5;
    const double fl = std::floor(u);
    const double f = u - fl;
    // Positions are kept in [0, L), so fl is in [-1, n - 1]; anything else is wrapped the slow way.
    const int i = wrap_index(int(fl), n);
    c.i0[d] = i;
    c.i1[d] = wrap_index_near(i + 1, n);
    c.w0[d] = 1.0 - f;
    c.w1[d] = f;
  }
  return c;
}

inline Cic expand(const ParticleMesh::CicCell& c, int n) {
  Cic e;
  for (int d = 0; d < 3; ++d) {
    e.i0[d] = c.i0[d];
    e.i1[d] = wrap_index_near(c.i0[d] + 1, n);
    e.w0[d] = 1.0 - double(c.f[d]);
    e.w1[d] = double(c.f[d]);
  }
  return e;
}

double seconds_since(double t0) {
  return omp_get_wtime() - t0;
}
}  // namespace

ParticleMesh::ParticleMesh(int n_mesh, double box, GradientKind gradient, int threads,
                           int compensation)
    : n_(n_mesh),
      box_(box),
      gradient_(gradient),
      compensation_(compensation),
      fft_(n_mesh, threads) {
  if (!(box > 0.0)) throw Error("particle mesh", "box size must be positive");
  if (n_mesh < 4) throw Error("particle mesh", "the force mesh needs at least 4 points per side");
  if (gradient_ == GradientKind::spectral) psi_k_.resize(fft_.complex_size());
}

// Leaves the painted mass (particles per cell) in fft_.real(); delta = mass * n^3 / N - 1, whose
// scale accelerations() folds into the Green's function (the -1 only touches k = 0).
void ParticleMesh::paint(std::span<const std::array<double, 3>> pos) {
  const int n = n_;
  const double inv_cell = n / box_;
  const size_t count = pos.size();
  // Bucket the particles by slabs of two x-planes (stable counting sort). A particle of slab s
  // writes planes 2s, 2s+1, 2s+2 only, so all even slabs can paint at once without conflicts,
  // then all odd ones; each slab is painted by one thread in particle order, so the float sums
  // are the same whatever the number of threads. The sort runs in parallel too (serial, it was
  // a third of the painting at 2 threads): each thread counts its own contiguous share of the
  // particles per slab, and places them after the shares of the threads before it, so the
  // order is that of a serial stable sort.
  const int slabs = n / 2;
  slab_of_.resize(count);
  cells_.resize(count);  // the CIC cell and offsets of every particle, for painting and read-out
  sorted_cells_.resize(count);  // the cells themselves, not indices: painting reads them in order
  slab_start_.assign(size_t(slabs) + 1, 0);
  const int max_threads = omp_get_max_threads();
  slab_next_.assign(size_t(max_threads) * slabs, 0);  // per thread: counts, then next slots
#pragma omp parallel
  {
    const int t = omp_get_thread_num(), threads = omp_get_num_threads();
    const size_t begin = count * t / threads, end = count * (t + 1) / threads;
    size_t* next = slab_next_.data() + size_t(t) * slabs;
    for (size_t p = begin; p < end; ++p) {
      const Cic c = cic_of(pos[p], inv_cell, n);
      cells_[p] = {{c.i0[0], c.i0[1], c.i0[2]}, {float(c.w1[0]), float(c.w1[1]), float(c.w1[2])}};
      slab_of_[p] = c.i0[0] / 2;
      ++next[slab_of_[p]];
    }
#pragma omp barrier
#pragma omp single
    for (int s = 0; s < slabs; ++s) {
      size_t start = slab_start_[s];
      for (int u = 0; u < threads; ++u) {
        size_t& slot = slab_next_[size_t(u) * slabs + s];
        const size_t counted = slot;
        slot = start;
        start += counted;
      }
      slab_start_[s + 1] = start;
    }
    for (size_t p = begin; p < end; ++p) sorted_cells_[next[slab_of_[p]]++] = cells_[p];
  }
  float* m = fft_.real();
  const size_t size = fft_.real_size();
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < size; ++i) m[i] = 0.0f;
  auto paint_slab = [&](int s) {
    for (size_t o = slab_start_[s]; o < slab_start_[s + 1]; ++o) {
      const Cic c = expand(sorted_cells_[o], n);
      for (int a = 0; a < 2; ++a) {
        const size_t ia = size_t(a ? c.i1[0] : c.i0[0]) * n;
        const double wa = a ? c.w1[0] : c.w0[0];
        for (int b = 0; b < 2; ++b) {
          const size_t row = (ia + (b ? c.i1[1] : c.i0[1])) * n;
          const double wab = wa * (b ? c.w1[1] : c.w0[1]);
          m[row + c.i0[2]] += float(wab * c.w0[2]);
          m[row + c.i1[2]] += float(wab * c.w1[2]);
        }
      }
    }
  };
#pragma omp parallel
  paint_groups_by_parity(slabs, paint_slab);
}

BasicGrid<float> ParticleMesh::paint_delta(std::span<const std::array<double, 3>> pos) {
  paint(pos);
  BasicGrid<float> g(n_, box_, 0.0);
  const double to_delta = double(n_) * n_ * n_ / double(pos.size());
  for (size_t i = 0; i < g.size(); ++i) g.values[i] = float(fft_.real()[i] * to_delta - 1.0);
  return g;
}

void ParticleMesh::accelerations(std::span<const std::array<double, 3>> pos,
                                 std::span<std::array<double, 3>> accel) {
  if (accel.size() != pos.size()) throw Error("particle mesh", "accelerations: size mismatch");
  const int n = n_, nh = n / 2 + 1;
  const double cell = box_ / n;
  const double kf = 2.0 * std::numbers::pi / box_;
  const long count = long(pos.size());
  double t0 = omp_get_wtime();
  paint(pos);
  timing_.paint += seconds_since(t0);

  t0 = omp_get_wtime();
  fft_.forward();
  ++timing_.ffts;
  timing_.fft += seconds_since(t0);

  // psi_k = -delta_k / k^2, with the 1/n^3 of the inverse transform folded in. The factor per
  // mode depends on the particle count only: computed once and kept (a division per mode costs
  // as much as the multiply pass itself).
  t0 = omp_get_wtime();
  std::complex<float>* ck = fft_.complex();
  std::vector<float> kvec(n);
  for (int i = 0; i < n; ++i) kvec[i] = float(kf * fft_wavenumber(i, n));
  if (green_count_ != count) {
    green_.resize(fft_.complex_size());
    // 1/n^3 of the inverse transform times n^3/N of mass -> delta.
    const double inv_n3 = 1.0 / double(count);
    // 1 / sinc(pi j / n)^(2 p) per axis, p = compensation order (CIC painting and read-out).
    const std::vector<double> inv_window = inverse_window_per_axis(n, 2 * compensation_);
#pragma omp parallel for schedule(static)
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b)
        for (int c = 0; c < nh; ++c) {
          const size_t i = (size_t(a) * n + b) * nh + c;
          const double k2 =
              double(kvec[a]) * kvec[a] + double(kvec[b]) * kvec[b] + double(kf * c) * (kf * c);
          const double w = inv_window[a] * inv_window[b] * inv_window[c];
          green_[i] = k2 > 0.0 ? float(-inv_n3 * w / k2) : 0.0f;
        }
    green_count_ = count;
  }
  const float* green = green_.data();
  const long modes = long(fft_.complex_size());
#pragma omp parallel for schedule(static)
  for (long i = 0; i < modes; ++i) ck[i] *= green[i];
  timing_.kernel += seconds_since(t0);

  if (gradient_ == GradientKind::fd4) {
    t0 = omp_get_wtime();
    fft_.inverse();
    ++timing_.ffts;
    timing_.fft += seconds_since(t0);

    // -grad psi at the particles (sim/pm_kernels.cpp, compiled per SIMD target).
    t0 = omp_get_wtime();
    detail::fd4_readout(fft_.real(), n, cell, cells_, accel);
    timing_.readout += seconds_since(t0);
  } else {
    std::copy(ck, ck + fft_.complex_size(), psi_k_.begin());
    for (int d = 0; d < 3; ++d) {
      // -grad psi: -(i k_d) psi_k; the Nyquist component of an odd derivative is dropped.
      t0 = omp_get_wtime();
#pragma omp parallel for schedule(static)
      for (int a = 0; a < n; ++a)
        for (int b = 0; b < n; ++b)
          for (int c = 0; c < nh; ++c) {
            const size_t i = (size_t(a) * n + b) * nh + c;
            const int idx = d == 0 ? a : d == 1 ? b : c;
            const float kd = d == 2 ? float(kf * c) : kvec[idx];
            const bool nyquist = (d == 2 ? c : idx) == n / 2;
            ck[i] =
                nyquist ? std::complex<float>(0.0f) : std::complex<float>(0.0f, -kd) * psi_k_[i];
          }
      timing_.kernel += seconds_since(t0);
      t0 = omp_get_wtime();
      fft_.inverse();
      ++timing_.ffts;
      timing_.fft += seconds_since(t0);
      t0 = omp_get_wtime();
      const float* g = fft_.real();
#pragma omp parallel for schedule(static)
      for (long p = 0; p < count; ++p) {
        const Cic c = expand(cells_[p], n);
        double sum = 0.0;
        for (int a = 0; a < 2; ++a)
          for (int b = 0; b < 2; ++b) {
            const size_t row = (size_t(a ? c.i1[0] : c.i0[0]) * n + (b ? c.i1[1] : c.i0[1])) * n;
            const double wab = (a ? c.w1[0] : c.w0[0]) * (b ? c.w1[1] : c.w0[1]);
            sum += wab * (c.w0[2] * g[row + c.i0[2]] + c.w1[2] * g[row + c.i1[2]]);
          }
        accel[p][d] = sum;
      }
      timing_.readout += seconds_since(t0);
    }
  }
  ++timing_.calls;
}

std::vector<double> time_steps(double a_start, const std::vector<double>& output_a, int steps) {
  if (output_a.empty()) throw Error("simulation", "no output redshift");
  if (steps < 1) throw Error("simulation", "steps must be at least 1");
  const double a_end = *std::max_element(output_a.begin(), output_a.end());
  if (!(a_start > 0.0 && a_start < a_end))
    throw Error("simulation", "the start redshift must be higher than every output redshift");
  std::vector<double> a(steps + 1);
  for (int i = 0; i <= steps; ++i) a[i] = a_start + (a_end - a_start) * i / steps;
  a.back() = a_end;
  for (double out : output_a) {
    if (!(out > a_start))
      throw Error("simulation", "an output redshift is not below the start redshift");
    // Insert unless it (nearly) coincides with a boundary already.
    const auto it = std::lower_bound(a.begin(), a.end(), out);
    const double tol = 1e-9 * a_end;
    if (it != a.end() && std::abs(*it - out) < tol) {
      *it = out;
      continue;
    }
    if (it != a.begin() && std::abs(*(it - 1) - out) < tol) {
      *(it - 1) = out;
      continue;
    }
    a.insert(it, out);
  }
  return a;
}

void evolve(const Cosmology& cosmo, Particles& parts, const std::vector<double>& output_a,
            const PmOptions& opt, const std::function<void(int, const Particles&)>& on_output,
            ForceTiming* timing) {
  if (opt.mesh_factor < 1) throw Error("simulation", "mesh_factor must be at least 1");
  std::vector<double> outputs = output_a;
  std::sort(outputs.begin(), outputs.end());
  const std::vector<double> a = time_steps(parts.a, outputs, opt.steps);
  ParticleMesh pm(parts.n_per_side * opt.mesh_factor, parts.box_size_mpch, opt.gradient, 0,
                  opt.compensation);
  const long count = long(parts.size());
  const double box = parts.box_size_mpch;
  std::vector<std::array<double, 3>> acc(parts.size());
  auto& x = parts.position_mpch;
  auto& p = parts.momentum;

  auto kick = [&](double ai, double af, double ac) {
    const double factor = (cosmo.fastpm_gf(af) - cosmo.fastpm_gf(ai)) / cosmo.growth(ac);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < count; ++i)
      for (int d = 0; d < 3; ++d) p[i][d] += factor * acc[i][d];
  };
  auto drift = [&](double ai, double af, double ac) {
    const double factor = (cosmo.growth(af) - cosmo.growth(ai)) / cosmo.fastpm_gf(ac);
#pragma omp parallel for schedule(static)
    for (long i = 0; i < count; ++i)
      for (int d = 0; d < 3; ++d) {
        x[i][d] = wrap_periodic(x[i][d] + factor * p[i][d], box);
      }
  };

  size_t next_output = 0;
  auto emit_outputs = [&](double now) {
    while (next_output < outputs.size() && std::abs(outputs[next_output] - now) <= 1e-9 * now) {
      parts.a = now;
      on_output(int(next_output), parts);
      ++next_output;
    }
  };
  pm.accelerations(x, acc);
  for (size_t s = 0; s + 1 < a.size(); ++s) {
    const double ai = a[s], af = a[s + 1], ah = 0.5 * (ai + af);
    kick(ai, ah, ai);
    drift(ai, af, ah);
    pm.accelerations(x, acc);
    kick(ah, af, af);
    parts.a = af;
    emit_outputs(af);
  }
  if (timing) {
    const ForceTiming& t = pm.timing();
    timing->paint += t.paint;
    timing->fft += t.fft;
    timing->kernel += t.kernel;
    timing->readout += t.readout;
    timing->ffts += t.ffts;
    timing->calls += t.calls;
  }
}

}  // namespace ff
