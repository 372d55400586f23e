// Squeeze, actnorm and channel mixing. See include/fieldflow/flow/layers.hpp.
// GCC 12 reports false -Wmaybe-uninitialized inside the AVX-512 intrinsics Eigen uses.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Dense>
#include <cmath>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/flow/layers.hpp"

namespace ff {

template <typename T>
void squeeze(const Tensor<T>& x, Tensor<T>& y) {
  if (x.n % 2 != 0) throw Error("squeeze", "grid size must be even, got " + std::to_string(x.n));
  const int h = x.n / 2, C = x.channels;
  y.resize(x.batch, h, 8 * C);
#pragma omp parallel for collapse(2) schedule(static) if (x.size() > kParallelMinWork)
  for (int b = 0; b < x.batch; ++b)
    for (int X = 0; X < h; ++X)
      for (int Y = 0; Y < h; ++Y)
        for (int Z = 0; Z < h; ++Z) {
          T* out = &y.at(b, X, Y, Z, 0);
          for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j)
              for (int k = 0; k < 2; ++k) {
                const T* in = &x.at(b, 2 * X + i, 2 * Y + j, 2 * Z + k, 0);
                const int sub = 4 * i + 2 * j + k;
                for (int c = 0; c < C; ++c) out[8 * c + sub] = in[c];
              }
        }
}

template <typename T>
void unsqueeze(const Tensor<T>& y, Tensor<T>& x) {
  if (y.channels % 8 != 0)
    throw Error("unsqueeze",
                "channel count must be a multiple of 8, got " + std::to_string(y.channels));
  const int h = y.n, C = y.channels / 8;
  x.resize(y.batch, 2 * h, C);
#pragma omp parallel for collapse(2) schedule(static) if (y.size() > kParallelMinWork)
  for (int b = 0; b < y.batch; ++b)
    for (int X = 0; X < h; ++X)
      for (int Y = 0; Y < h; ++Y)
        for (int Z = 0; Z < h; ++Z) {
          const T* in = &y.at(b, X, Y, Z, 0);
          for (int i = 0; i < 2; ++i)
            for (int j = 0; j < 2; ++j)
              for (int k = 0; k < 2; ++k) {
                T* out = &x.at(b, 2 * X + i, 2 * Y + j, 2 * Z + k, 0);
                const int sub = 4 * i + 2 * j + k;
                for (int c = 0; c < C; ++c) out[c] = in[8 * c + sub];
              }
        }
}

// ---- ActNorm ----

template <typename T>
ActNorm<T>::ActNorm(std::string name, int channels)
    : bias(name + ".bias", size_t(channels)),
      log_scale(name + ".log_scale", size_t(channels)),
      name_(std::move(name)) {}

template <typename T>
ActNormStats actnorm_statistics(const Tensor<T>& x) {
  const int C = x.channels;
  const size_t count = x.size() / C;
  ActNormStats stats;
  stats.values.assign(2 * size_t(C) + 1, 0.0);
  for (size_t v = 0; v < count; ++v)
    for (int c = 0; c < C; ++c) {
      const double value = x.data[v * C + c];
      stats.values[c] += value;
      stats.values[C + c] += value * value;
    }
  stats.values.back() = double(count);
  return stats;
}

template <typename T>
void ActNorm<T>::initialize(const ActNormStats& stats) {
  const int C = int(bias.size());
  if (stats.values.size() != 2 * size_t(C) + 1)
    throw Error(name_, "initialisation statistics for " + std::to_string(stats.channels()) +
                           " channels, the layer has " + std::to_string(C));
  if (!(stats.count() > 0)) throw Error(name_, "initialisation statistics of no data");
  for (int c = 0; c < C; ++c) {
    const double mean = stats.sum(c) / stats.count();
    const double var = std::max(0.0, stats.sum_squares(c) / stats.count() - mean * mean);
    if (!std::isfinite(mean) || !std::isfinite(var))
      throw Error(name_, "initialisation statistics are not finite");
    bias.value[c] = T(-mean);
    log_scale.value[c] = T(-std::log(std::sqrt(var) + 1e-6));
  }
  initialized = true;
}

