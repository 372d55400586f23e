#include "fieldflow/nn/adam.hpp"

#include <omp.h>

#include <cmath>
#include <numbers>

#include "fieldflow/core/error.hpp"
#include "fieldflow/nn/tensor.hpp"

namespace ff {

template <typename T>
Adam<T>::Adam(std::vector<Param<T>*> params, AdamOptions options)
    : params_(std::move(params)), options_(options) {
  if (!(options_.lr > 0)) throw Error("optimizer", "learning rate must be positive");
  if (!(options_.beta1 >= 0 && options_.beta1 < 1 && options_.beta2 >= 0 && options_.beta2 < 1))
    throw Error("optimizer", "betas must lie in [0, 1)");
  for (auto* p : params_) {
    m_.emplace_back(p->size(), T(0));
    v_.emplace_back(p->size(), T(0));
  }
}

template <typename T>
double Adam<T>::learning_rate(long step) const {
  double lr = options_.lr;
  if (options_.warmup_steps > 0 && step < options_.warmup_steps)
    return lr * double(step + 1) / double(options_.warmup_steps);
  if (options_.total_steps > options_.warmup_steps) {
    const double progress = std::min(1.0, double(step - options_.warmup_steps) /
                                              double(options_.total_steps - options_.warmup_steps));
    const double cosine = 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
    lr *= options_.min_lr_ratio + (1.0 - options_.min_lr_ratio) * cosine;
  }
  return lr;
}

template <typename T>
double Adam<T>::gradient_norm() const {
  double norm2 = 0.0;
  for (const auto* p : params_) {
    const T* g = p->grad.data();
    const size_t size = p->size();
    // simd: the sum may be reordered, so it vectorises.
#pragma omp simd reduction(+ : norm2)
    for (size_t i = 0; i < size; ++i) norm2 += double(g[i]) * double(g[i]);
  }
  return std::sqrt(norm2);
}

template <typename T>
double Adam<T>::step(double norm) {
  double scale = 1.0;
  if (options_.clip_grad_norm > 0 && norm > options_.clip_grad_norm)
    scale = options_.clip_grad_norm / norm;
  const double lr = learning_rate(step_);
  ++step_;
  const double b1 = options_.beta1, b2 = options_.beta2;
  const double correction1 = 1.0 - std::pow(b1, double(step_));
  const double correction2 = 1.0 - std::pow(b2, double(step_));
  const double step_size = lr / correction1;
  // Without weight decay the factor is exactly 1 (the same values as no multiply at all).
  const double decay = options_.weight_decay > 0 ? 1.0 - lr * options_.weight_decay : 1.0;
  const double eps = options_.eps;
  for (size_t k = 0; k < params_.size(); ++k) {
    Param<T>& p = *params_[k];
    T* m = m_[k].data();
    T* v = v_[k].data();
    T* value = p.value.data();
    const T* grad = p.grad.data();
    const size_t size = p.size();
    // Each thread updates one contiguous range in a simd loop (the four arrays never overlap), so
    // the loop vectorises, sqrt and divide included; `parallel for` alone kept it scalar.
#pragma omp parallel if (size > kParallelMinWork)
    {
      const size_t threads = size_t(omp_get_num_threads()), t = size_t(omp_get_thread_num());
      const size_t lo = size * t / threads, hi = size * (t + 1) / threads;
#pragma omp simd
      for (size_t i = lo; i < hi; ++i) {
        const double g = double(grad[i]) * scale;
        m[i] = T(b1 * m[i] + (1 - b1) * g);
        v[i] = T(b2 * v[i] + (1 - b2) * g * g);
        const double denom = std::sqrt(double(v[i]) / correction2) + eps;
        value[i] = T(double(value[i]) * decay - step_size * double(m[i]) / denom);
      }
    }
  }
  return norm;
}

template <typename T>
void Adam<T>::zero_grad() {
  for (auto* p : params_) p->zero_grad();
}

template class Adam<float>;
template class Adam<double>;

}  // namespace ff
