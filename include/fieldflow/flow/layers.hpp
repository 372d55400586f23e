#pragma once
// The invertible steps of a multi-scale RealNVP flow on channels-last tensors (nn/tensor.hpp):
// affine couplings (checkerboard and channel masks), squeeze, actnorm and 1x1x1 channel mixing.
// Each step computes y = f(x) and adds log|det df/dx| per field, inverts, and back-propagates:
// from dL/dy and dL/dlogdet (per field) to dL/dx and/or dL/dparams, and through its inverse
// (from dL/dx to dL/dy, for gradients with respect to a flow's latents).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fieldflow/core/fft.hpp"
#include "fieldflow/nn/conv3d.hpp"
#include "fieldflow/nn/param.hpp"
#include "fieldflow/nn/tensor.hpp"

namespace ff {

// What a backward pass computes.
enum class Backprop {
  all,     // parameter gradients (accumulated into Param::grad) and dL/dx
  params,  // parameter gradients only (the first step of a flow: dL/dx is not needed)
  input,   // dL/dx only: no parameter gradient is computed or touched (no weight-grad kernels)
};

template <typename T>
class FlowStep {
 public:
  virtual ~FlowStep() = default;
  virtual std::string name() const = 0;
  // Output shape (n, channels) for an input of shape (n, channels).
  virtual std::pair<int, int> output_shape(int n, int channels) const { return {n, channels}; }
  // y = f(x) (y resized); logdet[b] += log|det df/dx| of field b. Keeps what backward needs.
  virtual void forward(const Tensor<T>& x, Tensor<T>& y, T* logdet) = 0;
  virtual void inverse(const Tensor<T>& y, Tensor<T>& x) = 0;
  // x is the input of the latest forward call. dx is written (resized) unless what is params.
  virtual void backward(const Tensor<T>& x, const Tensor<T>& dy, const T* dlogdet, Tensor<T>& dx,
                        Backprop what) = 0;
  // Through the inverse: y is the input of the latest inverse call and dx = dL/dx for its output
  // x = f^-1(y); writes dy = dL/dy (resized). No parameter gradient.
  virtual void inverse_backward(const Tensor<T>& y, const Tensor<T>& dx, Tensor<T>& dy) = 0;
  virtual std::vector<Param<T>*> params() { return {}; }
};

enum class ScaleBound { tanh, tanh_scale, softclamp };
ScaleBound parse_scale_bound(const std::string& text);
const char* to_string(ScaleBound bound);

enum class CouplingMask { checkerboard, channel };

// Back-propagation scratch shared by all couplings of one flow (they run one at a time).
template <typename T>
struct CouplingScratch {
  Tensor<T> dout, dh2, dh1, dcond;
};

// Affine coupling y = x * exp(s) + t on the transformed part, (raw, t) = net(conditioning part),
// net = conv k^3 (C_in -> H) -> ReLU -> conv 1^3 (H -> H) -> ReLU -> conv k^3 (H -> 2 C_out)
// (LeakyReLU when negative_slope > 0),
// the last conv zero-initialised (identity at start). s = tanh(raw), scale_c * tanh(raw) with a
// learned per-channel scale (init 1), or the soft clamp (2c/pi) atan(raw / c).
// Checkerboard: the net sees b*x with b = (x+y+z+parity) mod 2 and transforms all channels where
// b = 0. Channel: the first half conditions the second (swapped when parity is 1).
// With global_context the net's outputs also get G g, g (H) the box mean of its second hidden
// layer and G (2 C_out x H) zero-initialised: a coupling then sees box-wide statistics of its
// conditioning part (convolutions alone see a few voxels), e.g. how much of the box's mass the
// other half already holds. The box is the field the flow runs on (a tile, in tiled denoising).
template <typename T>
class AffineCoupling : public FlowStep<T> {
 public:
  AffineCoupling(std::string name, CouplingMask mask, int channels, int hidden, int kernel,
                 int parity, ScaleBound bound, double clamp,
                 std::shared_ptr<CouplingScratch<T>> scratch, double negative_slope,
                 bool global_context = false);
  std::string name() const override { return name_; }
  void forward(const Tensor<T>& x, Tensor<T>& y, T* logdet) override;
  void inverse(const Tensor<T>& y, Tensor<T>& x) override;
  void backward(const Tensor<T>& x, const Tensor<T>& dy, const T* dlogdet, Tensor<T>& dx,
                Backprop what) override;
  void inverse_backward(const Tensor<T>& y, const Tensor<T>& dx, Tensor<T>& dy) override;
  std::vector<Param<T>*> params() override;

  Conv3d<T> conv1, conv2, conv3;
  Param<T> scale;   // per transformed channel, used by ScaleBound::tanh_scale only
  Param<T> global;  // G [out][hidden] of global_context (empty without)
  CouplingMask mask() const { return mask_; }
  int parity() const { return parity_; }