template <typename T>
void ActNorm<T>::forward(const Tensor<T>& x, Tensor<T>& y, T* logdet) {
  // Initialising from whatever batch comes first made log p depend on the order of the inputs.
  if (!initialized)
    throw Error(name_, "actnorm is not initialised (MultiScaleFlow::initialize_actnorms first)");
  const int C = x.channels;
  y.resize_like(x);
  std::vector<T>& e = scale_;  // member: no allocation per call
  e.resize(C);
  T sum_log = T(0);
  for (int c = 0; c < C; ++c) {
    e[c] = std::exp(log_scale.value[c]);
    sum_log += log_scale.value[c];
  }
  const size_t count = x.size() / C;
#pragma omp parallel for schedule(static) if (x.size() > kParallelMinWork)
  for (size_t v = 0; v < count; ++v)
    for (int c = 0; c < C; ++c) y.data[v * C + c] = (x.data[v * C + c] + bias.value[c]) * e[c];
  for (int b = 0; b < x.batch; ++b) logdet[b] += T(x.voxels()) * sum_log;
}

template <typename T>
void ActNorm<T>::inverse(const Tensor<T>& y, Tensor<T>& x) {
  const int C = y.channels;
  x.resize_like(y);
  const size_t count = y.size() / C;
#pragma omp parallel for schedule(static) if (y.size() > kParallelMinWork)
  for (size_t v = 0; v < count; ++v)
    for (int c = 0; c < C; ++c)
      x.data[v * C + c] = y.data[v * C + c] * std::exp(-log_scale.value[c]) - bias.value[c];
}

template <typename T>
void ActNorm<T>::backward(const Tensor<T>& x, const Tensor<T>& dy, const T* dlogdet, Tensor<T>& dx,
                          Backprop what) {
  const int C = x.channels;
  const size_t count = x.size() / C;
  T g = T(0);
  for (int b = 0; b < x.batch; ++b) g += dlogdet[b];
  for (int c = 0; c < C && what != Backprop::input; ++c) {
    const T e = std::exp(log_scale.value[c]);
    double db = 0.0, dl = 0.0;
    for (size_t v = 0; v < count; ++v) {
      const double d = dy.data[v * C + c];
      db += d * e;
      dl += d * (x.data[v * C + c] + bias.value[c]) * e;
    }
    bias.grad[c] += T(db);
    log_scale.grad[c] += T(dl) + g * T(x.voxels());
  }
  if (what == Backprop::params) return;
  dx.resize_like(x);
#pragma omp parallel for schedule(static) if (x.size() > kParallelMinWork)
  for (size_t v = 0; v < count; ++v)
    for (int c = 0; c < C; ++c)
      dx.data[v * C + c] = dy.data[v * C + c] * std::exp(log_scale.value[c]);
}

template <typename T>
void ActNorm<T>::inverse_backward(const Tensor<T>& y, const Tensor<T>& dx, Tensor<T>& dy) {
  const int C = y.channels;
  dy.resize_like(y);
  const size_t count = y.size() / C;
#pragma omp parallel for schedule(static) if (y.size() > kParallelMinWork)
  for (size_t v = 0; v < count; ++v)
    for (int c = 0; c < C; ++c)
      dy.data[v * C + c] = dx.data[v * C + c] * std::exp(-log_scale.value[c]);
}

// ---- Channel mixing ----

MixingKind parse_mixing(const std::string& text) {
  if (text == "none") return MixingKind::none;
  if (text == "permutation") return MixingKind::permutation;
  if (text == "orthogonal") return MixingKind::orthogonal;
  if (text == "lu") return MixingKind::lu;
  throw Error("mixing", "expected none, permutation, orthogonal or lu, got \"" + text + "\"");
}

const char* to_string(MixingKind kind) {
  switch (kind) {
    case MixingKind::none:
      return "none";
    case MixingKind::permutation:
      return "permutation";
    case MixingKind::orthogonal:
      return "orthogonal";
    case MixingKind::lu:
      return "lu";
  }
  return "?";
}

namespace {
using MatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

MatrixD random_orthogonal(int C, uint64_t seed) {
  const CounterRng rng(seed, 0x6d6978);
  MatrixD g(C, C);
  for (int i = 0; i < C * C; ++i) g.data()[i] = rng.normal(uint64_t(i));
  Eigen::HouseholderQR<MatrixD> qr(g);
  MatrixD q = qr.householderQ();
  const MatrixD r = qr.matrixQR().triangularView<Eigen::Upper>();
  for (int j = 0; j < C; ++j)  // sign fix: makes Q Haar-distributed
    if (r(j, j) < 0) q.col(j) *= -1.0;
  return q;
}
}  // namespace

