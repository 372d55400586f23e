// Periodic 3D convolution kernels. See include/fieldflow/nn/conv3d.hpp.
// Compiled once per Highway target (foreach_target.h); conv3d_forward and conv3d_weight_grad
// dispatch at run time to the best target the CPU supports (core/simd.hpp).
#include "fieldflow/nn/conv3d.hpp"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "nn/conv3d.cpp"
// GCC 12 reports false -Wmaybe-uninitialized inside the AVX-512 intrinsics headers here.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/periodic.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/core/simd.hpp"

HWY_BEFORE_NAMESPACE();
namespace ff {
namespace HWY_NAMESPACE {

namespace hn = hwy::HWY_NAMESPACE;

namespace {

template <typename T>
using Tag = hn::ScalableTag<T>;
template <typename T>
using Vec = decltype(hn::Zero(Tag<T>()));

// The kernels hold tiles of accumulators in vector registers: 32 registers on AVX-512 and NEON,
// 16 on AVX2 and SSE4. A tile sized for 32 spills to the stack on the 16-register targets (a
// store and a load around every multiply-add), so every tile below is sized from this budget:
// at most kAccumulators accumulators, which leaves room for the operands.
constexpr bool kFewRegisters = HWY_ARCH_X86 && HWY_TARGET >= HWY_AVX2;
constexpr int kAccumulators = kFewRegisters ? 8 : 16;

// Keeps v in a register: an empty asm that the compiler must assume reads and changes it, so it
// cannot fold the load that made v into each instruction that uses it (GCC 12 does, on AVX2,
// even when the registers suffice). Nothing is emitted; other targets need no help.
template <typename V>
inline void in_register(V& v) {
#if HWY_ARCH_X86 && (HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_SSE4)
  asm("" : "+x"(v.raw));
#else
  (void)v;
#endif
}

// The largest power of two (at most `cap`) whose product with `per` fits in `budget`.
constexpr int fit_power_of_two(int budget, int per, int cap) {
  int b = 1;
  while (2 * b <= cap && 2 * b * per <= budget) b *= 2;
  return b;
}

// ---- reference loops: any shape, any strides ----

template <typename T>
void conv_reference(const Tensor<T>& x, int k, ConvWeights<T> w, const T* bias, bool flip,
                    Activation<T> relu, Tensor<T>& y) {
  const int n = x.n, ci = x.channels, co = y.channels, r = k / 2, k3 = k * k * k;
#pragma omp parallel for collapse(2) schedule(static) if (x.size() * co * k3 > kParallelMinWork)
  for (int b = 0; b < x.batch; ++b)
    for (int px = 0; px < n; ++px)
      for (int py = 0; py < n; ++py)
        for (int pz = 0; pz < n; ++pz) {
          T* out = &y.at(b, px, py, pz, 0);
          for (int o = 0; o < co; ++o) out[o] = bias ? bias[o] : T(0);
          for (int a = 0; a < k; ++a)
            for (int bb = 0; bb < k; ++bb)
              for (int c = 0; c < k; ++c) {
                const int tap = (a * k + bb) * k + c, tw = flip ? k3 - 1 - tap : tap;
                const T* in =
                    &x.at(b, wrap_index_near(px + a - r, n), wrap_index_near(py + bb - r, n),
                          wrap_index_near(pz + c - r, n), 0);
                const T* wt = w.w + size_t(tw) * w.tap_stride;
                for (int i = 0; i < ci; ++i)
                  for (int o = 0; o < co; ++o)
                    out[o] += in[i] * wt[size_t(i) * w.in_stride + size_t(o) * w.out_stride];
              }
          if (relu.on)
            for (int o = 0; o < co; ++o) out[o] = std::max(out[o], relu.slope * out[o]);
        }
}

template <typename T>
void weight_grad_reference(const Tensor<T>& x, const Tensor<T>& dy, int k, bool in_major, T* g) {
  const int n = x.n, ci = x.channels, co = dy.channels, r = k / 2, k3 = k * k * k;
  // Parallel over taps: each thread owns whole slices of g.
#pragma omp parallel for schedule(dynamic) if (x.size() * co * k3 > kParallelMinWork)
  for (int tap = 0; tap < k3; ++tap) {
    const int a = tap / (k * k), bb = (tap / k) % k, c = tap % k;
    T* gt = g + size_t(tap) * ci * co;
    for (int b = 0; b < x.batch; ++b)
      for (int px = 0; px < n; ++px)
        for (int py = 0; py < n; ++py)
          for (int pz = 0; pz < n; ++pz) {
            const T* in = &x.at(b, wrap_index_near(px + a - r, n), wrap_index_near(py + bb - r, n),
                                wrap_index_near(pz + c - r, n), 0);
            const T* d = &dy.at(b, px, py, pz, 0);
            for (int i = 0; i < ci; ++i)
              for (int o = 0; o < co; ++o)
                gt[in_major ? size_t(i) * co + o : size_t(o) * ci + i] += in[i] * d[o];
          }
  }
}

// ---- fast kernels ----

// Output channels vectorised: ZB consecutive z voxels x VB vectors of output channels held in
// registers; each input value is broadcast against VB weight vectors. For one (x, y) offset of
// the kernel, the k z-taps x ci input channels are one contiguous stretch both in the padded row
// and in the weights (tap_stride = ci x in_stride), so the inner loop walks it as one index m.
// kInputs: ci when fixed at compile time (1: the flow's first layer, whose voxel offsets are then
// constants), 0 when read at run time.
template <typename T, int ZB, int VB, int kInputs>
inline void row_out_vectorised(const T* xb, int n, int ci_runtime, int k, ConvWeights<T> w,
                               const T* bias, Activation<T> relu, int px, int py, int z0, int o0,
                               T* yrow, int co) {
  const Tag<T> d;
  const size_t L = hn::Lanes(d);
  const int ci = kInputs > 0 ? kInputs : ci_runtime;
  const int r = k / 2, stretch = k * ci;
  Vec<T> acc[ZB][VB];
  for (int v = 0; v < VB; ++v) {
    const Vec<T> bv = bias ? hn::LoadU(d, bias + o0 + v * L) : hn::Zero(d);
    for (int j = 0; j < ZB; ++j) acc[j][v] = bv;
  }
  for (int a = 0; a < k; ++a) {
    const int xx = wrap_index_near(px + a - r, n);
    for (int bb = 0; bb < k; ++bb) {
      const T* row = xb + (size_t(xx) * n + wrap_index_near(py + bb - r, n)) * (n + 2 * r) * ci;
      const T* xin = row + size_t(z0) * ci;  // padded row: no wrap
      const T* wab = w.w + size_t(a * k + bb) * k * w.tap_stride + o0;
      if constexpr (kInputs == 1 || VB == 1) {
        if (k == 3) {
          // Input voxel t meets z-tap c at output voxel t - c, so for each input channel the
          // ZB + 2 voxels are broadcast once each against the three z-taps' weights (rather than
          // once per tap: with one output vector, a broadcast per multiply-add).
          for (int i = 0; i < ci; ++i) {
            Vec<T> wc[3][VB];
            for (int c = 0; c < 3; ++c)
              for (int v = 0; v < VB; ++v)
                wc[c][v] = hn::LoadU(d, wab + size_t(c * ci + i) * w.in_stride + v * L);
            HWY_UNROLL(32)  // whole (ZB + 2 > 16 is past GCC's own limit): acc stays in registers
            for (int t = 0; t < ZB + 2; ++t) {
              const Vec<T> xv = hn::Set(d, xin[t * ci + i]);
              for (int c = 0; c < 3; ++c)
                if (t - c >= 0 && t - c < ZB)
                  for (int v = 0; v < VB; ++v)
                    acc[t - c][v] = hn::MulAdd(xv, wc[c][v], acc[t - c][v]);
            }
          }
          continue;
        }
      }
      for (int m = 0; m < stretch; ++m) {
        const T* wm = wab + size_t(m) * w.in_stride;
        Vec<T> wv[VB];
        for (int v = 0; v < VB; ++v) wv[v] = hn::LoadU(d, wm + v * L);
        for (int j = 0; j < ZB; ++j) {
          const Vec<T> xv = hn::Set(d, xin[j * ci + m]);
          for (int v = 0; v < VB; ++v) acc[j][v] = hn::MulAdd(xv, wv[v], acc[j][v]);
        }
      }
    }
  }
  for (int j = 0; j < ZB; ++j) {
    T* out = yrow + size_t(z0 + j) * co + o0;
    for (int v = 0; v < VB; ++v) {
      Vec<T> s = acc[j][v];
      if (relu.on) s = hn::Max(s, hn::Mul(s, hn::Set(d, relu.slope)));
      hn::StoreU(s, d, out + v * L);
    }
  }
}

// The dot-product kernels' end: each accumulator summed across lanes, plus bias and activation,
// into output voxel z0 + j (wrapped unless kInRow), channel o0 + q.
template <typename T, int ZB, int OB, bool kInRow>
inline void store_lane_sums(const Vec<T> (&acc)[ZB][OB], const T* bias, Activation<T> relu, int n,
                            int z0, int o0, T* yrow, int co) {
  const Tag<T> d;
  for (int j = 0; j < ZB; ++j)
    for (int q = 0; q < OB; ++q) {
      T s = hn::GetLane(hn::SumOfLanes(d, acc[j][q])) + (bias ? bias[o0 + q] : T(0));
      if (relu.on) s = std::max(s, relu.slope * s);
      yrow[size_t(kInRow ? z0 + j : wrap_index_near(z0 + j, n)) * co + o0 + q] = s;
    }
}

// Input channels vectorised: dot products for OB output channels at ZB voxels, summed across
// lanes at the end. For convolutions with few outputs. Reads the input as it is (channels-last,
// not padded): the z voxels a tile reads, wrapped, are listed once per tile, and the voxels it
// writes wrap too (z0 + j may pass n - 1). kOneVector: the input is one vector per voxel
// (ci = lanes) and the tile does not wrap, so the voxels a tap reads are constant offsets from one
// pointer (no table: fewer registers, no spills). kInRow: the tile does not wrap either, for any
// whole number of input vectors per voxel (offsets j * ci, no table).
template <typename T, int ZB, int OB, bool kOneVector, bool kInRow = kOneVector>
inline void row_in_vectorised(const T* xb, int n, int ci, int k, ConvWeights<T> w, const T* bias,
                              Activation<T> relu, int px, int py, int z0, int o0, T* yrow, int co) {
  const Tag<T> d;
  const size_t L = hn::Lanes(d);
  const int r = k / 2;
  size_t z_offset[ZB + 2];  // voxel z0 - r + j of the row, wrapped, in elements (k <= 3)
  if constexpr (!kInRow)
    for (int j = 0; j < ZB + k - 1; ++j) z_offset[j] = size_t(wrap_index(z0 - r + j, n)) * ci;
  Vec<T> acc[ZB][OB];
  for (int j = 0; j < ZB; ++j)
    for (int c = 0; c < OB; ++c) acc[j][c] = hn::Zero(d);
  for (int a = 0; a < k; ++a) {
    const int xx = wrap_index_near(px + a - r, n);
    for (int bb = 0; bb < k; ++bb) {
      const T* row = xb + (size_t(xx) * n + wrap_index_near(py + bb - r, n)) * n * ci;
      for (int c = 0; c < k; ++c) {
        const int tap = (a * k + bb) * k + c;
        const T* wt = w.w + size_t(tap) * w.tap_stride;
        const T* wo[OB];
        for (int q = 0; q < OB; ++q) wo[q] = wt + size_t(o0 + q) * w.out_stride;
        // kInRow: the tile's first voxel for this z-tap, z0 - r + c
        const T* xc = row + size_t(z0 - r + c) * (kOneVector ? L : size_t(ci));
        for (int i = 0; i < (kOneVector ? int(L) : ci); i += int(L)) {
          auto x_at = [&](int j) {
            return kOneVector ? xc + j * L
                   : kInRow   ? xc + size_t(j) * ci + i
                              : row + z_offset[j + c] + i;
          };
          if constexpr (kFewRegisters && OB > 1) {
            // Weights held, each input loaded once for all OB outputs: written input-major, GCC
            // folded the input loads into every output's multiply-add, 2 x 4 + 2 loads per 8
            // FMAs where the two load ports run out before the two FMA pipes. (One output: the
            // folded load is one instruction, a separate one costs more.)
            Vec<T> wv[OB];
            for (int q = 0; q < OB; ++q) {
              Vec<T> w_q = hn::LoadU(d, wo[q] + i);
              in_register(w_q);  // on a local: on the array element GCC kept the arrays in memory
              wv[q] = w_q;
            }
            for (int j = 0; j < ZB; ++j) {
              Vec<T> xv = hn::LoadU(d, x_at(j));
              in_register(xv);
              for (int q = 0; q < OB; ++q) acc[j][q] = hn::MulAdd(xv, wv[q], acc[j][q]);
            }
          } else {
            Vec<T> xv[ZB];
            for (int j = 0; j < ZB; ++j) xv[j] = hn::LoadU(d, x_at(j));
            for (int q = 0; q < OB; ++q) {
              const Vec<T> wv = hn::LoadU(d, wo[q] + i);
              for (int j = 0; j < ZB; ++j) acc[j][q] = hn::MulAdd(xv[j], wv, acc[j][q]);
            }
          }
        }
      }
    }
  }
  store_lane_sums<T, ZB, OB, kInRow>(acc, bias, relu, n, z0, o0, yrow, co);
}

// The dot-product kernel for a 3^3 kernel and one input vector per voxel (ci = lanes), on the
// 32-register targets: input voxel t of the tile's ZB + 2 meets z-tap c at output voxel t - c, so
// each is loaded once for the three z-taps against 3 x OB weight vectors held in registers
// (ZB x OB accumulators + 3 x OB weights + 1 input: at most 29 of 32). row_in_vectorised loads
// each input once per tap, and GCC folded it into every output's multiply-add: 54 loads per 48
// multiply-adds at 32^3 16->2 (AVX-512) where this takes 16. kInRow: the tile does not wrap, so its
// voxels are constant offsets from one pointer; otherwise they are listed once per tile, wrapped.
template <typename T, int ZB, int OB, bool kInRow>
inline void row_in_one_vector_k3(const T* xb, int n, ConvWeights<T> w, const T* bias,
                                 Activation<T> relu, int px, int py, int z0, int o0, T* yrow,
                                 int co) {
  const Tag<T> d;
  const size_t L = hn::Lanes(d);
  size_t z_offset[ZB + 2];  // !kInRow: voxel z0 - 1 + t of the row, wrapped, in elements
  if constexpr (!kInRow)
    for (int t = 0; t < ZB + 2; ++t) z_offset[t] = size_t(wrap_index(z0 - 1 + t, n)) * L;
  Vec<T> acc[ZB][OB];
  for (int j = 0; j < ZB; ++j)
    for (int q = 0; q < OB; ++q) acc[j][q] = hn::Zero(d);
  const T* w_out = w.w + size_t(o0) * w.out_stride;
  for (int a = 0; a < 3; ++a) {
    const int xx = wrap_index_near(px + a - 1, n);
    for (int bb = 0; bb < 3; ++bb) {
      const T* row = xb + (size_t(xx) * n + wrap_index_near(py + bb - 1, n)) * n * L;
      const T* w_ab = w_out + size_t(a * 3 + bb) * 3 * w.tap_stride;
      Vec<T> wv[3][OB];
      for (int c = 0; c < 3; ++c)
        for (int q = 0; q < OB; ++q)
          wv[c][q] = hn::LoadU(d, w_ab + size_t(c) * w.tap_stride + size_t(q) * w.out_stride);
      const T* x0 = row + size_t(z0 - 1) * L;  // kInRow: the tile's first voxel
      HWY_UNROLL(16)
      for (int t = 0; t < ZB + 2; ++t) {
        const Vec<T> xv = hn::LoadU(d, kInRow ? x0 + size_t(t) * L : row + z_offset[t]);
        for (int c = 0; c < 3; ++c)
          if (t - c >= 0 && t - c < ZB)
            for (int q = 0; q < OB; ++q) acc[t - c][q] = hn::MulAdd(xv, wv[c][q], acc[t - c][q]);
      }
    }
  }
  store_lane_sums<T, ZB, OB, kInRow>(acc, bias, relu, n, z0, o0, yrow, co);
}

// z voxels per tile: ZB x VB accumulators plus VB weight vectors and a broadcast input (32
// registers: up to 16 accumulators; 16 registers: 12, where GCC folds the weight loads it cannot
// keep into the multiply-adds; 12 rather than 8 gives the two FMA pipes more independent sums).
// One input channel with two output vectors on 16 registers: the sliding 3^3 kernel holds the
// three z-taps' 6 weight vectors, so 4 voxels (8 + 6 + 1 registers); 6 spilled, and measured
// 10-15% slower on AVX2's 32^3 1->16.
constexpr int zb_out(int vb, int inputs) {
  if (kFewRegisters && inputs == 1 && vb == 2) return 4;
  return kFewRegisters ? std::max(1, 12 / vb) : (vb >= 3 ? 4 : (vb == 2 ? 8 : 16));
}

// The largest power of two below zb (the block of the tail of a row).
constexpr int smaller_block(int zb) {
  int b = 1;
  while (2 * b < zb) b *= 2;
  return b;
}
// z voxels per tile of the dot-product kernel: ZB x OB accumulators plus ZB input vectors.
constexpr int zb_in(int ob) {
  return kFewRegisters ? fit_power_of_two(kAccumulators, ob, 8) : (ob >= 3 ? 4 : 8);
}

// Blocks of ZB voxels from z0 on; the tail in blocks of the powers of two below ZB.
template <typename T, int ZB, int VB, int kInputs>
void rows_out(const T* xb, int n, int ci, int k, ConvWeights<T> w, const T* bias,
              Activation<T> relu, int px, int py, int o0, T* yrow, int co, int z0 = 0) {
  for (; z0 + ZB <= n; z0 += ZB)
    row_out_vectorised<T, ZB, VB, kInputs>(xb, n, ci, k, w, bias, relu, px, py, z0, o0, yrow, co);
  if constexpr (ZB > 1)
    rows_out<T, smaller_block(ZB), VB, kInputs>(xb, n, ci, k, w, bias, relu, px, py, o0, yrow, co,
                                                z0);
}

// One z row, all output channels, in blocks of up to 4 vectors.
template <typename T, int kInputs>
void row_all_outputs(const T* xb, int n, int ci, int k, ConvWeights<T> w, const T* bias,
                     Activation<T> relu, int px, int py, T* yrow, int co) {
  const int lanes = int(hn::Lanes(Tag<T>())), nv = co / lanes;
  int v0 = 0;
  for (; v0 + 4 <= nv; v0 += 4)
    rows_out<T, zb_out(4, kInputs), 4, kInputs>(xb, n, ci, k, w, bias, relu, px, py, v0 * lanes,
                                                yrow, co);
  if (nv - v0 == 3)
    rows_out<T, zb_out(3, kInputs), 3, kInputs>(xb, n, ci, k, w, bias, relu, px, py, v0 * lanes,
                                                yrow, co);
  else if (nv - v0 == 2)
    rows_out<T, zb_out(2, kInputs), 2, kInputs>(xb, n, ci, k, w, bias, relu, px, py, v0 * lanes,
                                                yrow, co);
  else if (nv - v0 == 1)
    rows_out<T, zb_out(1, kInputs), 1, kInputs>(xb, n, ci, k, w, bias, relu, px, py, v0 * lanes,
                                                yrow, co);
}

template <typename T, int ZB, int OB>
void rows_in(const T* xb, int n, int ci, int k, ConvWeights<T> w, const T* bias, Activation<T> relu,
             int px, int py, int o0, T* yrow, int co) {
  const int r = k / 2;
  const bool one_vector = ci == int(hn::Lanes(Tag<T>()));
  // The tiles that need no wrap come first, from voxel r on; the voxels left, up to n - 1 and on
  // round to r - 1, make one wrapped stretch (one table tile rather than one at each end of the
  // row).
  const int z_begin = r, z_end = z_begin + n;
  // One input vector per voxel and a 3^3 kernel on 32 registers: the sliding kernel (AVX2's 8->2
  // keeps row_in_vectorised: unmeasured).
  const bool sliding = one_vector && k == 3 && !kFewRegisters;
  int z0 = z_begin;
  for (; z0 + ZB + r <= n; z0 += ZB)
    if (sliding)
      row_in_one_vector_k3<T, ZB, OB, true>(xb, n, w, bias, relu, px, py, z0, o0, yrow, co);
    else if (one_vector)
      row_in_vectorised<T, ZB, OB, true>(xb, n, ci, k, w, bias, relu, px, py, z0, o0, yrow, co);
    else
      row_in_vectorised<T, ZB, OB, false, true>(xb, n, ci, k, w, bias, relu, px, py, z0, o0, yrow,
                                                co);
  for (; z0 + ZB <= z_end; z0 += ZB)
    if (sliding)
      row_in_one_vector_k3<T, ZB, OB, false>(xb, n, w, bias, relu, px, py, z0, o0, yrow, co);
    else
      row_in_vectorised<T, ZB, OB, false>(xb, n, ci, k, w, bias, relu, px, py, z0, o0, yrow, co);
  for (; z0 < z_end; ++z0)
    row_in_vectorised<T, 1, OB, false>(xb, n, ci, k, w, bias, relu, px, py, z0, o0, yrow, co);
}

// The input with each z row padded periodically by k/2 voxels on both sides, so the kernels'
// taps along z are plain offsets. Reused between calls (grows only).
template <typename T>
AlignedVector<T>& padded_buffer() {
  static thread_local AlignedVector<T> buffer;
  return buffer;
}

// x with each z row (n voxels x channels) padded periodically by r voxels on both sides, in
// padded_buffer(); x's own data when r = 0 (a 1^3 kernel reads the input as it is).
template <typename T>
const T* z_padded(const Tensor<T>& x, int r) {
  if (r == 0) return x.data.data();
  const int n = x.n, c = x.channels, np = n + 2 * r;
  AlignedVector<T>& padded = padded_buffer<T>();
  const size_t rows = size_t(x.batch) * n * n, padded_size = rows * np * c;
  if (padded.size() < padded_size) padded.resize(padded_size);
#pragma omp parallel for schedule(static) if (padded_size > kParallelMinWork)
  for (size_t row = 0; row < rows; ++row) {
    const T* src = x.data.data() + row * n * c;
    T* dst = padded.data() + row * np * c;
    std::copy_n(src + size_t(n - r) * c, size_t(r) * c, dst);  // voxels n - r ... n - 1
    std::copy_n(src, size_t(n) * c, dst + size_t(r) * c);
    std::copy_n(src, size_t(r) * c, dst + size_t(n + r) * c);  // voxels 0 ... r - 1
  }
  return padded.data();
}

template <typename T>
void conv_fast(const Tensor<T>& x, int k, ConvWeights<T> w, const T* bias, Activation<T> relu,
               Tensor<T>& y, bool out_vectorised) {
  const int n = x.n, ci = x.channels, co = y.channels, r = k / 2, np = n + 2 * r;
  // The output-vectorised kernel reads z-padded rows; the dot-product kernel the input itself.
  const T* padded_data = out_vectorised ? z_padded(x, r) : x.data.data();
  const size_t padded_field = size_t(n) * n * (out_vectorised ? np : n) * ci;
#pragma omp parallel for collapse(2) \
    schedule(static) if (x.size() * co * k * k * k > kParallelMinWork)
  for (int b = 0; b < x.batch; ++b)
    for (int px = 0; px < n; ++px) {
      const T* xb = padded_data + b * padded_field;
      for (int py = 0; py < n; ++py) {
        T* yrow = y.field(b) + (size_t(px) * n + py) * n * co;
        if (out_vectorised && ci == 1)
          row_all_outputs<T, 1>(xb, n, ci, k, w, bias, relu, px, py, yrow, co);
        else if (out_vectorised)
          row_all_outputs<T, 0>(xb, n, ci, k, w, bias, relu, px, py, yrow, co);
        else {
          int o0 = 0;
          for (; o0 + 4 <= co; o0 += 4)
            rows_in<T, zb_in(4), 4>(xb, n, ci, k, w, bias, relu, px, py, o0, yrow, co);
          if (co - o0 == 3)
            rows_in<T, zb_in(3), 3>(xb, n, ci, k, w, bias, relu, px, py, o0, yrow, co);
          else if (co - o0 == 2)
            rows_in<T, zb_in(2), 2>(xb, n, ci, k, w, bias, relu, px, py, o0, yrow, co);
          else if (co - o0 == 1)
            rows_in<T, zb_in(1), 1>(xb, n, ci, k, w, bias, relu, px, py, o0, yrow, co);
        }
      }
    }
}

// z vectorised, for few output channels on grids whose side is 1, 2 or 4 SIMD widths: the
// input is transposed to padded channel-major rows xt[row][i][z'] so a vector holds L consecutive
// z; RB rows x ZV vectors per row x OB outputs are held in registers, the weights broadcast.
// Rows per block: 1, 2, 4 or 8, so a grid side that is a multiple of 8 holds whole blocks.
template <int ZV, int OB>
constexpr int rows_per_block() {
  return kFewRegisters ? fit_power_of_two(kAccumulators, ZV * OB, 8)
                       : (ZV * OB >= 16 ? 1 : (ZV * OB >= 8 ? 2 : (ZV * OB >= 4 ? 4 : 8)));
}
// Outputs per block: up to 8, fewer where ZV vectors x OB outputs would exceed the accumulators
// (and at most 4 with 16 registers, which also hold the OB broadcast weights).
template <int ZV>
constexpr int outputs_per_block() {
  return std::min(kFewRegisters ? 4 : 8, std::max(1, kAccumulators / ZV));
}

template <typename T, int ZV, int OB>
void rows_z_vectorised(const T* xt, int n, int ci, int k, ConvWeights<T> w, const T* bias,
                       Activation<T> relu, int b, int px, int py0, int o0, T* y, int co) {
  constexpr int RB = rows_per_block<ZV, OB>();
  const Tag<T> d;
  const int L = int(hn::Lanes(d));
  const int r = k / 2, np = n + 2 * r;
  Vec<T> acc[RB][ZV][OB];
  for (int q = 0; q < RB; ++q)
    for (int v = 0; v < ZV; ++v)
      for (int o = 0; o < OB; ++o) acc[q][v][o] = hn::Zero(d);
  for (int a = 0; a < k; ++a) {
    const int xx = wrap_index_near(px + a - r, n);
    for (int bb = 0; bb < k; ++bb) {
      const T* rowp[RB];
      for (int q = 0; q < RB; ++q)
        rowp[q] = xt + ((size_t(b) * n + xx) * n + wrap_index_near(py0 + q + bb - r, n)) * ci * np;
      for (int c = 0; c < k; ++c) {
        const int tap = (a * k + bb) * k + c;
        const T* wt = w.w + size_t(tap) * w.tap_stride + size_t(o0) * w.out_stride;
        for (int i = 0; i < ci; ++i) {
          Vec<T> wv[OB];
          for (int o = 0; o < OB; ++o)
            wv[o] = hn::Set(d, wt[size_t(i) * w.in_stride + size_t(o) * w.out_stride]);
          for (int q = 0; q < RB; ++q)
            for (int v = 0; v < ZV; ++v) {
              const Vec<T> xv = hn::LoadU(d, rowp[q] + size_t(i) * np + c + v * L);
              for (int o = 0; o < OB; ++o) acc[q][v][o] = hn::MulAdd(xv, wv[o], acc[q][v][o]);
            }
        }
      }
    }
  }
  HWY_ALIGN T tmp[OB][64];
  for (int q = 0; q < RB; ++q) {
    T* yrow = y + ((size_t(b) * n + px) * n + py0 + q) * n * co;
    for (int v = 0; v < ZV; ++v) {
      for (int o = 0; o < OB; ++o) hn::Store(acc[q][v][o], d, tmp[o]);
      for (int l = 0; l < L; ++l) {
        T* out = yrow + size_t(v * L + l) * co + o0;
        for (int o = 0; o < OB; ++o) {
          T s = tmp[o][l] + (bias ? bias[o0 + o] : T(0));
          out[o] = relu.on ? std::max(s, relu.slope * s) : s;
        }
      }
    }
  }
}

template <typename T, int ZV>
void plane_z_vectorised(const T* xt, int n, int ci, int k, ConvWeights<T> w, const T* bias,
                        Activation<T> relu, int b, int px, T* y, int co) {
  constexpr int kMaxOB = outputs_per_block<ZV>();
  for (int o0 = 0; o0 < co; o0 += kMaxOB) {
    const int ob = std::min(kMaxOB, co - o0);
    auto run = [&](auto ob_tag) {
      constexpr int OB = decltype(ob_tag)::value;
      if constexpr (OB <= kMaxOB) {
        constexpr int RB = rows_per_block<ZV, OB>();
        for (int py0 = 0; py0 < n; py0 += RB)
          rows_z_vectorised<T, ZV, OB>(xt, n, ci, k, w, bias, relu, b, px, py0, o0, y, co);
      }
    };
    switch (ob) {
      case 1:
        run(std::integral_constant<int, 1>());
        break;
      case 2:
        run(std::integral_constant<int, 2>());
        break;
      case 3:
        run(std::integral_constant<int, 3>());
        break;
      case 4:
        run(std::integral_constant<int, 4>());
        break;
      case 5:
        run(std::integral_constant<int, 5>());
        break;
      case 6:
        run(std::integral_constant<int, 6>());
        break;
      case 7:
        run(std::integral_constant<int, 7>());
        break;
      default:
        run(std::integral_constant<int, 8>());
        break;
    }
  }
}

template <typename T>
void conv_z_vectorised(const Tensor<T>& x, int k, ConvWeights<T> w, const T* bias,
                       Activation<T> relu, Tensor<T>& y) {
  const int n = x.n, ci = x.channels, co = y.channels, r = k / 2, np = n + 2 * r;
  const int L = int(hn::Lanes(Tag<T>()));
  AlignedVector<T>& padded = padded_buffer<T>();
  const size_t rows = size_t(x.batch) * n * n, padded_size = rows * np * ci;
  if (padded.size() < padded_size) padded.resize(padded_size);
#pragma omp parallel for schedule(static) if (padded_size > kParallelMinWork)
  for (size_t row = 0; row < rows; ++row) {
    const T* src = x.data.data() + row * n * ci;
    T* dst = padded.data() + row * np * ci;
    for (int z = 0; z < np; ++z) {
      const T* s = src + size_t(wrap_index_near(z - r, n)) * ci;
      for (int i = 0; i < ci; ++i) dst[size_t(i) * np + z] = s[i];
    }
  }
#pragma omp parallel for collapse(2) \
    schedule(static) if (x.size() * co * k * k * k > kParallelMinWork)
  for (int b = 0; b < x.batch; ++b)
    for (int px = 0; px < n; ++px) {
      if (n == L)
        plane_z_vectorised<T, 1>(padded.data(), n, ci, k, w, bias, relu, b, px, y.data.data(), co);
      else if (n == 2 * L)
        plane_z_vectorised<T, 2>(padded.data(), n, ci, k, w, bias, relu, b, px, y.data.data(), co);
      else
        plane_z_vectorised<T, 4>(padded.data(), n, ci, k, w, bias, relu, b, px, y.data.data(), co);
    }
}

// g(tap, p, q) += sum_v P(v [+ tap if ShiftP], p) Q(v [+ tap if !ShiftP], q), q vectorised.
// For one (a, b) pair of x/y tap offsets, all KC z-taps at once: KC x PB values of p x VB vectors
// of q in registers, summed over a whole x-plane; the shifted operand comes z-padded (no wrap).
template <typename T, int KC, int PB, int VB, bool ShiftP>
void grad_plane_block(const T* pb, const T* qb, int n, int np, int nq, int k, int a, int bb, int px,
                      int p0, int q0, T* g) {
  const Tag<T> d;
  const size_t L = hn::Lanes(d);
  const int r = k / 2, zlen = n + 2 * r;
  Vec<T> acc[KC][PB][VB];
  for (int c = 0; c < KC; ++c)
    for (int j = 0; j < PB; ++j)
      for (int v = 0; v < VB; ++v) acc[c][j][v] = hn::Zero(d);
  const int sx = wrap_index_near(px + a - r, n);
  for (int py = 0; py < n; ++py) {
    const int sy = wrap_index_near(py + bb - r, n);
    // Shifted operand: padded rows of zlen voxels; the other: plain rows of n.
    const T* prow =
        ShiftP ? pb + (size_t(sx) * n + sy) * zlen * np : pb + (size_t(px) * n + py) * n * np;
    const T* qrow =
        ShiftP ? qb + (size_t(px) * n + py) * n * nq : qb + (size_t(sx) * n + sy) * zlen * nq;
    for (int z = 0; z < n; ++z) {
      if (ShiftP) {
        Vec<T> qvec[VB];
        for (int v = 0; v < VB; ++v) qvec[v] = hn::LoadU(d, qrow + size_t(z) * nq + q0 + v * L);
        for (int c = 0; c < KC; ++c) {
          const T* pv = prow + size_t(z + c) * np + p0;
          for (int j = 0; j < PB; ++j) {
            const Vec<T> sv = hn::Set(d, pv[j]);
            for (int v = 0; v < VB; ++v) acc[c][j][v] = hn::MulAdd(sv, qvec[v], acc[c][j][v]);
          }
        }
      } else {
        Vec<T> sv[PB];
        for (int j = 0; j < PB; ++j) sv[j] = hn::Set(d, prow[size_t(z) * np + p0 + j]);
        for (int c = 0; c < KC; ++c)
          for (int v = 0; v < VB; ++v) {
            const Vec<T> qvec = hn::LoadU(d, qrow + size_t(z + c) * nq + q0 + v * L);
            for (int j = 0; j < PB; ++j) acc[c][j][v] = hn::MulAdd(sv[j], qvec, acc[c][j][v]);
          }
      }
    }
  }
  for (int c = 0; c < KC; ++c) {
    T* gt = g + size_t((a * k + bb) * k + c) * np * nq;
    for (int j = 0; j < PB; ++j)
      for (int v = 0; v < VB; ++v) {
        T* dst = gt + size_t(p0 + j) * nq + q0 + v * L;
        hn::StoreU(hn::Add(hn::LoadU(d, dst), acc[c][j][v]), d, dst);
      }
  }
}

// Blocks of PB values of p from p0 on, then the rest in blocks of PB/2, PB/4, ... 1.
template <typename T, int KC, int PB, int VB, bool ShiftP>
void grad_plane_p(const T* pb, const T* qb, int n, int np, int nq, int k, int a, int bb, int px,
                  int p0, int q0, T* g) {
  for (; p0 + PB <= np; p0 += PB)
    grad_plane_block<T, KC, PB, VB, ShiftP>(pb, qb, n, np, nq, k, a, bb, px, p0, q0, g);
  if constexpr (PB > 1)
    grad_plane_p<T, KC, PB / 2, VB, ShiftP>(pb, qb, n, np, nq, k, a, bb, px, p0, q0, g);
}

// Registers: KC * PB * VB accumulators, at most 24 with 32 registers, 12 with 16.
constexpr int grad_accumulators = kFewRegisters ? 12 : 24;

template <typename T, int KC, int VB, bool ShiftP>
void grad_plane_q(const T* pb, const T* qb, int n, int np, int nq, int k, int a, int bb, int px,
                  int q0, T* g) {
  constexpr int PB = fit_power_of_two(grad_accumulators, KC * VB, 8);
  grad_plane_p<T, KC, PB, VB, ShiftP>(pb, qb, n, np, nq, k, a, bb, px, 0, q0, g);
}

template <typename T, int KC, bool ShiftP>
void grad_plane(const T* pb, const T* qb, int n, int np, int nq, int k, int px, T* g) {
  const int lanes = int(hn::Lanes(Tag<T>())), nv = nq / lanes;
  // Vectors of q per block: 4, or with 16 registers and three z-taps 2 (3 x 2 x PB accumulators
  // and the 2 vectors of q).
  constexpr int kMaxVB = kFewRegisters && KC == 3 ? 2 : 4;
  for (int a = 0; a < k; ++a)
    for (int bb = 0; bb < k; ++bb) {
      int v0 = 0;
      for (; v0 + kMaxVB <= nv; v0 += kMaxVB)
        grad_plane_q<T, KC, kMaxVB, ShiftP>(pb, qb, n, np, nq, k, a, bb, px, v0 * lanes, g);
      if (nv - v0 == 3)
        grad_plane_q<T, KC, 3, ShiftP>(pb, qb, n, np, nq, k, a, bb, px, v0 * lanes, g);
      else if (nv - v0 == 2)
        grad_plane_q<T, KC, 2, ShiftP>(pb, qb, n, np, nq, k, a, bb, px, v0 * lanes, g);
      else if (nv - v0 == 1)
        grad_plane_q<T, KC, 1, ShiftP>(pb, qb, n, np, nq, k, a, bb, px, v0 * lanes, g);
    }
}

template <typename T, bool ShiftP>
void grad_fast(const Tensor<T>& p, const Tensor<T>& q, int k, T* g, AlignedVector<T>& scratch) {
  const int n = p.n, np = p.channels, nq = q.channels, k3 = k * k * k, r = k / 2, zlen = n + 2 * r;
  const size_t gsize = size_t(k3) * np * nq;
  const int threads = omp_get_max_threads();
  // The shifted operand, z-padded.
  const Tensor<T>& shifted = ShiftP ? p : q;
  const int cs = shifted.channels;
  const T* padded_data = z_padded(shifted, r);
  const size_t padded_field = size_t(n) * n * zlen * cs;
  scratch.assign(gsize * threads, T(0));  // capacity is kept between calls
#pragma omp parallel if (p.size() * nq * k3 > kParallelMinWork)
  {
    T* gl = scratch.data() + gsize * omp_get_thread_num();
#pragma omp for collapse(2) schedule(static)
    for (int b = 0; b < p.batch; ++b)
      for (int px = 0; px < n; ++px) {
        const T* pb = ShiftP ? padded_data + b * padded_field : p.field(b);
        const T* qb = ShiftP ? q.field(b) : padded_data + b * padded_field;
        if (k == 3)
          grad_plane<T, 3, ShiftP>(pb, qb, n, np, nq, k, px, gl);
        else
          grad_plane<T, 1, ShiftP>(pb, qb, n, np, nq, k, px, gl);
      }
    const int used = omp_get_num_threads();
#pragma omp for schedule(static)
    for (size_t e = 0; e < gsize; ++e) {
      T s = T(0);
      for (int t = 0; t < used; ++t) s += scratch[gsize * t + e];
      g[e] += s;
    }
  }
}

// The kernel for a shape, by the target's width: a fast kernel where the channel counts (or the
// grid side) suit the vectors, the reference loop otherwise.
// The scalar fallback has one lane: its kernels are the reference loops (and the fast kernels are
// not compiled for it).
constexpr bool kVectorTarget = HWY_TARGET != HWY_SCALAR && HWY_TARGET != HWY_EMU128;

// The fast kernels take the kernel unflipped: a flipped one (the transposed convolution) has its
// taps reversed once here, into a buffer kept between calls. Conv3d's weights have tap_stride =
// in x out (in_stride, out_stride = out, 1 or 1, in), which the kernels rely on.
template <typename T>
ConvWeights<T> taps_reversed(ConvWeights<T> w, int k3) {
  static thread_local AlignedVector<T> reversed;
  reversed.resize(size_t(k3) * w.tap_stride);
  for (int tap = 0; tap < k3; ++tap)
    std::copy_n(w.w + size_t(k3 - 1 - tap) * w.tap_stride, w.tap_stride,
                reversed.data() + size_t(tap) * w.tap_stride);
  return {reversed.data(), w.tap_stride, w.in_stride, w.out_stride};
}

template <typename T>
void forward_impl(const Tensor<T>& x, int kernel, ConvWeights<T> w, const T* bias, bool flip,
                  Activation<T> relu, Tensor<T>& y, ConvPath path) {
  const size_t lanes = hn::Lanes(Tag<T>());
  const int k3 = kernel * kernel * kernel;
  const bool fast = kVectorTarget && path == ConvPath::automatic &&
                    w.tap_stride == size_t(x.channels) * y.channels;
  if (!fast) return conv_reference(x, kernel, w, bias, flip, relu, y);
  if constexpr (kVectorTarget) {
    const ConvWeights<T> wf = flip ? taps_reversed(w, k3) : w;
    if (w.out_stride == 1 && y.channels % lanes == 0)
      conv_fast(x, kernel, wf, bias, relu, y, true);
    else if (w.in_stride == 1 &&
             (x.channels == int(lanes) || (kFewRegisters && x.channels % int(lanes) == 0)))
      // Dot products: one vector of inputs per voxel; or, with 16 registers, any whole number of
      // vectors (the z-vectorised kernel's blocks are one row there, and its transposed copy of
      // the input cost a third of its time: AVX2's 32^3 16->2 runs 1.3-1.6x faster this way).
      conv_fast(x, kernel, wf, bias, relu, y, false);
    else if (y.channels < int(lanes) &&
             (x.n == int(lanes) || x.n == 2 * int(lanes) || x.n == 4 * int(lanes)) &&
             x.n % 8 == 0)  // 8: rows per block
      conv_z_vectorised(x, kernel, wf, bias, relu, y);
    else if (w.in_stride == 1 && x.channels % lanes == 0)
      conv_fast(x, kernel, wf, bias, relu, y, false);
    else
      conv_reference(x, kernel, w, bias, flip, relu, y);
  }
}

template <typename T>
void weight_grad_impl(const Tensor<T>& x, const Tensor<T>& dy, int kernel, bool in_major, T* g,
                      ConvPath path, AlignedVector<T>& scratch) {
  const size_t lanes = hn::Lanes(Tag<T>());
  if constexpr (!kVectorTarget)
    weight_grad_reference(x, dy, kernel, in_major, g);
  else if (path == ConvPath::automatic && in_major && dy.channels % lanes == 0)
    grad_fast<T, true>(x, dy, kernel, g, scratch);
  else if (path == ConvPath::automatic && !in_major && x.channels % lanes == 0)
    grad_fast<T, false>(dy, x, kernel, g, scratch);
  else
    weight_grad_reference(x, dy, kernel, in_major, g);
}

}  // namespace

// The dispatched entry points (HWY_EXPORT takes plain functions, one per element type).
void ForwardF32(const Tensor<float>& x, int kernel, ConvWeights<float> w, const float* bias,
                bool flip, Activation<float> relu, Tensor<float>& y, ConvPath path) {
  forward_impl(x, kernel, w, bias, flip, relu, y, path);
}
void ForwardF64(const Tensor<double>& x, int kernel, ConvWeights<double> w, const double* bias,
                bool flip, Activation<double> relu, Tensor<double>& y, ConvPath path) {
  forward_impl(x, kernel, w, bias, flip, relu, y, path);
}
void WeightGradF32(const Tensor<float>& x, const Tensor<float>& dy, int kernel, bool in_major,
                   float* g, ConvPath path, AlignedVector<float>& scratch) {
  weight_grad_impl(x, dy, kernel, in_major, g, path, scratch);
}
void WeightGradF64(const Tensor<double>& x, const Tensor<double>& dy, int kernel, bool in_major,
                   double* g, ConvPath path, AlignedVector<double>& scratch) {
  weight_grad_impl(x, dy, kernel, in_major, g, path, scratch);
}

}  // namespace HWY_NAMESPACE
}  // namespace ff
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace ff {

HWY_EXPORT(ForwardF32);
HWY_EXPORT(ForwardF64);
HWY_EXPORT(WeightGradF32);
HWY_EXPORT(WeightGradF64);

namespace {

void check_kernel(int k) {
  if (k != 1 && k != 3)
    throw Error("conv3d", "kernel size must be 1 or 3, got " + std::to_string(k));
}

}  // namespace

template <typename T>
void conv3d_forward(const Tensor<T>& x, int kernel, ConvWeights<T> w, const T* bias, bool flip,
                    Activation<T> relu, Tensor<T>& y, ConvPath path) {
  check_kernel(kernel);
  detail::apply_simd_target_from_environment();
  if constexpr (std::is_same_v<T, float>)
    HWY_DYNAMIC_DISPATCH(ForwardF32)(x, kernel, w, bias, flip, relu, y, path);
  else
    HWY_DYNAMIC_DISPATCH(ForwardF64)(x, kernel, w, bias, flip, relu, y, path);
}

template <typename T>
void conv3d_weight_grad(const Tensor<T>& x, const Tensor<T>& dy, int kernel, bool in_major, T* g,
                        ConvPath path, AlignedVector<T>& scratch) {
  check_kernel(kernel);
  detail::apply_simd_target_from_environment();
  if constexpr (std::is_same_v<T, float>)
    HWY_DYNAMIC_DISPATCH(WeightGradF32)(x, dy, kernel, in_major, g, path, scratch);
  else
    HWY_DYNAMIC_DISPATCH(WeightGradF64)(x, dy, kernel, in_major, g, path, scratch);
}

template <typename T>
Conv3d<T>::Conv3d(int in_channels, int out_channels, int kernel, const std::string& name)
    : weight(name + ".weight", size_t(kernel) * kernel * kernel * in_channels * out_channels),
      bias(name + ".bias", size_t(out_channels)),
      in_(in_channels),
      out_(out_channels),
      k_(kernel) {
  check_kernel(kernel);
  if (in_channels < 1 || out_channels < 1) throw Error(name, "channel counts must be positive");
}

template <typename T>
void Conv3d<T>::init_default(uint64_t seed, uint64_t stream) {
  const CounterRng rng(seed, stream);
  const double bound = 1.0 / std::sqrt(double(in_ * taps()));
  for (size_t i = 0; i < weight.size(); ++i)
    weight.value[i] = T(bound * (2.0 * rng.uniform(i) - 1.0));
  for (size_t i = 0; i < bias.size(); ++i)
    bias.value[i] = T(bound * (2.0 * rng.uniform(weight.size() + i) - 1.0));
}

template <typename T>
void Conv3d<T>::init_zero() {
  for (auto& v : weight.value) v = T(0);
  for (auto& v : bias.value) v = T(0);
}

template <typename T>
void Conv3d<T>::refresh_transposed() {
  transposed_.resize(weight.size());
  const int k3 = taps();
  for (int t = 0; t < k3; ++t)
    for (int i = 0; i < in_; ++i)
      for (int o = 0; o < out_; ++o)
        transposed_[(size_t(t) * out_ + o) * in_ + i] =
            weight.value[(size_t(t) * in_ + i) * out_ + o];
}

template <typename T>
void Conv3d<T>::forward(const Tensor<T>& x, Tensor<T>& y, Activation<T> relu) {
  if (x.channels != in_)
    throw Error(weight.name, "expected " + std::to_string(in_) + " input channels, got " +
                                 std::to_string(x.channels));
  y.resize(x.batch, x.n, out_);
  const size_t lanes = simd_lanes<T>();
  if (out_ % lanes != 0 && in_ % lanes == 0) {
    refresh_transposed();
    conv3d_forward(x, k_, ConvWeights<T>{transposed_.data(), size_t(in_) * out_, 1, size_t(in_)},
                   bias.value.data(), false, relu, y, path);
  } else {
    conv3d_forward(x, k_, ConvWeights<T>{weight.value.data(), size_t(in_) * out_, size_t(out_), 1},
                   bias.value.data(), false, relu, y, path);
  }
}

template <typename T>
void Conv3d<T>::backward(const Tensor<T>& x, const Tensor<T>& dy, Tensor<T>* dx) {
  const size_t lanes = simd_lanes<T>();
  const size_t voxels = dy.size() / out_;
  // Bias: sum of dy over all voxels, per-thread partial sums (kept between calls).
  {
    const int threads = dy.size() > kParallelMinWork ? omp_get_max_threads() : 1;
    bias_scratch_.assign(size_t(threads) * out_, T(0));
#pragma omp parallel num_threads(threads)
    {
      T* partial = bias_scratch_.data() + size_t(omp_get_thread_num()) * out_;
#pragma omp for schedule(static)
      for (size_t v = 0; v < voxels; ++v)
        for (int o = 0; o < out_; ++o) partial[o] += dy.data[v * out_ + o];
    }
    for (int t = 0; t < threads; ++t)
      for (int o = 0; o < out_; ++o) bias.grad[o] += bias_scratch_[size_t(t) * out_ + o];
  }
  // Weights.
  if (path == ConvPath::automatic && out_ % lanes != 0 && in_ % lanes == 0) {
    transposed_grad_.assign(weight.size(), T(0));
    conv3d_weight_grad(x, dy, k_, false, transposed_grad_.data(), path, grad_scratch_);
    const int k3 = taps();
    for (int t = 0; t < k3; ++t)
      for (int i = 0; i < in_; ++i)
        for (int o = 0; o < out_; ++o)
          weight.grad[(size_t(t) * in_ + i) * out_ + o] +=
              transposed_grad_[(size_t(t) * out_ + o) * in_ + i];
  } else {
    conv3d_weight_grad(x, dy, k_, true, weight.grad.data(), path, grad_scratch_);
  }
  if (dx) backward_input(dy, *dx);
}

template <typename T>
void Conv3d<T>::backward_input(const Tensor<T>& dy, Tensor<T>& dx) {
  // The transposed convolution, w'(tap, i' = o, o' = i) = w(flip tap, i, o).
  dx.resize(dy.batch, dy.n, in_);
  if (in_ % simd_lanes<T>() == 0) {
    refresh_transposed();
    conv3d_forward(dy, k_, ConvWeights<T>{transposed_.data(), size_t(in_) * out_, size_t(in_), 1},
                   static_cast<const T*>(nullptr), true, Activation<T>{}, dx, path);
  } else {
    conv3d_forward(dy, k_, ConvWeights<T>{weight.value.data(), size_t(in_) * out_, 1, size_t(out_)},
                   static_cast<const T*>(nullptr), true, Activation<T>{}, dx, path);
  }
}

template void conv3d_forward(const Tensor<float>&, int, ConvWeights<float>, const float*, bool,
                             Activation<float>, Tensor<float>&, ConvPath);
template void conv3d_forward(const Tensor<double>&, int, ConvWeights<double>, const double*, bool,
                             Activation<double>, Tensor<double>&, ConvPath);
template void conv3d_weight_grad(const Tensor<float>&, const Tensor<float>&, int, bool, float*,
                                 ConvPath, AlignedVector<float>&);
template void conv3d_weight_grad(const Tensor<double>&, const Tensor<double>&, int, bool, double*,
                                 ConvPath, AlignedVector<double>&);
template class Conv3d<float>;
template class Conv3d<double>;

}  // namespace ff
#endif  // HWY_ONCE
