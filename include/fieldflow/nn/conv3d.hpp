#pragma once
// 3D convolution with periodic (circular) padding on channels-last tensors (nn/tensor.hpp),
// kernel size 1 or 3, any channel counts, with bias. Forward, backward to the input (the
// transposed convolution: the same kernel with the taps flipped and in/out exchanged) and
// backward to weights and bias.
//
// The fast kernels (Highway SIMD, dispatched at run time to the CPU's best target: core/simd.hpp;
// OpenMP over batch x x-planes) vectorise either over output
// channels (when their count is a multiple of the SIMD width) or over input channels (dot
// products, for few outputs such as the last conv of a coupling net); other shapes take a plain
// reference loop, which is also the independent truth the tests compare the fast kernels with.
#include <cstdint>
#include <string>
#include <vector>

#include "fieldflow/core/simd.hpp"
#include "fieldflow/nn/param.hpp"
#include "fieldflow/nn/tensor.hpp"

namespace ff {

// Weights w(tap, i, o) at w[tap * tap_stride + i * in_stride + o * out_stride]; tap =
// (a * k + b) * k + c reads the input at offset (a - k/2, b - k/2, c - k/2) from the output voxel.
template <typename T>
struct ConvWeights {
  const T* w;
  size_t tap_stride, in_stride, out_stride;
};

enum class ConvPath { automatic, reference };

// Activation fused into a convolution's output: none, or y = max(y, slope * y): ReLU for
// slope 0, LeakyReLU for 0 < slope < 1.
template <typename T>
struct Activation {
  bool on = false;
  T slope = T(0);
};

// y(v, o) = bias(o) + sum_{tap, i} x(v + offset(tap), i) w(tap', i, o), tap' = tap or, when
// flip, k^3 - 1 - tap. y must have the output shape (same batch and n). relu: the activation.
template <typename T>
void conv3d_forward(const Tensor<T>& x, int kernel, ConvWeights<T> w, const T* bias, bool flip,
                    Activation<T> relu, Tensor<T>& y, ConvPath path = ConvPath::automatic);

// g(tap, p, q) += sum_v x(v + offset(tap), i) dy(v, o), stored with (p, q) = (i, o) when
// in_major, else (o, i). g has k^3 * in * out entries. scratch holds per-thread partial sums.
template <typename T>
void conv3d_weight_grad(const Tensor<T>& x, const Tensor<T>& dy, int kernel, bool in_major, T* g,
                        ConvPath path, AlignedVector<T>& scratch);

template <typename T>
class Conv3d {
 public:
  Conv3d() = default;
  Conv3d(int in_channels, int out_channels, int kernel, const std::string& name);

  int in_channels() const { return in_; }
  int out_channels() const { return out_; }
  int kernel() const { return k_; }
  int taps() const { return k_ * k_ * k_; }

  // PyTorch's default initialisation (uniform in +-1/sqrt(fan_in)), from a counter-based RNG.
  void init_default(uint64_t seed, uint64_t stream);
  void init_zero();

  // y = act(conv(x) + bias). y is resized.
  void forward(const Tensor<T>& x, Tensor<T>& y, Activation<T> act = {});
  // From dL/dy and the forward input x: accumulates dL/dweight and dL/dbias and, when dx is
  // given, writes dL/dx (resized).
  void backward(const Tensor<T>& x, const Tensor<T>& dy, Tensor<T>* dx);
  // dL/dx alone (resized), no weight or bias gradient: what input-only gradients need.
  void backward_input(const Tensor<T>& dy, Tensor<T>& dx);

  Param<T> weight;  // [tap][in][out]
  Param<T> bias;    // [out]
  ConvPath path = ConvPath::automatic;

  std::vector<Param<T>*> params() { return {&weight, &bias}; }

 private:
  void refresh_transposed();
  int in_ = 0, out_ = 0, k_ = 1;
  AlignedVector<T> transposed_;  // [tap][out][in]
  AlignedVector<T> transposed_grad_;
  AlignedVector<T> grad_scratch_;
  AlignedVector<T> bias_scratch_;
};

}  // namespace ff
