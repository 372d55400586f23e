// Overlapping tiles of a periodic box (recon/tiles.hpp): the layout, the cut, the stitching against
// a brute-force windowed average, and one clear error for each impossible setting.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>
#include <vector>

#include "error_of.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/recon/tiles.hpp"

namespace ff {
namespace {

std::vector<double> ramp_field(int n) {
  std::vector<double> f(size_t(n) * n * n);
  for (size_t v = 0; v < f.size(); ++v) f[v] = std::sin(0.37 * double(v)) + 0.001 * double(v);
  return f;
}

TEST(TileLayout, FewestTilesWithTheOverlap) {
  const TileLayout a(64, 32, 8);  // stride 24: 3 per side, 21-22 apart
  EXPECT_EQ(a.per_side(), 3);
  EXPECT_EQ(a.count(), 27);
  EXPECT_EQ(a.offsets(), (std::vector<int>{0, 21, 42}));
  EXPECT_EQ(a.overlap(), 10);
  const TileLayout b(96, 32, 8);  // exactly 4 per side, 24 apart
  EXPECT_EQ(b.offsets(), (std::vector<int>{0, 24, 48, 72}));
  EXPECT_EQ(b.overlap(), 8);
  const TileLayout c(21, 8, 2);  // stride 6: 4 per side, the last gap 6
  EXPECT_EQ(c.offsets(), (std::vector<int>{0, 5, 10, 15}));
  EXPECT_EQ(c.overlap(), 2);
  EXPECT_EQ(TileLayout(64, 32, 0).per_side(), 2);  // abutting tiles
}

// A tile is the t^3 block from its offsets, wrapping around the box.
TEST(TileLayout, CutWrapsAroundTheBox) {
  const int n = 21, t = 8;
  const TileLayout layout(n, t, 2);
  const std::vector<double> field = ramp_field(n);
  const int p = layout.per_side();
  const int tile = (3 * p + 1) * p + 2;  // offsets 15, 5, 10: x wraps
  const std::vector<double> cut = layout.cut(field, tile);
  for (int i = 0; i < t; ++i)
    for (int j = 0; j < t; ++j)
      for (int k = 0; k < t; ++k) {
        const int x = (15 + i) % n, y = 5 + j, z = 10 + k;
        EXPECT_EQ(cut[size_t((i * t + j) * t + k)], field[size_t((x * n + y) * n + z)]);
      }
}

// Tiles that return their input stitch back to the field (the weights sum to their own total).
TEST(TileLayout, StitchingTheCutTilesGivesTheField) {
  for (const auto& [n, t, overlap] :
       std::vector<std::tuple<int, int, int>>{{21, 8, 2}, {24, 8, 0}, {16, 12, 5}}) {
    const TileLayout layout(n, t, overlap);
    const std::vector<double> field = ramp_field(n);
    std::vector<std::vector<double>> tiles;
    for (int tile = 0; tile < layout.count(); ++tile) tiles.push_back(layout.cut(field, tile));
    const std::vector<double> stitched = layout.stitch(tiles);
    ASSERT_EQ(stitched.size(), field.size());
    for (size_t v = 0; v < field.size(); ++v) EXPECT_NEAR(stitched[v], field[v], 1e-13) << v;
  }
}

// Tiles of different constants: each voxel is the Hann-weighted mean over the tiles that hold it,
// found by testing every tile against every voxel.
TEST(TileLayout, StitchingIsTheWindowedMeanOfTheTilesThatHoldAVoxel) {
  const int n = 21, t = 8;
  const TileLayout layout(n, t, 2);
  std::vector<std::vector<double>> tiles;
  for (int tile = 0; tile < layout.count(); ++tile)
    tiles.push_back(std::vector<double>(size_t(t) * t * t, 1.0 + tile * tile));
  const std::vector<double> stitched = layout.stitch(tiles);
  const int p = layout.per_side();
  const std::vector<int>& o = layout.offsets();
  auto hann = [&](int i) { return std::pow(std::sin(M_PI * (i + 0.5) / t), 2); };
  for (int x = 0; x < n; ++x)
    for (int y = 0; y < n; ++y)
      for (int z = 0; z < n; ++z) {
        double sum = 0, weight = 0;
        for (int a = 0; a < p; ++a)
          for (int b = 0; b < p; ++b)
            for (int c = 0; c < p; ++c) {
              const int i = (x - o[a] + n) % n, j = (y - o[b] + n) % n, k = (z - o[c] + n) % n;
              if (i >= t || j >= t || k >= t) continue;
              const int tile = (a * p + b) * p + c;
              const double w = hann(i) * hann(j) * hann(k);
              sum += w * (1.0 + tile * tile);
              weight += w;
            }
        ASSERT_GT(weight, 0.0);
        EXPECT_NEAR(stitched[size_t((x * n + y) * n + z)], sum / weight, 1e-12);
      }
}

TEST(TileLayout, ImpossibleSettingsGetOneLine) {
  EXPECT_EQ(error_of([] { (void)TileLayout(32, 32, 8); }),
            "tiles: 32^3 box, 32^3 tiles: the box fits in one tile, tiles need a larger box");
  EXPECT_EQ(error_of([] { (void)TileLayout(64, 32, 32); }),
            "tiles: 64^3 box, 32^3 tiles: an overlap of 32 voxels must be >= 0 and below the "
            "tile's side");
  EXPECT_NE(error_of([] { (void)TileLayout(64, 32, -1); }).find("overlap of -1 voxels"),
            std::string::npos);
}

}  // namespace
}  // namespace ff
