// Affine couplings. See include/fieldflow/flow/layers.hpp.
#include <cmath>
#include <numbers>

#include "fieldflow/core/error.hpp"
#include "fieldflow/flow/layers.hpp"

namespace ff {

ScaleBound parse_scale_bound(const std::string& text) {
  if (text == "tanh") return ScaleBound::tanh;
  if (text == "tanh_scale") return ScaleBound::tanh_scale;
  if (text == "softclamp") return ScaleBound::softclamp;
  throw Error("scale_bound", "expected tanh, tanh_scale or softclamp, got \"" + text + "\"");
}

const char* to_string(ScaleBound bound) {
  switch (bound) {
    case ScaleBound::tanh:
      return "tanh";
    case ScaleBound::tanh_scale:
      return "tanh_scale";
    case ScaleBound::softclamp:
      return "softclamp";
  }
  return "?";
}

namespace {
// dh *= (h > 0 ? 1 : slope), h the (leaky) ReLU's output (same sign as its input). Written as
// an unconditional multiplication by a factor chosen first: GCC turns `d = h > 0 ? d : slope * d`
// into a branch per element and a conditional store, which it cannot vectorise, and the signs
// are random, so half the branches mispredict (13% of a training step at 1 thread).
template <typename T>
void relu_backward(const Tensor<T>& h, Tensor<T>& dh, T slope) {
  const size_t size = dh.size();
  const T* hv = h.data.data();
  T* d = dh.data.data();
#pragma omp parallel for simd schedule(static) if (size > kParallelMinWork)
  for (size_t i = 0; i < size; ++i) {
    T factor = slope;
    if (hv[i] > T(0)) factor = T(1);
    d[i] = factor * d[i];
  }
}
}  // namespace

template <typename T>
AffineCoupling<T>::AffineCoupling(std::string name, CouplingMask mask, int channels, int hidden,
                                  int kernel, int parity, ScaleBound bound, double clamp,
                                  std::shared_ptr<CouplingScratch<T>> scratch,
                                  double negative_slope, bool global_context)
    : name_(std::move(name)),
      mask_(mask),
      channels_(channels),
      parity_(parity & 1),
      bound_(bound),
      clamp_(T(clamp)),
      negative_slope_(T(negative_slope)),
      scratch_(std::move(scratch)) {
  if (!(negative_slope >= 0 && negative_slope < 1))
    throw Error(name_, "leaky ReLU slope must lie in [0, 1)");
  if (mask == CouplingMask::checkerboard) {
    cond_channels_ = trans_channels_ = channels;
    cond_offset_ = trans_offset_ = 0;
  } else {
    if (channels < 2 || channels % 2 != 0)
      throw Error(
          name_, "a channel coupling needs an even channel count, got " + std::to_string(channels));
    cond_channels_ = trans_channels_ = channels / 2;
    cond_offset_ = parity_ ? channels / 2 : 0;
    trans_offset_ = parity_ ? 0 : channels / 2;
  }
  conv1 = Conv3d<T>(cond_channels_, hidden, kernel, name_ + ".conv1");
  conv2 = Conv3d<T>(hidden, hidden, 1, name_ + ".conv2");
  conv3 = Conv3d<T>(hidden, 2 * trans_channels_, kernel, name_ + ".conv3");
  conv3.init_zero();
  scale = Param<T>(name_ + ".scale", bound == ScaleBound::tanh_scale ? trans_channels_ : 0);
  for (auto& s : scale.value) s = T(1);
  global = Param<T>(name_ + ".global", global_context ? size_t(2 * trans_channels_) * hidden : 0);
  if (!scratch_) scratch_ = std::make_shared<CouplingScratch<T>>();
}

template <typename T>
std::vector<Param<T>*> AffineCoupling<T>::params() {
  std::vector<Param<T>*> p{&conv1.weight, &conv1.bias,   &conv2.weight,
                           &conv2.bias,   &conv3.weight, &conv3.bias};
  if (bound_ == ScaleBound::tanh_scale) p.push_back(&scale);
  if (!global.value.empty()) p.push_back(&global);
  return p;
}

template <typename T>
T AffineCoupling<T>::bound(T raw, int j) const {
  switch (bound_) {
    case ScaleBound::tanh:
      return std::tanh(raw);
    case ScaleBound::tanh_scale:
      return scale.value[j] * std::tanh(raw);
    case ScaleBound::softclamp:
      return T(2 / std::numbers::pi) * clamp_ * std::atan(raw / clamp_);
  }
  return raw;
}

template <typename T>
T AffineCoupling<T>::bound_derivative(T raw, int j) const {
  switch (bound_) {
    case ScaleBound::tanh: {
      const T th = std::tanh(raw);
      return T(1) - th * th;
    }
    case ScaleBound::tanh_scale: {
      const T th = std::tanh(raw);
      return scale.value[j] * (T(1) - th * th);
    }
    case ScaleBound::softclamp: {
      const T u = raw / clamp_;
      return T(2 / std::numbers::pi) / (T(1) + u * u);
    }
  }
  return T(1);
}

template <typename T>
void AffineCoupling<T>::run_net(const Tensor<T>& x) {
  const int n = x.n, C = channels_, Cc = cond_channels_;
  cond_.resize(x.batch, n, Cc);
#pragma omp parallel for collapse(2) schedule(static) if (x.size() > kParallelMinWork)
  for (int b = 0; b < x.batch; ++b)
    for (int px = 0; px < n; ++px)
      for (int py = 0; py < n; ++py)
        for (int pz = 0; pz < n; ++pz) {
          const T* in = &x.at(b, px, py, pz, 0);
          T* c = &cond_.at(b, px, py, pz, 0);
          if (mask_ == CouplingMask::checkerboard) {
            const bool keep = !active(px, py, pz);
            for (int j = 0; j < C; ++j) c[j] = keep ? in[j] : T(0);
          } else {
            for (int j = 0; j < Cc; ++j) c[j] = in[cond_offset_ + j];
          }
        }
  const Activation<T> act{true, negative_slope_};
  conv1.forward(cond_, h1_, act);
  conv2.forward(h1_, h2_, act);
  conv3.forward(h2_, out_);
  if (global.value.empty()) return;
  // out += G g per field, g the box mean of h2 (summed in double: 32^3 voxels).
  const int H = h2_.channels, O = out_.channels;
  const size_t voxels = size_t(n) * n * n;
  pooled_.assign(size_t(x.batch) * H, T(0));
#pragma omp parallel for schedule(static) if (h2_.size() > kParallelMinWork)
  for (int b = 0; b < x.batch; ++b) {
    std::vector<double> sum(size_t(H), 0.0);
    const T* h = &h2_.at(b, 0, 0, 0, 0);
    for (size_t v = 0; v < voxels; ++v)
      for (int c = 0; c < H; ++c) sum[c] += double(h[v * H + c]);
    T* g = &pooled_[size_t(b) * H];
    for (int c = 0; c < H; ++c) g[c] = T(sum[c] / double(voxels));
    std::vector<T> shift(size_t(O), T(0));
    for (int o = 0; o < O; ++o)
      for (int c = 0; c < H; ++c) shift[o] += global.value[size_t(o) * H + c] * g[c];
    T* out = &out_.at(b, 0, 0, 0, 0);
    for (size_t v = 0; v < voxels; ++v)
      for (int o = 0; o < O; ++o) out[v * O + o] += shift[o];
  }
}

template <typename T>
void AffineCoupling<T>::global_backward(bool params) {
  CouplingScratch<T>& s = *scratch_;
  const int batch = h2_.batch, n = h2_.n, H = h2_.channels, O = out_.channels;
  const size_t voxels = size_t(n) * n * n;
  std::vector<double> dshift(size_t(batch) * O, 0.0);  // dL/d(G g) per field: dout summed
#pragma omp parallel for schedule(static) if (h2_.size() > kParallelMinWork)
  for (int b = 0; b < batch; ++b) {
    const T* d = &s.dout.at(b, 0, 0, 0, 0);
    double* ds = &dshift[size_t(b) * O];
    for (size_t v = 0; v < voxels; ++v)
      for (int o = 0; o < O; ++o) ds[o] += double(d[v * O + o]);
    std::vector<T> dg(size_t(H), T(0));  // dL/dg / voxels: each voxel's share of dL/dh2
    for (int o = 0; o < O; ++o)
      for (int c = 0; c < H; ++c) dg[c] += global.value[size_t(o) * H + c] * T(ds[o]);
    for (int c = 0; c < H; ++c) dg[c] /= T(voxels);
    T* dh = &s.dh2.at(b, 0, 0, 0, 0);
    for (size_t v = 0; v < voxels; ++v)
      for (int c = 0; c < H; ++c) dh[v * H + c] += dg[c];
  }
  if (!params) return;
  for (int b = 0; b < batch; ++b)
    for (int o = 0; o < O; ++o)
      for (int c = 0; c < H; ++c)
        global.grad[size_t(o) * H + c] += T(dshift[size_t(b) * O + o]) * pooled_[size_t(b) * H + c];
}

template <typename T>
void AffineCoupling<T>::forward(const Tensor<T>& x, Tensor<T>& y, T* logdet) {
  if (x.channels != channels_)
    throw Error(name_, "expected " + std::to_string(channels_) + " channels, got " +
                           std::to_string(x.channels));
  run_net(x);
  y.resize_like(x);
  const int n = x.n, C = channels_, Ct = trans_channels_;
  // One parallel loop over (field, x-plane); per-plane log-det partial sums, added up serially.
  plane_sums_.assign(size_t(x.batch) * n, 0.0);
#pragma omp parallel for collapse(2) schedule(static) if (x.size() > kParallelMinWork)
  for (int b = 0; b < x.batch; ++b)
    for (int px = 0; px < n; ++px) {
      T sum = T(0);
      for (int py = 0; py < n; ++py)
        for (int pz = 0; pz < n; ++pz) {
          const T* in = &x.at(b, px, py, pz, 0);
          T* out = &y.at(b, px, py, pz, 0);
          const T* net = &out_.at(b, px, py, pz, 0);
          for (int c = 0; c < C; ++c) out[c] = in[c];
          if (!active(px, py, pz)) continue;
          for (int j = 0; j < Ct; ++j) {
            const T s = bound(net[j], j);
            out[trans_offset_ + j] = in[trans_offset_ + j] * std::exp(s) + net[Ct + j];
            sum += s;
          }
        }
      plane_sums_[size_t(b) * n + px] = double(sum);
    }
  for (int b = 0; b < x.batch; ++b) {
    double sum = 0.0;
    for (int px = 0; px < n; ++px) sum += plane_sums_[size_t(b) * n + px];
    logdet[b] += T(sum);
  }
}

template <typename T>
void AffineCoupling<T>::inverse(const Tensor<T>& y, Tensor<T>& x) {
  run_net(y);  // the conditioning part of y equals that of x
  x.resize_like(y);
  const int n = y.n, C = channels_, Ct = trans_channels_;
#pragma omp parallel for collapse(2) schedule(static) if (y.size() > kParallelMinWork)
  for (int b = 0; b < y.batch; ++b)
    for (int px = 0; px < n; ++px)
      for (int py = 0; py < n; ++py)
        for (int pz = 0; pz < n; ++pz) {
          const T* in = &y.at(b, px, py, pz, 0);
          T* out = &x.at(b, px, py, pz, 0);
          const T* net = &out_.at(b, px, py, pz, 0);
          for (int c = 0; c < C; ++c) out[c] = in[c];
          if (!active(px, py, pz)) continue;
          for (int j = 0; j < Ct; ++j) {
            const T s = bound(net[j], j);
            out[trans_offset_ + j] = (in[trans_offset_ + j] - net[Ct + j]) * std::exp(-s);
          }
        }
}

template <typename T>
template <typename Op>
void AffineCoupling<T>::backprop_voxels(const Tensor<T>& in, const Tensor<T>& d_in,
                                        Tensor<T>& d_out, Op op) {
  CouplingScratch<T>& s = *scratch_;
  const int n = in.n, C = channels_, Ct = trans_channels_;
  s.dout.resize(in.batch, n, 2 * Ct);
  d_out.resize_like(in);
#pragma omp parallel for collapse(2) schedule(static) if (in.size() > kParallelMinWork)
  for (int b = 0; b < in.batch; ++b)
    for (int px = 0; px < n; ++px)
      for (int py = 0; py < n; ++py)
        for (int pz = 0; pz < n; ++pz) {
          const T* iv = &in.at(b, px, py, pz, 0);
          const T* div = &d_in.at(b, px, py, pz, 0);
          const T* net = &out_.at(b, px, py, pz, 0);
          T* dnet = &s.dout.at(b, px, py, pz, 0);
          T* dov = &d_out.at(b, px, py, pz, 0);
          for (int c = 0; c < C; ++c) dov[c] = div[c];
          if (!active(px, py, pz)) {
            for (int j = 0; j < 2 * Ct; ++j) dnet[j] = T(0);
            continue;
          }
          for (int j = 0; j < Ct; ++j) {
            const int c = trans_offset_ + j;
            op(b, px, j, iv[c], div[c], net[j], net[Ct + j], dnet[j], dnet[Ct + j], dov[c]);
          }
        }
}

template <typename T>
void AffineCoupling<T>::backward(const Tensor<T>& x, const Tensor<T>& dy, const T* dlogdet,
                                 Tensor<T>& dx, Backprop what) {
  const int n = x.n, Ct = trans_channels_;
  const bool params = what != Backprop::input;
  const bool tanh_scale = bound_ == ScaleBound::tanh_scale && params;
  // Per-plane partial sums of dL/dscale (tanh_scale only), added up serially.
  if (tanh_scale) plane_sums_.assign(size_t(x.batch) * n * Ct, 0.0);
  backprop_voxels(x, dy, dx,
                  [&](int b, int px, int j, T x_t, T dy_t, T raw, T, T& draw, T& dt, T& dx_t) {
                    T sv, derivative, th = T(0);
                    if (bound_ == ScaleBound::softclamp) {
                      sv = bound(raw, j);
                      derivative = bound_derivative(raw, j);
                    } else {
                      th = std::tanh(raw);
                      const T scale_j = bound_ == ScaleBound::tanh_scale ? scale.value[j] : T(1);
                      sv = scale_j * th;
                      derivative = scale_j * (T(1) - th * th);
                    }
                    const T e = std::exp(sv);
                    const T ds = dy_t * x_t * e + dlogdet[b];
                    draw = ds * derivative;
                    dt = dy_t;
                    dx_t = dy_t * e;
                    if (tanh_scale) plane_sums_[(size_t(b) * n + px) * Ct + j] += double(ds * th);
                  });
  if (tanh_scale)
    for (size_t plane = 0; plane < size_t(x.batch) * n; ++plane)
      for (int j = 0; j < Ct; ++j) scale.grad[j] += T(plane_sums_[plane * Ct + j]);
  net_backward(params, what != Backprop::params, dx);
}

template <typename T>
void AffineCoupling<T>::inverse_backward(const Tensor<T>& y, const Tensor<T>& dx, Tensor<T>& dy) {
  // x_t = (y_t - t) exp(-s), x_c = y_c, (s, t) from the net of y_c (kept by the latest inverse):
  // dL/dy_t = dL/dx_t exp(-s), dL/dt = -dL/dx_t exp(-s), dL/ds = -dL/dx_t x_t.
  backprop_voxels(y, dx, dy,
                  [&](int, int, int j, T y_t, T dx_t, T raw, T t, T& draw, T& dt, T& dy_t) {
                    const T e_inv = std::exp(-bound(raw, j));
                    dy_t = dx_t * e_inv;
                    draw = -dx_t * (y_t - t) * e_inv * bound_derivative(raw, j);
                    dt = -dx_t * e_inv;
                  });
  net_backward(false, true, dy);
}

template <typename T>
void AffineCoupling<T>::net_backward(bool params, bool input, Tensor<T>& d) {
  CouplingScratch<T>& s = *scratch_;
  if (params) {
    conv3.backward(h2_, s.dout, &s.dh2);
    if (!global.value.empty()) global_backward(true);
    relu_backward(h2_, s.dh2, negative_slope_);
    conv2.backward(h1_, s.dh2, &s.dh1);
    relu_backward(h1_, s.dh1, negative_slope_);
    conv1.backward(cond_, s.dh1, input ? &s.dcond : nullptr);
  } else {
    conv3.backward_input(s.dout, s.dh2);
    if (!global.value.empty()) global_backward(false);
    relu_backward(h2_, s.dh2, negative_slope_);
    conv2.backward_input(s.dh2, s.dh1);
    relu_backward(h1_, s.dh1, negative_slope_);
    conv1.backward_input(s.dh1, s.dcond);
  }
  if (!input) return;
  const int n = d.n, C = channels_, Cc = cond_channels_;
#pragma omp parallel for collapse(2) schedule(static) if (d.size() > kParallelMinWork)
  for (int b = 0; b < d.batch; ++b)
    for (int px = 0; px < n; ++px)
      for (int py = 0; py < n; ++py)
        for (int pz = 0; pz < n; ++pz) {
          const T* dc = &s.dcond.at(b, px, py, pz, 0);
          T* dv = &d.at(b, px, py, pz, 0);
          if (mask_ == CouplingMask::checkerboard) {
            if (!active(px, py, pz))
              for (int j = 0; j < C; ++j) dv[j] += dc[j];
          } else {
            for (int j = 0; j < Cc; ++j) dv[cond_offset_ + j] += dc[j];
          }
        }
}

template class AffineCoupling<float>;
template class AffineCoupling<double>;

}  // namespace ff
