// Overlapping tiles of a periodic box. See include/fieldflow/recon/tiles.hpp.
#include "fieldflow/recon/tiles.hpp"

#include <algorithm>
#include <cmath>

#include "fieldflow/core/error.hpp"

namespace ff {

TileLayout::TileLayout(int box_n, int tile_n, int overlap_voxels) : box_n_(box_n), tile_n_(tile_n) {
  const std::string sides =
      std::to_string(box_n) + "^3 box, " + std::to_string(tile_n) + "^3 tiles";
  if (box_n <= tile_n)
    throw Error("tiles", sides + ": the box fits in one tile, tiles need a larger box");
  if (overlap_voxels < 0 || overlap_voxels >= tile_n)
    throw Error("tiles", sides + ": an overlap of " + std::to_string(overlap_voxels) +
                             " voxels must be >= 0 and below the tile's side");
  const int stride = tile_n - overlap_voxels;
  const int per_side = (box_n + stride - 1) / stride;
  for (int j = 0; j < per_side; ++j) offsets_.push_back(int(long(j) * box_n / per_side));
  for (int i = 0; i < tile_n; ++i) {
    const double s = std::sin(M_PI * (i + 0.5) / tile_n);
    window_.push_back(s * s);
  }
}

int TileLayout::overlap() const {
  int widest_gap = 0;
  for (size_t j = 0; j < offsets_.size(); ++j) {
    const int next = j + 1 < offsets_.size() ? offsets_[j + 1] : box_n_ + offsets_[0];
    widest_gap = std::max(widest_gap, next - offsets_[j]);
  }
  return tile_n_ - widest_gap;
}

size_t TileLayout::box_index(int tile, int i, int j, int k) const {
  const int p = per_side();
  const int a = tile / (p * p), b = (tile / p) % p, c = tile % p;
  const size_t x = size_t((offsets_[size_t(a)] + i) % box_n_);
  const size_t y = size_t((offsets_[size_t(b)] + j) % box_n_);
  const size_t z = size_t((offsets_[size_t(c)] + k) % box_n_);
  return (x * size_t(box_n_) + y) * size_t(box_n_) + z;
}

std::vector<double> TileLayout::cut(const std::vector<double>& field, int tile) const {
  const int t = tile_n_;
  std::vector<double> out(size_t(t) * t * t);
  for (int i = 0; i < t; ++i)
    for (int j = 0; j < t; ++j)
      for (int k = 0; k < t; ++k)
        out[(size_t(i) * t + j) * t + k] = field[box_index(tile, i, j, k)];
  return out;
}

std::vector<double> TileLayout::stitch(const std::vector<std::vector<double>>& tiles) const {
  const size_t box_size = size_t(box_n_) * box_n_ * box_n_;
  std::vector<double> sum(box_size, 0.0), weight(box_size, 0.0);
  const int t = tile_n_;
  for (int tile = 0; tile < count(); ++tile)
    for (int i = 0; i < t; ++i)
      for (int j = 0; j < t; ++j)
        for (int k = 0; k < t; ++k) {
          const double w = window_[size_t(i)] * window_[size_t(j)] * window_[size_t(k)];
          const size_t at = box_index(tile, i, j, k);
          sum[at] += w * tiles[size_t(tile)][(size_t(i) * t + j) * t + k];
          weight[at] += w;
        }
  // Every voxel lies in some tile (the offsets are at most t apart) and the window is positive.
  for (size_t v = 0; v < box_size; ++v) sum[v] /= weight[v];
  return sum;
}

}  // namespace ff
