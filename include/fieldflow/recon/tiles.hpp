#pragma once
// Overlapping tiles of a periodic n^3 box, for a flow trained on a smaller grid (docs/denoise.md
// "Boxes larger than the training grid"). Each tile is a t^3 cube of voxels; along each axis the
// tiles start at floor(j n / per_side), j = 0 .. per_side - 1, and wrap around the periodic box.
// A tile's own reconstruction treats the tile as periodic (the flow's convolutions are), which is
// wrong at its faces, so tiles are stitched with a smooth window that vanishes towards the faces:
//   stitched(x) = sum_tiles w(x - offset) tile(x - offset) / sum_tiles w(x - offset),
// w the product over the three axes of the Hann window sin^2(pi (i + 1/2) / t).
#include <string>
#include <vector>

namespace ff {

class TileLayout {
 public:
  // The fewest tiles per side whose neighbours overlap by at least overlap_voxels. Throws
  // ff::Error("tiles", ...) when that is impossible: a box no larger than a tile, or an overlap
  // not below the tile's side.
  TileLayout(int box_n, int tile_n, int overlap_voxels);

  int box_n() const { return box_n_; }
  int tile_n() const { return tile_n_; }
  int per_side() const { return int(offsets_.size()); }
  int count() const { return per_side() * per_side() * per_side(); }
  // Where the tiles start along an axis, and the smallest overlap of two neighbours.
  const std::vector<int>& offsets() const { return offsets_; }
  int overlap() const;

  // The tile's t^3 values of an n^3 field (tile index (a * per_side + b) * per_side + c).
  std::vector<double> cut(const std::vector<double>& field, int tile) const;
  // The windowed average of every tile's t^3 values (count() of them) on the n^3 box.
  std::vector<double> stitch(const std::vector<std::vector<double>>& tiles) const;

 private:
  // Box voxel of the tile's voxel (i, j, k).
  size_t box_index(int tile, int i, int j, int k) const;

  int box_n_, tile_n_;
  std::vector<int> offsets_;
  std::vector<double> window_;  // the 1D window, t values
};

}  // namespace ff
