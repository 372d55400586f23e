// Masks, noise and the observed data. See include/fieldflow/recon/observation.hpp.
#include "fieldflow/recon/observation.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/periodic.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/io/hdf5.hpp"

namespace ff {

namespace {

// n^3 values from dataset `name` of an HDF5 file, or from a grid file's /delta when it has none.
std::vector<double> read_cube(const std::string& path, const std::string& name, int n) {
  h5::File f = h5::File::open(path);
  const std::string dataset = f.root().has(name) ? name : "delta";
  if (!f.root().has(dataset)) throw Error(path, "has neither /" + name + " nor /delta");
  h5::Dataset d = f.root().open_dataset(dataset);
  const std::vector<hsize_t> shape = d.shape();
  const hsize_t N = hsize_t(n);
  if (shape != std::vector<hsize_t>{N, N, N}) {
    std::string got;
    for (hsize_t s : shape) {
      if (!got.empty()) got += 'x';
      got += std::to_string(s);
    }
    throw Error(path, "/" + dataset + " has shape " + got + ", the field is " + std::to_string(n) +
                          "x" + std::to_string(n) + "x" + std::to_string(n));
  }
  std::vector<double> v(d.element_count());
  d.read(v.data());
  return v;
}

}  // namespace

std::vector<double> make_mask(int n, const MaskSettings& s) {
  const size_t N = size_t(n) * n * n;
  std::vector<double> mask(N, 1.0);
  if (s.kind == "none") return mask;
  if (s.kind == "file") {
    mask = read_cube(s.file, "mask", n);
    for (double m : mask)
      if (m != 0.0 && m != 1.0)
        throw Error(s.file,
                    "mask values must be 0 (masked) or 1 (observed), found " + format_number(m));
    return mask;
  }
  if (!(s.fraction >= 0.0 && s.fraction < 1.0))
    throw Error("mask.fraction", "must be in [0, 1), got " + format_number(s.fraction));
  const CounterRng rng(s.seed, 0);
  const size_t target = size_t(std::llround(s.fraction * double(N)));
  if (s.kind == "cubes") {
    if (s.size < 1 || s.size > n)
      throw Error("mask.size",
                  "must be in [1, " + std::to_string(n) + "], got " + std::to_string(s.size));
    size_t masked = 0;
    for (uint64_t c = 0; masked < target; ++c) {
      const auto [u1, u2] = rng.uniform_pair(2 * c);
      const double u3 = rng.uniform(2 * c + 1);
      const int x0 = int(u1 * n), y0 = int(u2 * n), z0 = int(u3 * n);
      for (int i = 0; i < s.size; ++i)
        for (int j = 0; j < s.size; ++j)
          for (int k = 0; k < s.size; ++k) {
            double& m = mask[(size_t(wrap_index(x0 + i, n)) * n + wrap_index(y0 + j, n)) * n +
                             wrap_index(z0 + k, n)];
            if (m != 0.0) ++masked;
            m = 0.0;
          }
    }
    return mask;
  }
  if (s.kind == "slab") {
    const int planes = int(std::lround(s.fraction * n));
    const int x0 = int(rng.uniform(0) * n);
    for (int p = 0; p < planes; ++p) {
      const size_t plane = size_t(wrap_index(x0 + p, n)) * n * n;
      std::fill(mask.begin() + long(plane), mask.begin() + long(plane + size_t(n) * n), 0.0);
    }
    return mask;
  }
  if (s.kind == "sphere") {
    const auto [u1, u2] = rng.uniform_pair(0);
    const double centre[3] = {u1 * n, u2 * n, rng.uniform(1) * n};
    std::vector<double> r2(N);
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j)
        for (int k = 0; k < n; ++k) {
          double sum = 0.0;
          const int p[3] = {i, j, k};
          for (int a = 0; a < 3; ++a) {
            double d = std::fabs(p[a] - centre[a]);
            d = std::min(d, n - d);
            sum += d * d;
          }
          r2[(size_t(i) * n + j) * n + k] = sum;
        }
    std::vector<size_t> order(N);
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return r2[a] < r2[b]; });
    for (size_t i = 0; i < target; ++i) mask[order[i]] = 0.0;
    return mask;
  }
  throw Error("mask.kind", "unknown kind \"" + s.kind + "\" (cubes, slab, sphere, file, none)");
}

std::vector<double> Observation::inverse_noise() const {
  std::vector<double> w(size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = mask[i] / (noise_sigma[i] * noise_sigma[i]);
  return w;
}

double Observation::observed_fraction() const {
  return mask.empty() ? 0.0 : std::accumulate(mask.begin(), mask.end(), 0.0) / double(mask.size());
}

Observation observe(const Grid& truth, std::vector<double> mask, std::vector<double> noise_sigma,
                    uint64_t noise_seed) {
  const size_t N = truth.size();
  if (mask.size() != N || noise_sigma.size() != N)
    throw Error("observation", "mask and noise map must have one value per voxel");
  Observation o;
  o.n = truth.n;
  o.box_size_mpch = truth.box_size_mpch;
  o.redshift = truth.redshift;
  o.truth = truth.values;
  o.mask = std::move(mask);
  o.noise_sigma = std::move(noise_sigma);
  o.data.assign(N, 0.0);
  const CounterRng rng(noise_seed, 0);
  for (size_t i = 0; i < N; i += 2) {
    const auto [g1, g2] = rng.normal_pair(i / 2);
    o.data[i] = o.mask[i] * (truth.values[i] + o.noise_sigma[i] * g1);
    if (i + 1 < N)
      o.data[i + 1] = o.mask[i + 1] * (truth.values[i + 1] + o.noise_sigma[i + 1] * g2);
  }
  return o;
}

std::vector<double> read_noise_sigma_map(const std::string& path, int n) {
  std::vector<double> sigma = read_cube(path, "noise_sigma", n);
  for (double s : sigma)
    if (!(s > 0) || !std::isfinite(s))
      throw Error(path, "noise sigma must be positive and finite, found " + format_number(s));
  return sigma;
}

}  // namespace ff
