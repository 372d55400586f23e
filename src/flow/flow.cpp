// The multi-scale flow. See include/fieldflow/flow/flow.hpp.
#include "fieldflow/flow/flow.hpp"

#include <cmath>
#include <numbers>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/rng.hpp"

namespace ff {

const char* to_string(BaseKind kind) {
  return kind == BaseKind::standard_normal ? "standard_normal" : "correlated_gaussian";
}

FlowSpec bench32_flow_spec() {
  FlowSpec spec;
  spec.grid = 32;
  spec.channels = 1;
  spec.levels = {{2, 2, 16, 32}, {2, 2, 32, 64}, {4, 0, 64, 0}};
  return spec;
}

void validate(const FlowSpec& spec) {
  if (spec.levels.empty()) throw Error("flow.levels", "need at least one level");
  if (spec.kernel != 1 && spec.kernel != 3)
    throw Error("flow.kernel", "must be 1 or 3, got " + std::to_string(spec.kernel));
  if (spec.channels < 1) throw Error("flow.channels", "must be positive");
  int n = spec.grid;
  for (size_t l = 0; l + 1 < spec.levels.size(); ++l) {
    if (n % 2 != 0 || n < 2)
      throw Error("flow.levels", "grid " + std::to_string(spec.grid) + " cannot be squeezed " +
                                     std::to_string(spec.levels.size() - 1) + " times");
    n /= 2;
  }
  for (const auto& level : spec.levels)
    if (level.checkerboard_couplings < 0 || level.channel_couplings < 0 ||
        level.hidden_checkerboard < 1 || (level.channel_couplings > 0 && level.hidden_channel < 1))
      throw Error("flow.levels", "coupling counts must be >= 0 and hidden channels positive");
  if (spec.calibration_bins < 0) throw Error("flow.calibration_bins", "must be >= 0");
  if (spec.mixing_identity && spec.mixing != MixingKind::lu)
    throw Error("flow.mixing_init", "identity needs mixing lu (a fixed mixing would be no mixing)");
  if (spec.base == BaseKind::correlated_gaussian && !spec.base_power_measured &&
      spec.base_box_size_mpch <= 0)
    throw Error("flow.base", "correlated_gaussian needs a positive box_size_mpch");
}

template <typename T>
void take_channels(const Tensor<T>& x, int c0, int count, Tensor<T>& y) {
  y.resize(x.batch, x.n, count);
  const size_t rows = x.size() / x.channels;
  const int C = x.channels;
#pragma omp parallel for schedule(static) if (x.size() > kParallelMinWork)
  for (size_t v = 0; v < rows; ++v)
    for (int c = 0; c < count; ++c) y.data[v * count + c] = x.data[v * C + c0 + c];
}

template <typename T>
void concat_channels(const Tensor<T>& a, const Tensor<T>& b, Tensor<T>& y) {
  const int ca = a.channels, cb = b.channels, C = ca + cb;
  y.resize(a.batch, a.n, C);
  const size_t rows = a.size() / ca;
#pragma omp parallel for schedule(static) if (y.size() > kParallelMinWork)
  for (size_t v = 0; v < rows; ++v) {
    for (int c = 0; c < ca; ++c) y.data[v * C + c] = a.data[v * ca + c];
    for (int c = 0; c < cb; ++c) y.data[v * C + ca + c] = b.data[v * cb + c];
  }
}

template <typename T>
MultiScaleFlow<T>::MultiScaleFlow(const FlowSpec& spec) : spec_(spec) {
  validate(spec_);
  if (spec_.base == BaseKind::correlated_gaussian && spec_.base_pk.empty())
    throw Error("flow.base", "power: measured needs the P(k) that `fieldflow train` measures");
  scratch_ = std::make_shared<CouplingScratch<T>>();
  const int L = int(spec_.levels.size());
  int n = spec_.grid, C = spec_.channels;
  uint64_t stream = 0;
  steps_.resize(L);
  if (spec_.calibration_bins > 0)
    steps_[0].push_back(
        std::make_unique<SpectralCalibration<T>>("calibration", spec_.calibration_bins));
  for (int l = 0; l < L; ++l) {
    const FlowLevelSpec& ls = spec_.levels[l];
    auto& steps = steps_[l];
    const std::string prefix = "level" + std::to_string(l) + ".";
    auto add_coupling = [&](CouplingMask mask, int channels, int hidden, int i) {
      const std::string kind = mask == CouplingMask::checkerboard ? "checker" : "channel";
      const std::string name = prefix + kind + std::to_string(i);
      if (spec_.actnorm) steps.push_back(std::make_unique<ActNorm<T>>(name + ".actnorm", channels));
      if (spec_.mixing != MixingKind::none && channels > 1)
        steps.push_back(std::make_unique<ChannelMixing<T>>(name + ".mixing", channels, spec_.mixing,
                                                           spec_.seed * 1000003 + stream++,
                                                           spec_.mixing_identity));
      auto coupling = std::make_unique<AffineCoupling<T>>(
          name, mask, channels, hidden, spec_.kernel, i % 2, spec_.scale_bound, spec_.clamp,
          scratch_, spec_.negative_slope, spec_.global_context);
      coupling->conv1.init_default(spec_.seed, stream++);
      coupling->conv2.init_default(spec_.seed, stream++);
      steps.push_back(std::move(coupling));
    };
    for (int i = 0; i < ls.checkerboard_couplings; ++i)
      add_coupling(CouplingMask::checkerboard, C, ls.hidden_checkerboard, i);
    if (l + 1 < L) {
      steps.push_back(std::make_unique<Squeeze<T>>(prefix + "squeeze"));
      for (int i = 0; i < ls.channel_couplings; ++i)
        add_coupling(CouplingMask::channel, 8 * C, ls.hidden_channel, i);
      n /= 2;
      C *= 4;  // 8C after the squeeze, half of it factored out
      latent_shapes_.push_back({n, C});
    } else {
      latent_shapes_.push_back({n, C});
    }
  }
  acts_.resize(L);
  for (int l = 0; l < L; ++l) acts_[l].resize(steps_[l].size() + 1);
  latents_.resize(L);
  dlat_.resize(L);
  if (spec_.base == BaseKind::correlated_gaussian) correlated_ = correlated_base_of(spec_);
  if (spec_.base == BaseKind::correlated_gaussian && spec_.channels != 1)
    throw Error("flow.base", "correlated_gaussian needs a single-channel field");
}

template <typename T>
std::vector<Param<T>*> MultiScaleFlow<T>::params() {
  std::vector<Param<T>*> out;
  for (auto& level : steps_)
    for (auto& step : level)
      for (Param<T>* p : step->params()) out.push_back(p);
  return out;
}

template <typename T>
size_t MultiScaleFlow<T>::parameter_count() {
  size_t count = 0;
  for (Param<T>* p : params()) count += p->size();
  return count;
}

template <typename T>
std::vector<ActNorm<T>*> MultiScaleFlow<T>::actnorms() {
  std::vector<ActNorm<T>*> out;
  for (auto& level : steps_)
    for (auto& step : level)
      if (auto* a = dynamic_cast<ActNorm<T>*>(step.get())) out.push_back(a);
  return out;
}

template <typename T>
std::vector<ChannelMixing<T>*> MultiScaleFlow<T>::mixings() {
  std::vector<ChannelMixing<T>*> out;
  for (auto& level : steps_)
    for (auto& step : level)
      if (auto* m = dynamic_cast<ChannelMixing<T>*>(step.get())) out.push_back(m);
  return out;
}

template <typename T>
bool MultiScaleFlow<T>::actnorms_initialized() {
  for (ActNorm<T>* a : actnorms())
    if (!a->initialized) return false;
  return true;
}

template <typename T>
int MultiScaleFlow<T>::initialize_actnorms(const Tensor<T>& x,
                                           const std::function<void(ActNormStats&)>& reduce) {
  int count = 0;
  const std::function<void(FlowStep<T>&, const Tensor<T>&)> before = [&](FlowStep<T>& step,
                                                                         const Tensor<T>& input) {
    auto* a = dynamic_cast<ActNorm<T>*>(&step);
    if (!a || a->initialized) return;
    ActNormStats stats = actnorm_statistics(input);
    if (reduce) reduce(stats);
    a->initialize(stats);
    ++count;
  };
  std::vector<T> logdet;
  run_forward(x, logdet, &before);
  return count;
}

template <typename T>
void MultiScaleFlow<T>::forward(const Tensor<T>& x, std::vector<T>& logdet) {
  run_forward(x, logdet, nullptr);
}

template <typename T>
void MultiScaleFlow<T>::run_forward(
    const Tensor<T>& x, std::vector<T>& logdet,
    const std::function<void(FlowStep<T>&, const Tensor<T>&)>* before) {
  inverse_kept_ = false;
  if (x.n != spec_.grid || x.channels != spec_.channels)
    throw Error("flow", "expected fields of " + std::to_string(spec_.grid) + "^3 x " +
                            std::to_string(spec_.channels) + ", got " + std::to_string(x.n) +
                            "^3 x " + std::to_string(x.channels));
  logdet.assign(size_t(x.batch), T(0));
  const int L = levels();
  acts_[0][0] = x;
  for (int l = 0; l < L; ++l) {
    auto& steps = steps_[l];
    const size_t S = steps.size();
    for (size_t s = 0; s < S; ++s) {
      if (before) (*before)(*steps[s], acts_[l][s]);
      steps[s]->forward(acts_[l][s], acts_[l][s + 1], logdet.data());
    }
    const Tensor<T>& out = acts_[l][S];
    if (l + 1 < L) {
      const int half = out.channels / 2;
      take_channels(out, 0, half, acts_[l + 1][0]);
      take_channels(out, half, half, latents_[l]);
    } else {
      latents_[l] = out;
    }
  }
}

template <typename T>
void MultiScaleFlow<T>::inverse(const std::vector<Tensor<T>>& latents, Tensor<T>& x) {
  const int L = levels();
  if (int(latents.size()) != L) throw Error("flow", "wrong number of latents");
  for (int l = L - 1; l >= 0; --l) {
    auto& steps = steps_[l];
    auto& acts = acts_[l];
    const size_t S = steps.size();
    if (l + 1 < L)
      concat_channels(acts_[l + 1][0], latents[l], acts[S]);
    else
      acts[S] = latents[l];
    for (size_t s = S; s-- > 0;) steps[s]->inverse(acts[s + 1], acts[s]);
  }
  x = acts_[0][0];
  inverse_kept_ = true;
}

template <typename T>
void MultiScaleFlow<T>::inverse_from_grid(const Tensor<T>& u, Tensor<T>& x) {
  if (u.n != spec_.grid || u.channels != spec_.channels)
    throw Error("flow", "expected latents on the " + std::to_string(spec_.grid) + "^3 x " +
                            std::to_string(spec_.channels) + " grid");
  grid_to_latents(u, grid_latents_);
  inverse(grid_latents_, x);
}

template <typename T>
void MultiScaleFlow<T>::inverse_vjp(const Tensor<T>& dx, Tensor<T>& du) {
  if (!inverse_kept_) throw Error("flow", "inverse_vjp needs inverse_from_grid just before");
  const int L = levels();
  if (dx.n != spec_.grid || dx.channels != spec_.channels || dx.batch != acts_[0][0].batch)
    throw Error("flow", "inverse_vjp: the cotangent's shape differs from the inverse's output");
  Tensor<T>* cur = &grad_a_;
  Tensor<T>* next = &grad_b_;
  *cur = dx;
  // Step s of level l turned acts_[l][s + 1] into acts_[l][s]: back-propagate in forward order.
  for (int l = 0; l < L; ++l) {
    auto& steps = steps_[l];
    const size_t S = steps.size();
    for (size_t s = 0; s < S; ++s) {
      steps[s]->inverse_backward(acts_[l][s + 1], *cur, *next);
      std::swap(cur, next);
    }
    if (l + 1 < L) {
      const int half = cur->channels / 2;
      take_channels(*cur, half, half, dlat_[l]);
      take_channels(*cur, 0, half, *next);
      std::swap(cur, next);
    } else {
      dlat_[l] = *cur;
    }
  }
  latents_to_grid(dlat_, du);  // grid_to_latents is a permutation: its transpose is its inverse
}

template <typename T>
void MultiScaleFlow<T>::latents_to_grid(const std::vector<Tensor<T>>& latents, Tensor<T>& u) {
  const int L = levels();
  Tensor<T>& cur = grid_a_;
  Tensor<T>& tmp = grid_b_;
  cur = latents[L - 1];
  for (int l = L - 2; l >= 0; --l) {
    concat_channels(cur, latents[l], tmp);
    unsqueeze(tmp, cur);
  }
  u = cur;
}

template <typename T>
void MultiScaleFlow<T>::grid_to_latents(const Tensor<T>& u, std::vector<Tensor<T>>& latents) {
  const int L = levels();
  latents.resize(L);
  Tensor<T>& cur = grid_a_;
  Tensor<T>& tmp = grid_b_;
  cur = u;
  for (int l = 0; l + 1 < L; ++l) {
    squeeze(cur, tmp);
    const int half = tmp.channels / 2;
    take_channels(tmp, half, half, latents[l]);
    take_channels(tmp, 0, half, cur);
  }
  latents[L - 1] = cur;
}

template <typename T>
const std::vector<double>& MultiScaleFlow<T>::base_log_prob(const std::vector<double>* weights) {
  const int L = levels(), B = latents_[0].batch;
  std::vector<double>& logp = base_logp_;
  logp.assign(size_t(B), 0.0);
  if (!correlated_) {
    const double half_log_2pi = 0.5 * std::log(2 * std::numbers::pi);
    for (int l = 0; l < L; ++l) {
      const Tensor<T>& z = latents_[l];
      if (weights) dlat_[l].resize_like(z);
      const size_t fs = z.field_size();
      for (int b = 0; b < B; ++b) {
        const T* zb = z.field(b);
        double sum = 0.0;
        for (size_t i = 0; i < fs; ++i) sum += double(zb[i]) * double(zb[i]);
        logp[b] += -0.5 * sum - half_log_2pi * double(fs);
        if (weights) {
          T* d = dlat_[l].field(b);
          const T w = T((*weights)[b]);
          for (size_t i = 0; i < fs; ++i) d[i] = -w * zb[i];
        }
      }
    }
    return logp;
  }
  Tensor<T> u;
  latents_to_grid(latents_, u);
  const size_t N = u.field_size();
  base_u_.resize(N);
  base_grad_.resize(N);
  Tensor<T> du;
  if (weights) du.resize_like(u);
  for (int b = 0; b < B; ++b) {
    for (size_t i = 0; i < N; ++i) base_u_[i] = u.field(b)[i];
    if (weights) {
      logp[b] = correlated_->log_prob_grad(base_u_.data(), base_grad_.data());
      for (size_t i = 0; i < N; ++i) du.field(b)[i] = T((*weights)[b] * base_grad_[i]);
    } else {
      logp[b] = correlated_->log_prob(base_u_.data());
    }
  }
  if (weights) grid_to_latents(du, dlat_);
  return logp;
}

template <typename T>
void MultiScaleFlow<T>::backward(const std::vector<double>& weights, Tensor<T>* dx,
                                 bool input_only) {
  const int L = levels();
  dlogdet_.resize(weights.size());
  for (size_t b = 0; b < weights.size(); ++b) dlogdet_[b] = T(weights[b]);
  Tensor<T>* cur = &grad_a_;
  Tensor<T>* next = &grad_b_;
  *cur = dlat_[L - 1];
  for (int l = L - 1; l >= 0; --l) {
    if (l + 1 < L) {
      concat_channels(*cur, dlat_[l], *next);
      std::swap(cur, next);
    }
    auto& steps = steps_[l];
    for (size_t s = steps.size(); s-- > 0;) {
      const bool need_dx = dx != nullptr || l > 0 || s > 0;
      const Backprop what =
          input_only ? Backprop::input : (need_dx ? Backprop::all : Backprop::params);
      steps[s]->backward(acts_[l][s], *cur, dlogdet_.data(), *next, what);
      std::swap(cur, next);
    }
  }
  if (dx) *dx = *cur;
}

template <typename T>
std::vector<double> MultiScaleFlow<T>::log_prob(const Tensor<T>& x) {
  forward(x, logdet_);
  std::vector<double> logp = base_log_prob(nullptr);
  for (size_t b = 0; b < logp.size(); ++b) logp[b] += double(logdet_[b]);
  return logp;
}

template <typename T>
std::vector<double> MultiScaleFlow<T>::density_grad(const Tensor<T>& x, Tensor<T>& dx,
                                                    bool input_only) {
  forward(x, logdet_);
  weights_.assign(size_t(x.batch), 1.0);
  const std::vector<double>& weights = weights_;
  std::vector<double> logp = base_log_prob(&weights);
  for (size_t b = 0; b < logp.size(); ++b) logp[b] += double(logdet_[b]);
  backward(weights, &dx, input_only);
  return logp;
}

template <typename T>
std::vector<double> MultiScaleFlow<T>::log_prob_grad(const Tensor<T>& x, Tensor<T>& dx) {
  return density_grad(x, dx, false);
}

template <typename T>
std::vector<double> MultiScaleFlow<T>::log_prob_input_grad(const Tensor<T>& x, Tensor<T>& dx) {
  return density_grad(x, dx, true);
}

template <typename T>
double MultiScaleFlow<T>::nll_backward(const Tensor<T>& x) {
  forward(x, logdet_);
  weights_.assign(size_t(x.batch), -1.0 / x.batch);  // members: no allocation per step
  const std::vector<double>& weights = weights_;
  const std::vector<double>& logp = base_log_prob(&weights);
  double nll = 0.0;
  for (size_t b = 0; b < logp.size(); ++b) nll -= (logp[b] + double(logdet_[b])) / x.batch;
  backward(weights, nullptr, false);
  return nll;
}

template <typename T>
void MultiScaleFlow<T>::sample(int count, uint64_t seed, double temperature, Tensor<T>& x) {
  const int n = spec_.grid, C = spec_.channels;
  Tensor<T> u(count, n, C);
  std::vector<double> field(u.field_size());
  for (int b = 0; b < count; ++b) {
    if (correlated_) {
      correlated_->sample(field.data(), seed, uint64_t(b), temperature);
    } else {
      const CounterRng rng(seed, uint64_t(b));
      for (size_t i = 0; i < field.size(); i += 2) {
        const auto [g1, g2] = rng.normal_pair(i / 2);
        field[i] = temperature * g1;
        if (i + 1 < field.size()) field[i + 1] = temperature * g2;
      }
    }
    for (size_t i = 0; i < field.size(); ++i) u.field(b)[i] = T(field[i]);
  }
  inverse_from_grid(u, x);
}

template <typename T>
SpectralCalibration<T>* MultiScaleFlow<T>::calibration() {
  if (spec_.calibration_bins <= 0) return nullptr;
  return dynamic_cast<SpectralCalibration<T>*>(steps_[0].front().get());
}

template <typename T>
void MultiScaleFlow<T>::copy_state_from(MultiScaleFlow& other) {
  std::vector<Param<T>*> to = params();
  const std::vector<Param<T>*> from = other.params();
  // A calibration that other lacks stays as it is here.
  if (calibration() && !other.calibration()) to.erase(to.begin());
  const std::vector<ActNorm<T>*> at = actnorms(), af = other.actnorms();
  const std::vector<ChannelMixing<T>*> mt = mixings(), mf = other.mixings();
  bool same = to.size() == from.size() && at.size() == af.size() && mt.size() == mf.size();
  for (size_t i = 0; same && i < to.size(); ++i)
    same = to[i]->name == from[i]->name && to[i]->size() == from[i]->size();
  if (!same) throw Error("flow", "copy_state_from: the two flows have different steps");
  for (size_t i = 0; i < to.size(); ++i) to[i]->value = from[i]->value;
  for (size_t i = 0; i < at.size(); ++i) at[i]->initialized = af[i]->initialized;
  for (size_t i = 0; i < mt.size(); ++i) {
    mt[i]->fixed = mf[i]->fixed;
    mt[i]->perm = mf[i]->perm;
    mt[i]->sign = mf[i]->sign;
  }
}

template <typename T>
void MultiScaleFlow<T>::set_base_power(std::vector<double> k_hmpc, std::vector<double> pk,
                                       double pk0) {
  if (!correlated_) throw Error("flow.base", "only a correlated_gaussian base has a P(k)");
  FlowSpec spec = spec_;
  spec.base_k_hmpc = std::move(k_hmpc);
  spec.base_pk = std::move(pk);
  spec.base_pk0 = pk0;
  correlated_ = correlated_base_of(spec);  // first: a table it refuses leaves the flow as it was
  spec_ = std::move(spec);
}

template <typename T>
std::unique_ptr<CorrelatedGaussian> MultiScaleFlow<T>::correlated_base_of(const FlowSpec& spec) {
  return std::make_unique<CorrelatedGaussian>(CorrelatedGaussian::from_power(
      spec.grid, spec.base_box_size_mpch, spec.base_k_hmpc, spec.base_pk, spec.base_pk0));
}

template <typename T>
void MultiScaleFlow<T>::perturb(uint64_t seed, double scale) {
  uint64_t stream = 0;
  for (Param<T>* p : params()) {
    const CounterRng rng(seed, stream++);
    for (size_t i = 0; i < p->size(); ++i) p->value[i] += T(scale * rng.normal(i));
  }
}

template void take_channels(const Tensor<float>&, int, int, Tensor<float>&);
template void take_channels(const Tensor<double>&, int, int, Tensor<double>&);
template void concat_channels(const Tensor<float>&, const Tensor<float>&, Tensor<float>&);
template void concat_channels(const Tensor<double>&, const Tensor<double>&, Tensor<double>&);
template class MultiScaleFlow<float>;
template class MultiScaleFlow<double>;

}  // namespace ff