 private:
  void run_net(const Tensor<T>& x);  // fills cond_, h1_, h2_, out_ (and pooled_)
  // global_context: dL/dh2 += the pooled path's share, from the net's cotangent in scratch dout;
  // accumulates dL/dG when params.
  void global_backward(bool params);
  // From dL/dnet in scratch dout back through the net of the latest run_net: accumulates the
  // parameter gradients when params, and when input adds dL/dcond to the conditioning part of d.
  void net_backward(bool params, bool input, Tensor<T>& d);
  // Shared voxel loop of backward and inverse_backward: d_out = d_in, the net's cotangent (scratch
  // dout) zero where the mask leaves voxels alone, and at each transformed entry
  // op(b, px, j, in, d_in, raw, t, d raw, d t, d_out) with raw and t the net's outputs.
  template <typename Op>
  void backprop_voxels(const Tensor<T>& in, const Tensor<T>& d_in, Tensor<T>& d_out, Op op);
  bool active(int px, int py, int pz) const {
    return mask_ == CouplingMask::channel || ((px + py + pz + parity_) & 1) == 0;
  }
  T bound(T raw, int j) const;
  T bound_derivative(T raw, int j) const;

  std::string name_;
  CouplingMask mask_;
  int channels_, cond_channels_, trans_channels_, trans_offset_, cond_offset_, parity_;
  ScaleBound bound_;
  T clamp_;
  T negative_slope_;  // 0: ReLU; > 0: LeakyReLU
  std::shared_ptr<CouplingScratch<T>> scratch_;
  Tensor<T> cond_, h1_, h2_, out_;
  std::vector<T> pooled_;  // global_context: per field, the box mean of h2_ [batch][hidden]
  std::vector<double> plane_sums_;  // per (field, x-plane) partial sums
};

// (C, n, n, n) -> (8C, n/2, n/2, n/2): voxel (2X+i, 2Y+j, 2Z+k) channel c goes to voxel (X, Y, Z)
// channel 8c + 4i + 2j + k (PyTorch's reshape/permute order).
template <typename T>
void squeeze(const Tensor<T>& x, Tensor<T>& y);
template <typename T>
void unsqueeze(const Tensor<T>& y, Tensor<T>& x);

template <typename T>
class Squeeze : public FlowStep<T> {
 public:
  explicit Squeeze(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  std::pair<int, int> output_shape(int n, int channels) const override {
    return {n / 2, 8 * channels};
  }
  void forward(const Tensor<T>& x, Tensor<T>& y, T*) override { squeeze(x, y); }
  void inverse(const Tensor<T>& y, Tensor<T>& x) override { unsqueeze(y, x); }
  void backward(const Tensor<T>&, const Tensor<T>& dy, const T*, Tensor<T>& dx,
                Backprop what) override {
    if (what != Backprop::params) unsqueeze(dy, dx);
  }
  void inverse_backward(const Tensor<T>&, const Tensor<T>& dx, Tensor<T>& dy) override {
    squeeze(dx, dy);
  }

 private:
  std::string name_;
};

// Per-channel statistics of an actnorm's input, for its data-dependent initialisation. Flat, so a
// caller can sum them over MPI ranks in one call: values = [sum_0 .. sum_{C-1}, sum of squares_0
// .. sum of squares_{C-1}, count], count being the number of voxels (over all fields) summed.
struct ActNormStats {
  std::vector<double> values;
  int channels() const { return int(values.size() / 2); }
  double sum(int c) const { return values[size_t(c)]; }
  double sum_squares(int c) const { return values[size_t(channels() + c)]; }
  double count() const { return values.back(); }
};
template <typename T>
ActNormStats actnorm_statistics(const Tensor<T>& x);

// Glow's actnorm: y = (x + bias_c) exp(log_scale_c). Its data-dependent initialisation is an
// explicit step (MultiScaleFlow::initialize_actnorms): initialize(stats) sets bias and log-scale so
// that data with those statistics comes out with mean 0 and variance 1 per channel. forward on an
// uninitialised layer throws.
template <typename T>
class ActNorm : public FlowStep<T> {
 public:
  ActNorm(std::string name, int channels);
  std::string name() const override { return name_; }
  void forward(const Tensor<T>& x, Tensor<T>& y, T* logdet) override;
  void inverse(const Tensor<T>& y, Tensor<T>& x) override;
  void backward(const Tensor<T>& x, const Tensor<T>& dy, const T* dlogdet, Tensor<T>& dx,
                Backprop what) override;
  void inverse_backward(const Tensor<T>& y, const Tensor<T>& dx, Tensor<T>& dy) override;
  std::vector<Param<T>*> params() override { return {&bias, &log_scale}; }
  void initialize(const ActNormStats& stats);

  Param<T> bias, log_scale;
  bool initialized = false;