template <typename T>
ChannelMixing<T>::ChannelMixing(std::string name, int channels, MixingKind kind, uint64_t seed,
                                bool identity)
    : name_(std::move(name)), channels_(channels), kind_(kind) {
  const int C = channels;
  if (kind == MixingKind::none) throw Error(name_, "mixing kind none is not a step");
  if (kind == MixingKind::permutation) {
    const CounterRng rng(seed, 0x7065726d);
    std::vector<int> p(C);
    for (int i = 0; i < C; ++i) p[i] = i;
    for (int i = C - 1; i > 0; --i) std::swap(p[i], p[int(rng.uniform(uint64_t(i)) * (i + 1))]);
    fixed.assign(size_t(C) * C, 0.0);
    for (int r = 0; r < C; ++r) fixed[size_t(r) * C + p[r]] = 1.0;
  } else if (kind == MixingKind::orthogonal) {
    const MatrixD q = random_orthogonal(C, seed);
    fixed.assign(q.data(), q.data() + size_t(C) * C);
  } else {
    const MatrixD q = identity ? MatrixD::Identity(C, C) : random_orthogonal(C, seed);
    Eigen::PartialPivLU<MatrixD> lu(q);
    const MatrixD m = lu.matrixLU();
    const auto& idx = lu.permutationP().indices();
    perm.resize(C);
    for (int i = 0; i < C; ++i) perm[i] = idx[i];  // row i of Q is row idx[i] of L U
    lower = Param<T>(name_ + ".lower", size_t(C) * C);
    upper = Param<T>(name_ + ".upper", size_t(C) * C);
    log_s = Param<T>(name_ + ".log_s", size_t(C));
    sign.resize(C);
    for (int i = 0; i < C; ++i)
      for (int j = 0; j < C; ++j) {
        if (j < i) lower.value[size_t(i) * C + j] = T(m(i, j));
        if (j > i) upper.value[size_t(i) * C + j] = T(m(i, j));
      }
    for (int i = 0; i < C; ++i) {
      sign[i] = m(i, i) < 0 ? -1.0 : 1.0;
      log_s.value[i] = T(std::log(std::abs(m(i, i))));
    }
  }
}

template <typename T>
std::vector<Param<T>*> ChannelMixing<T>::params() {
  if (kind_ == MixingKind::lu) return {&lower, &upper, &log_s};
  return {};
}

template <typename T>
std::vector<double> ChannelMixing<T>::matrix() const {
  if (kind_ != MixingKind::lu) return fixed;
  const int C = channels_;
  std::vector<double> l, u, m, w(size_t(C) * C);
  lu_factors(l, u);
  m.resize(size_t(C) * C);
  Eigen::Map<MatrixD>(m.data(), C, C).noalias() =
      Eigen::Map<const MatrixD>(l.data(), C, C) * Eigen::Map<const MatrixD>(u.data(), C, C);
  for (int r = 0; r < C; ++r)
    for (int j = 0; j < C; ++j) w[size_t(r) * C + j] = m[size_t(perm[r]) * C + j];
  return w;
}

template <typename T>
void ChannelMixing<T>::lu_factors(std::vector<double>& l, std::vector<double>& u) const {
  const int C = channels_;
  l.assign(size_t(C) * C, 0.0);
  u.assign(size_t(C) * C, 0.0);
  for (int i = 0; i < C; ++i)
    for (int j = 0; j < C; ++j) {
      if (j < i) l[size_t(i) * C + j] = lower.value[size_t(i) * C + j];
      if (j > i) u[size_t(i) * C + j] = upper.value[size_t(i) * C + j];
    }
  for (int i = 0; i < C; ++i) {
    l[size_t(i) * C + i] = 1.0;
    u[size_t(i) * C + i] = sign[i] * std::exp(double(log_s.value[i]));
  }
}

template <typename T>
void ChannelMixing<T>::refresh_matrix() {
  const int C = channels_;
  w_.resize(size_t(C) * C);
  if (kind_ != MixingKind::lu) {
    for (size_t e = 0; e < w_.size(); ++e) w_[e] = T(fixed[e]);
    return;
  }
  lu_factors(l_, u_);
  m_.resize(size_t(C) * C);
  Eigen::Map<MatrixD>(m_.data(), C, C).noalias() =
      Eigen::Map<const MatrixD>(l_.data(), C, C) * Eigen::Map<const MatrixD>(u_.data(), C, C);
  for (int r = 0; r < C; ++r)
    for (int j = 0; j < C; ++j) w_[size_t(r) * C + j] = T(m_[size_t(perm[r]) * C + j]);
}

namespace {
// Y = X W^T for every voxel (rows of the channels-last tensor).
template <typename T>
void apply_rows(const Tensor<T>& x, const std::vector<T>& w, int C, Tensor<T>& y) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Eigen::Index rows = Eigen::Index(x.size() / C);
  Eigen::Map<const Mat> X(x.data.data(), rows, C);
  Eigen::Map<const Mat> W(w.data(), C, C);
  Eigen::Map<Mat> Y(y.data.data(), rows, C);
  Y.noalias() = X * W.transpose();
}
}  // namespace