 private:
  std::string name_;
  std::vector<T> scale_;
};

// A Fourier-diagonal linear map of each field and channel, y = F^-1(a(|k|) F x): one learned scale
// a_b = exp(log_scale_b) per bin b = floor(|k| / k_N * bins_per_nyquist) of the wavenumber in
// units of the grid's Nyquist (bins_per_nyquist = n/2 gives bins one fundamental wide, the P(k)
// estimator's). The bins are fixed in units of k_N, so the same scales apply on any grid of the
// same voxel size. a is real and even in k, so y is real, the map is symmetric (its own
// transpose) and log|det| = channels * (sum over all n^3 modes of log a(|k|)). The flow's first
// step when flow.calibration_bins > 0 (docs/flow.md): the identity at log_scale = 0, fitted after
// training by `fieldflow calibrate`.
template <typename T>
class SpectralCalibration : public FlowStep<T> {
 public:
  SpectralCalibration(std::string name, int bins_per_nyquist);
  // Scales needed to cover |k| up to sqrt(3) k_N.
  static int scale_count(int bins_per_nyquist);
  std::string name() const override { return name_; }
  void forward(const Tensor<T>& x, Tensor<T>& y, T* logdet) override;
  void inverse(const Tensor<T>& y, Tensor<T>& x) override;
  void backward(const Tensor<T>& x, const Tensor<T>& dy, const T* dlogdet, Tensor<T>& dx,
                Backprop what) override;
  void inverse_backward(const Tensor<T>& y, const Tensor<T>& dx, Tensor<T>& dy) override;
  std::vector<Param<T>*> params() override { return {&log_scale}; }
  int bins_per_nyquist() const { return bins_; }

  // Per bin, summed over fields and channels: sum over the bin's modes of Re(conj(G_k) X_k) / n^3
  // = <g, x restricted to the bin>. With g = dL/dx of a density L at x this is the derivative of
  // L(F^-1(exp(t_b) F x)) at t = 0: the maximum-likelihood fit of the scales needs only it.
  std::vector<double> bin_inner_products(const Tensor<T>& x, const Tensor<T>& g);
  // Modes (of all n^3) per bin on an n^3 grid.
  std::vector<double> bin_mode_counts(int n);

  Param<T> log_scale;

 private:
  void prepare(int n);  // bins and FFT for an n^3 grid
  // out = F^-1(exp(sign * log_scale) F in), per field and channel.
  void apply(const Tensor<T>& in, Tensor<T>& out, double sign);

  std::string name_;
  int bins_;
  int n_ = 0;
  std::vector<int> mode_bin_;        // per half-complex mode
  std::vector<double> mode_counts_;  // per bin, of all n^3 modes
  std::unique_ptr<RealFft3d<double>> fft_;
  std::vector<std::complex<double>> spectrum_;
};

enum class MixingKind { none, permutation, orthogonal, lu };
MixingKind parse_mixing(const std::string& text);
const char* to_string(MixingKind kind);

// y(v) = W x(v) at every voxel, log|det| = voxels * log|det W|. permutation and orthogonal are
// fixed matrices (a random permutation; Q of the QR of a Gaussian matrix); lu is Glow's learned
// invertible 1x1x1 convolution W = P L (U + diag(sign exp(log_s))), P fixed, started at the LU of
// a random rotation or (identity) at W = I.
template <typename T>
class ChannelMixing : public FlowStep<T> {
 public:
  ChannelMixing(std::string name, int channels, MixingKind kind, uint64_t seed,
                bool identity = false);
  std::string name() const override { return name_; }
  void forward(const Tensor<T>& x, Tensor<T>& y, T* logdet) override;
  void inverse(const Tensor<T>& y, Tensor<T>& x) override;
  void backward(const Tensor<T>& x, const Tensor<T>& dy, const T* dlogdet, Tensor<T>& dx,
                Backprop what) override;
  void inverse_backward(const Tensor<T>& y, const Tensor<T>& dx, Tensor<T>& dy) override;
  std::vector<Param<T>*> params() override;
  MixingKind kind() const { return kind_; }
  int channels() const { return channels_; }

  // Fixed kinds: the matrix, row-major C x C. lu: P (as a permutation: row r of W is row
  // perm[r] of L U~), sign, lower, upper (strict parts, row-major C x C) and log_s.
  std::vector<double> fixed;
  std::vector<int> perm;
  std::vector<double> sign;
  Param<T> lower, upper, log_s;

  std::vector<double> matrix() const;  // the current W, row-major

 private:
  void lu_factors(std::vector<double>& l, std::vector<double>& u) const;
  void refresh_matrix();  // w_ (and l_, u_ for lu) from the current parameters

  std::string name_;
  int channels_;
  MixingKind kind_;
  std::vector<T> w_, w_inv_, dw_;
  std::vector<double> l_, u_, m_, dm_, dl_, du_;  // workspaces, kept between calls
};

}  // namespace ff