template <typename T>
void ChannelMixing<T>::forward(const Tensor<T>& x, Tensor<T>& y, T* logdet) {
  const int C = channels_;
  if (x.channels != C) throw Error(name_, "channel count mismatch");
  refresh_matrix();
  y.resize_like(x);
  apply_rows(x, w_, C, y);
  double log_det = 0.0;
  if (kind_ == MixingKind::lu)
    for (int i = 0; i < C; ++i) log_det += double(log_s.value[i]);
  for (int b = 0; b < x.batch; ++b) logdet[b] += T(double(x.voxels()) * log_det);
}

template <typename T>
void ChannelMixing<T>::inverse(const Tensor<T>& y, Tensor<T>& x) {
  const int C = channels_;
  const std::vector<double> w = matrix();
  const MatrixD inv = Eigen::Map<const MatrixD>(w.data(), C, C).inverse();
  w_inv_.assign(inv.data(), inv.data() + size_t(C) * C);
  x.resize_like(y);
  apply_rows(y, w_inv_, C, x);
}

template <typename T>
void ChannelMixing<T>::backward(const Tensor<T>& x, const Tensor<T>& dy, const T* dlogdet,
                                Tensor<T>& dx, Backprop what) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int C = channels_;
  refresh_matrix();  // also fills l_, u_ (lu)
  const Eigen::Index rows = Eigen::Index(x.size() / C);
  if (kind_ == MixingKind::lu && what != Backprop::input) {
    const size_t CC = size_t(C) * C;
    dw_.resize(CC);
    dm_.resize(CC);
    dl_.resize(CC);
    du_.resize(CC);
    Eigen::Map<const Mat> X(x.data.data(), rows, C), DY(dy.data.data(), rows, C);
    Eigen::Map<Mat>(dw_.data(), C, C).noalias() = DY.transpose() * X;  // dL/dW
    for (int r = 0; r < C; ++r)
      for (int j = 0; j < C; ++j) dm_[size_t(perm[r]) * C + j] = double(dw_[size_t(r) * C + j]);
    Eigen::Map<const MatrixD> dm(dm_.data(), C, C), l(l_.data(), C, C), u(u_.data(), C, C);
    Eigen::Map<MatrixD>(dl_.data(), C, C).noalias() = dm * u.transpose();
    Eigen::Map<MatrixD>(du_.data(), C, C).noalias() = l.transpose() * dm;
    double g = 0.0;
    for (int b = 0; b < x.batch; ++b) g += dlogdet[b];
    for (int i = 0; i < C; ++i) {
      for (int j = 0; j < C; ++j) {
        if (j < i) lower.grad[size_t(i) * C + j] += T(dl_[size_t(i) * C + j]);
        if (j > i) upper.grad[size_t(i) * C + j] += T(du_[size_t(i) * C + j]);
      }
      log_s.grad[i] += T(du_[size_t(i) * C + i] * u_[size_t(i) * C + i] + g * double(x.voxels()));
    }
  }
  if (what == Backprop::params) return;
  dx.resize_like(x);
  Eigen::Map<const Mat> DY(dy.data.data(), rows, C), W(w_.data(), C, C);
  Eigen::Map<Mat> DX(dx.data.data(), rows, C);
  DX.noalias() = DY * W;
}

template <typename T>
void ChannelMixing<T>::inverse_backward(const Tensor<T>& y, const Tensor<T>& dx, Tensor<T>& dy) {
  // The latest inverse computed x = y W^-T per row (w_inv_), so dL/dy = dL/dx W^-1.
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const int C = channels_;
  const Eigen::Index rows = Eigen::Index(y.size() / C);
  dy.resize_like(y);
  Eigen::Map<const Mat> DX(dx.data.data(), rows, C), W_inv(w_inv_.data(), C, C);
  Eigen::Map<Mat> DY(dy.data.data(), rows, C);
  DY.noalias() = DX * W_inv;
}

template void squeeze(const Tensor<float>&, Tensor<float>&);
template void squeeze(const Tensor<double>&, Tensor<double>&);
template void unsqueeze(const Tensor<float>&, Tensor<float>&);
template void unsqueeze(const Tensor<double>&, Tensor<double>&);
template ActNormStats actnorm_statistics(const Tensor<float>&);
template ActNormStats actnorm_statistics(const Tensor<double>&);
template class ActNorm<float>;
template class ActNorm<double>;
template class ChannelMixing<float>;
template class ChannelMixing<double>;

}  // namespace ff
