// Posterior sampling of fields under a flow prior. See include/fieldflow/recon/posterior.hpp.
#include "fieldflow/recon/posterior.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numbers>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/fft.hpp"
#include "fieldflow/recon/mcmc_diagnostics.hpp"
#include "fieldflow/stats/power_spectrum.hpp"
#include "fieldflow/train/communicator.hpp"

namespace ff {

const SettingsTable<PosteriorSettings>& posterior_settings_table() {
  using S = PosteriorSettings;
  static const auto table =
      SettingsTable<S>("posterior", "Posterior samples by HMC (docs/posterior.md).")
          .one_shot()
          .integer("samples", &S::samples, 0, Range::non_negative(),
                   "draws per chain after warm-up; 0: no posterior sampling")
          .integer("chains", &S::chains, 2, Range::at_least(1),
                   "independent chains (chain c is a function of seed and c only)")
          .integer("warmup", &S::warmup, 200, Range::non_negative(),
                   "warm-up iterations per chain (step size adaptation), not kept")
          .integer("seed", &S::seed, 3, Range::non_negative(), "seed of every chain's randomness")
          .choice("space", &S::space, "latent", {"latent", "y"},
                  "latent: HMC in the flow's latent u (NeuTra); y: in the flow's input y")
          .integer("leapfrog_steps", &S::leapfrog_steps, 32, Range::at_least(1),
                   "leapfrog steps per trajectory")
          .number("step_size", &S::step_size, 0.0, Range::non_negative(),
                  "leapfrog step; 0: found at the start of warm-up; adapted during warm-up")
          .number("target_accept", &S::target_accept, 0.8,
                  Range::between(0, 1).open_below().open_above(),
                  "acceptance rate the warm-up's dual averaging aims at")
          .number("jitter", &S::jitter, 0.1, Range::between(0, 1).open_above(),
                  "each trajectory's step size is scaled by a uniform factor in 1 +- jitter")
          .integer("thin", &S::thin, 10, Range::at_least(1),
                   "every thin-th draw of every chain is written to /posterior_samples")
          .number("init_spread", &S::init_spread, 0.5, Range::non_negative(),
                  "chains start at the MAP + init_spread * N(0, M^-1)")
          .choice("mass", &S::mass, "fourier_voxel", {"fourier", "fourier_voxel"},
                  "fourier: M diagonal in Fourier space; fourier_voxel: that M rescaled per "
                  "voxel to the likelihood's curvature at the start")
          .check([](const S& s, const Reject& reject) {
            if (s.samples > 0 && s.warmup == 0 && s.step_size <= 0)
              reject("step_size", "must be > 0 when warmup is 0 (nothing adapts it)");
          });
  return table;
}

PosteriorSettings read_posterior_settings(ConfigNode node) {
  return posterior_settings_table().read(node);
}

ChainSharing chain_sharing(const Communicator& comm) {
  ChainSharing s;
  s.rank = comm.rank();
  s.size = comm.size();
  s.sum = [&comm](double* values, size_t count) { comm.sum(values, count); };
  s.sum_float = [&comm](float* values, size_t count) { comm.sum(values, count); };
  s.guarded = [&comm](const std::function<void()>& run) { comm.guarded(run); };
  return s;
}

HmcSettings hmc_settings(const PosteriorSettings& s) {
  HmcSettings h;
  h.warmup = s.warmup;
  h.samples = s.samples;
  h.leapfrog_steps = s.leapfrog_steps;
  h.step_size = s.step_size;
  h.target_accept = s.target_accept;
  h.jitter = s.jitter;
  return h;
}

// ---- y space ----

YPosterior::YPosterior(PosteriorObjective& objective, std::vector<double> prior_eigenvalues)
    : objective_(objective), eigenvalues_(std::move(prior_eigenvalues)) {}

double YPosterior::log_density_grad(const Eigen::VectorXd& q, Eigen::VectorXd& grad) {
  grad.resize(q.size());
  const double f = objective_.value_grad(q.data(), grad.data());
  grad = -grad;
  return -f;
}

void YPosterior::to_y(const Eigen::VectorXd& q, double* y) {
  std::copy(q.data(), q.data() + q.size(), y);
}

Eigen::VectorXd YPosterior::from_y(const std::vector<double>& y) {
  return Eigen::Map<const Eigen::VectorXd>(y.data(), Eigen::Index(y.size()));
}

// ---- latent space ----

template <typename T>
LatentPosterior<T>::LatentPosterior(MultiScaleFlow<T>& flow, Preprocessing preprocessing,
                                    const Observation& obs)
    : flow_(flow),
      preprocessing_(std::move(preprocessing)),
      data_(obs.data),
      weight_(obs.inverse_noise()) {
  const size_t size = flow.dimension();
  if (flow.spec().channels != 1 || data_.size() != size)
    throw Error("posterior", "the observation has " + std::to_string(data_.size()) +
                                 " voxels, the flow models " + std::to_string(size) + " values");
  y_values_.resize(size);
  delta_.resize(size);
  slope_.resize(size);
  base_grad_.resize(size);
}

template <typename T>
void LatentPosterior<T>::inverse(const Eigen::VectorXd& u) {
  if (cached_u_.size() == u.size() && cached_u_ == u) return;
  const int n = flow_.spec().grid;
  u_.resize(1, n, 1);
  for (size_t i = 0; i < u_.size(); ++i) u_.data[i] = T(u[Eigen::Index(i)]);
  flow_.inverse_from_grid(u_, y_);
  cached_u_ = u;
}

template <typename T>
double LatentPosterior<T>::base_log_prob(const double* u, double* grad) {
  if (CorrelatedGaussian* base = flow_.correlated_base())
    return grad ? base->log_prob_grad(u, grad) : base->log_prob(u);
  double sum = 0.0;
  for (size_t i = 0; i < weight_.size(); ++i) {
    sum += u[i] * u[i];
    if (grad) grad[i] = -u[i];
  }
  return -0.5 * sum - 0.5 * double(weight_.size()) * std::log(2.0 * std::numbers::pi);
}

template <typename T>
double LatentPosterior<T>::log_density_grad(const Eigen::VectorXd& q, Eigen::VectorXd& grad) {
  const size_t size = weight_.size();
  inverse(q);
  for (size_t i = 0; i < size; ++i) y_values_[i] = double(y_.data[i]);
  preprocessing_to_delta(preprocessing_, y_values_.data(), delta_.data(), slope_.data(), size);
  dy_.resize_like(y_);
  double chi2 = 0.0;
  for (size_t i = 0; i < size; ++i) {
    const double r = data_[i] - delta_[i];
    chi2 += weight_[i] * r * r;
    dy_.data[i] = T(weight_[i] * r * slope_[i]);  // d log L / dy
  }
  if (!std::isfinite(chi2)) return -std::numeric_limits<double>::infinity();
  flow_.inverse_vjp(dy_, du_);
  const double log_base = base_log_prob(q.data(), base_grad_.data());
  grad.resize(q.size());
  for (size_t i = 0; i < size; ++i) grad[Eigen::Index(i)] = double(du_.data[i]) + base_grad_[i];
  return -0.5 * chi2 + log_base;
}

template <typename T>
void LatentPosterior<T>::to_y(const Eigen::VectorXd& q, double* y) {
  inverse(q);
  for (size_t i = 0; i < weight_.size(); ++i) y[i] = double(y_.data[i]);
}

template <typename T>
Eigen::VectorXd LatentPosterior<T>::from_y(const std::vector<double>& y) {
  const int n = flow_.spec().grid;
  Tensor<T> x(1, n, 1);
  for (size_t i = 0; i < x.size(); ++i) x.data[i] = T(y[i]);
  std::vector<T> logdet;
  flow_.forward(x, logdet);
  Tensor<T> u;
  flow_.latents_to_grid(flow_.latents(), u);
  cached_u_.resize(0);  // the forward pass replaced the inverse's activations
  Eigen::VectorXd q(Eigen::Index(u.size()));
  for (size_t i = 0; i < u.size(); ++i) q[Eigen::Index(i)] = double(u.data[i]);
  return q;
}

template <typename T>
std::vector<double> LatentPosterior<T>::prior_eigenvalues() const {
  return flow_prior_eigenvalues(flow_);
}

template <typename T>
std::vector<double> flow_prior_eigenvalues(const MultiScaleFlow<T>& flow) {
  if (const CorrelatedGaussian* base = const_cast<MultiScaleFlow<T>&>(flow).correlated_base())
    return base->eigenvalues();
  const size_t n = size_t(flow.spec().grid);
  return std::vector<double>(n * n * (n / 2 + 1), 1.0);
}

template class LatentPosterior<float>;
template class LatentPosterior<double>;
template std::vector<double> flow_prior_eigenvalues(const MultiScaleFlow<float>&);
template std::vector<double> flow_prior_eigenvalues(const MultiScaleFlow<double>&);

namespace {

// Per voxel, the likelihood's curvature in y at y: mask / sigma^2 * (d delta / dy)^2.
std::vector<double> likelihood_curvature(const Preprocessing& preprocessing, const Observation& obs,
                                         const std::vector<double>& y) {
  const size_t size = y.size();
  std::vector<double> delta(size), slope(size);
  preprocessing_to_delta(preprocessing, y.data(), delta.data(), slope.data(), size);
  std::vector<double> w = obs.inverse_noise();
  for (size_t i = 0; i < size; ++i) w[i] *= slope[i] * slope[i];
  return w;
}

double mean_of(const std::vector<double>& v) {
  double sum = 0.0;
  for (double x : v) sum += x;
  return sum / double(v.size());
}

}  // namespace

std::vector<double> posterior_mass_eigenvalues(const PosteriorSpace& space,
                                               const Preprocessing& preprocessing,
                                               const Observation& obs,
                                               const std::vector<double>& y) {
  const double w_eff = mean_of(likelihood_curvature(preprocessing, obs, y));
  std::vector<double> m = space.prior_eigenvalues();
  for (double& v : m) v = 1.0 / v + w_eff;
  return m;
}

std::vector<double> posterior_mass_voxel_scale(const PosteriorSpace& space,
                                               const Preprocessing& preprocessing,
                                               const Observation& obs,
                                               const std::vector<double>& y) {
  const std::vector<double> w = likelihood_curvature(preprocessing, obs, y);
  const double w_eff = mean_of(w);
  // The circulant's diagonal element, (1/n^3) sum over all modes of 1/lambda_k: half-complex
  // modes 0 < c < n/2 stand for two modes each.
  const std::vector<double> lambda = space.prior_eigenvalues();
  const int n = obs.n, nc = n / 2 + 1;
  double prior_diagonal = 0.0;
  for (size_t i = 0; i < lambda.size(); ++i)
    prior_diagonal += half_complex_weight(int(i % size_t(nc)), n) / lambda[i];
  prior_diagonal /= double(w.size());
  std::vector<double> scale(w.size());
  for (size_t i = 0; i < w.size(); ++i)
    scale[i] = (prior_diagonal + w[i]) / (prior_diagonal + w_eff);
  return scale;
}

// ---- sampling ----

double quantile(std::vector<double> values, double q) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const double pos = q * double(values.size() - 1);
  const size_t lo = size_t(std::floor(pos));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  return values[lo] + (pos - double(lo)) * (values[hi] - values[lo]);
}

namespace {

using Clock = std::chrono::steady_clock;

// Auto spectra with one reusable single-threaded transform; the cross spectrum with the truth from
// P(a + b) = P(a) + P(b) + 2 P(a, b), exact bin by bin.
struct Spectra {
  RealFft3d<double> fft;
  double box;
  explicit Spectra(int n, double box_size_mpch) : fft(n, 1), box(box_size_mpch) {}
  PowerSpectrum of(const double* field) {
    std::copy(field, field + fft.real_size(), fft.real());
    return measure_power_spectrum_in_place(fft, box);
  }
};

}  // namespace

PosteriorResult sample_posterior(PosteriorSpace& space, const Preprocessing& preprocessing,
                                 const Observation& obs, const std::vector<double>& y_start,
                                 const PosteriorSettings& settings, const ChainSharing& sharing,
                                 std::FILE* log, double progress_seconds) {
  const auto start_time = Clock::now();
  const HmcSettings hmc = hmc_settings(settings);
  validate(hmc);
  const int n = obs.n;
  const size_t size = obs.size();
  if (y_start.size() != size || space.dimension() != size)
    throw Error("posterior", "the start field, the observation and the prior differ in size");
  const bool has_truth = obs.truth.has_value();
  const std::vector<double>* truth = has_truth ? &*obs.truth : nullptr;

  PosteriorResult res;
  res.n = n;
  res.box_size_mpch = obs.box_size_mpch;
  res.space = settings.space;
  Spectra spectra(n, obs.box_size_mpch);
  const PowerSpectrum reference = spectra.of(has_truth ? truth->data() : obs.data.data());
  res.k_hmpc = reference.k;
  res.nmodes = reference.nmodes;
  const size_t bins = reference.k.size();
  if (has_truth) res.pk_truth = reference.pk;

  FourierDiagonalMass mass(n, posterior_mass_eigenvalues(space, preprocessing, obs, y_start));
  if (settings.mass == "fourier_voxel")
    mass.scale_per_voxel(posterior_mass_voxel_scale(space, preprocessing, obs, y_start));
  const Eigen::VectorXd q_start = space.from_y(y_start);

  const int chains = settings.chains, draws = settings.samples;
  const int kept_per_chain = (draws + settings.thin - 1) / settings.thin;
  // Every rank fills its own chains' slots; sums over ranks then gather them (x + 0 is exact),
  // and chains are combined in chain order: the result does not depend on the number of ranks.
  std::vector<double> sum(size * size_t(chains), 0.0), sum_sq(sum.size(), 0.0),
      below(sum.size(), 0.0);
  std::vector<double> pk_series(bins * size_t(chains) * size_t(draws), 0.0);
  std::vector<double> r_series(has_truth ? pk_series.size() : 0, 0.0);
  std::vector<float> kept(size_t(chains) * size_t(kept_per_chain) * size, 0.0f);
  constexpr int kStats = 9;
  std::vector<double> chain_stats(size_t(chains) * kStats, 0.0);
  const auto series_at = [&](size_t bin, int c, int draw) {
    return (bin * size_t(chains) + size_t(c)) * size_t(draws) + size_t(draw);
  };

  std::vector<double> y(size), delta(size), both(size);
  const auto run_chains = [&] {
    for (int c = sharing.rank; c < chains; c += sharing.size) {
      // Overdispersed start: q_start + init_spread M^{-1/2} w (covariance init_spread^2 M^{-1}).
      Eigen::VectorXd q = q_start, w(q.size()), p(q.size()), v(q.size());
      const CounterRng init(settings.seed, hmc_stream(uint64_t(c), HmcStream::init));
      for (Eigen::Index i = 0; i < w.size(); ++i) w[i] = init.normal(uint64_t(i));
      mass.apply_sqrt(w, p);
      mass.apply_inverse(p, v);
      q += settings.init_spread * v;

      int draw = 0;
      const long iterations = long(settings.warmup) + long(draws);
      const auto chain_start = Clock::now();
      auto last_progress = chain_start;
      const auto observe = [&](const HmcIteration& it, const Eigen::VectorXd& state) {
        const auto now = Clock::now();
        if (log && it.iteration + 1 < iterations &&
            std::chrono::duration<double>(now - last_progress).count() >= progress_seconds) {
          const double elapsed = std::chrono::duration<double>(now - chain_start).count();
          const long done = it.iteration + 1;
          std::fprintf(log,
                       "posterior: chain %d: iteration %ld/%ld (%s)  step size %.4g  %.1f s  "
                       "ETA %.0f s\n",
                       c, done, iterations, it.warmup ? "warm-up" : "sampling", it.step_size,
                       elapsed, elapsed / double(done) * double(iterations - done));
          std::fflush(log);
          last_progress = now;
        }
        if (it.warmup) return;
        space.to_y(state, y.data());
        preprocessing_to_delta(preprocessing, y.data(), delta.data(), nullptr, size);
        const size_t offset = size_t(c) * size;
        for (size_t i = 0; i < size; ++i) {
          sum[offset + i] += delta[i];
          sum_sq[offset + i] += delta[i] * delta[i];
          if (truth) below[offset + i] += delta[i] < (*truth)[i];
        }
        const PowerSpectrum pk = spectra.of(delta.data());
        for (size_t b = 0; b < bins; ++b) pk_series[series_at(b, c, draw)] = pk.pk[b];
        if (truth) {
          for (size_t i = 0; i < size; ++i) both[i] = delta[i] + (*truth)[i];
          const PowerSpectrum sum_pk = spectra.of(both.data());
          for (size_t b = 0; b < bins; ++b) {
            const double cross = 0.5 * (sum_pk.pk[b] - pk.pk[b] - res.pk_truth[b]);
            r_series[series_at(b, c, draw)] = cross / std::sqrt(pk.pk[b] * res.pk_truth[b]);
          }
        }
        if (draw % settings.thin == 0) {
          float* out = kept.data() +
                       (size_t(c) * size_t(kept_per_chain) + size_t(draw / settings.thin)) * size;
          for (size_t i = 0; i < size; ++i) out[i] = float(delta[i]);
        }
        ++draw;
      };
      const LogDensityGrad target = [&](const Eigen::VectorXd& x, Eigen::VectorXd& g) {
        return space.log_density_grad(x, g);
      };
      const HmcChainStats st =
          run_hmc_chain(target, mass, hmc, settings.seed, uint64_t(c), q, observe);
      double* row = chain_stats.data() + size_t(c) * kStats;
      row[0] = st.step_size;
      row[1] = st.acceptance_rate;
      row[2] = double(st.divergences);
      row[3] = double(st.warmup_divergences);
      row[4] = double(st.gradient_evaluations);
      row[5] = st.seconds;
      row[6] = st.target_seconds;
      row[7] = 1.0;  // ran
      row[8] = st.observer_seconds;
      if (log) {
        std::fprintf(log,
                     "posterior: chain %d (rank %d): step size %.4g, acceptance %.3f, "
                     "%ld divergences (%ld in warm-up), %.1f s\n",
                     c, sharing.rank, st.step_size, st.acceptance_rate, st.divergences,
                     st.warmup_divergences, st.seconds);
        std::fflush(log);
      }
    }
  };
  if (sharing.guarded)
    sharing.guarded(run_chains);
  else
    run_chains();
  if (sharing.size > 1) {
    if (!sharing.sum || !sharing.sum_float)
      throw Error("posterior", "chains shared over processes need their sums");
    for (std::vector<double>* v : {&sum, &sum_sq, &below, &pk_series, &r_series, &chain_stats})
      sharing.sum(v->data(), v->size());
    sharing.sum_float(kept.data(), kept.size());
  }

  const double total = double(chains) * double(draws);
  // Monte Carlo noise of the mean from the chains' own means (before the sums are merged below).
  if (chains > 1) {
    std::vector<double> overall(size, 0.0), deviation(size);
    for (int c = 0; c < chains; ++c)
      for (size_t i = 0; i < size; ++i) overall[i] += sum[size_t(c) * size + i] / total;
    res.mc_pk_of_mean.assign(bins, 0.0);
    for (int c = 0; c < chains; ++c) {
      for (size_t i = 0; i < size; ++i)
        deviation[i] = sum[size_t(c) * size + i] / draws - overall[i];
      const PowerSpectrum p = spectra.of(deviation.data());
      for (size_t b = 0; b < bins; ++b)
        res.mc_pk_of_mean[b] += p.pk[b] / (double(chains) * (chains - 1));
    }
  }
  for (int c = 1; c < chains; ++c)
    for (size_t i = 0; i < size; ++i) {
      sum[i] += sum[size_t(c) * size + i];
      sum_sq[i] += sum_sq[size_t(c) * size + i];
      below[i] += below[size_t(c) * size + i];
    }
  res.mean.resize(size);
  res.std.resize(size);
  for (size_t i = 0; i < size; ++i) {
    res.mean[i] = sum[i] / total;
    res.std[i] = std::sqrt(std::max(0.0, sum_sq[i] / total - res.mean[i] * res.mean[i]));
  }
  for (int c = 0; c < chains; ++c)
    for (int j = 0; j < kept_per_chain; ++j) {
      const float* from = kept.data() + (size_t(c) * size_t(kept_per_chain) + size_t(j)) * size;
      res.kept.emplace_back(from, from + size);
      res.kept_chain.push_back(c);
    }
  res.pk.assign(bins, Chains(size_t(chains), std::vector<double>(size_t(draws))));
  if (has_truth) res.r.assign(bins, Chains(size_t(chains), std::vector<double>(size_t(draws))));
  for (size_t b = 0; b < bins; ++b)
    for (int c = 0; c < chains; ++c)
      for (int d = 0; d < draws; ++d) {
        res.pk[b][size_t(c)][size_t(d)] = pk_series[series_at(b, c, d)];
        if (has_truth) res.r[b][size_t(c)][size_t(d)] = r_series[series_at(b, c, d)];
      }
  const bool diagnosable = draws >= 8;
  for (size_t b = 0; b < bins; ++b) {
    res.pk_rhat.push_back(diagnosable ? split_rhat(res.pk[b])
                                      : std::numeric_limits<double>::quiet_NaN());
    res.pk_ess.push_back(diagnosable ? split_effective_sample_size(res.pk[b])
                                     : std::numeric_limits<double>::quiet_NaN());
    const auto quantiles = [](const Chains& series) {
      std::vector<double> all;
      for (const auto& chain : series) all.insert(all.end(), chain.begin(), chain.end());
      std::array<double, 5> q;
      for (size_t j = 0; j < q.size(); ++j)
        q[j] = quantile(all, PosteriorResult::kQuantileLevels[j]);
      return q;
    };
    res.pk_quantiles.push_back(quantiles(res.pk[b]));
    if (has_truth) res.r_quantiles.push_back(quantiles(res.r[b]));
  }
  // The estimator: the posterior mean field's own spectrum and correlation with the truth.
  const PowerSpectrum mean_pk = spectra.of(res.mean.data());
  res.pk_of_mean = mean_pk.pk;
  if (has_truth) {
    for (size_t i = 0; i < size; ++i) both[i] = res.mean[i] + (*truth)[i];
    const PowerSpectrum sum_pk = spectra.of(both.data());
    for (size_t b = 0; b < bins; ++b)
      res.r_of_mean.push_back(0.5 * (sum_pk.pk[b] - mean_pk.pk[b] - res.pk_truth[b]) /
                              std::sqrt(mean_pk.pk[b] * res.pk_truth[b]));
    size_t in68 = 0, in95 = 0;
    for (size_t i = 0; i < size; ++i) {
      const double u = below[i] / total;  // the truth's rank among the samples
      in68 += u > 0.16 && u < 0.84;
      in95 += u > 0.025 && u < 0.975;
    }
    res.coverage68 = double(in68) / double(size);
    res.coverage95 = double(in95) / double(size);
    size_t pk_in = 0;
    for (size_t b = 0; b < bins; ++b)
      pk_in += res.pk_truth[b] >= res.pk_quantiles[b].front() &&
               res.pk_truth[b] <= res.pk_quantiles[b].back();
    res.pk_coverage95 = double(pk_in) / double(bins);
  }
  for (int c = 0; c < chains; ++c) {
    const double* row = chain_stats.data() + size_t(c) * kStats;
    PosteriorChain pc;
    pc.chain = c;
    pc.stats.step_size = row[0];
    pc.stats.acceptance_rate = row[1];
    pc.stats.divergences = long(row[2]);
    pc.stats.warmup_divergences = long(row[3]);
    pc.stats.gradient_evaluations = long(row[4]);
    pc.stats.seconds = row[5];
    pc.stats.target_seconds = row[6];
    pc.stats.observer_seconds = row[8];
    res.chains.push_back(pc);
    res.acceptance_rate += row[1] / chains;
    res.divergences += pc.stats.divergences;
    res.warmup_divergences += pc.stats.warmup_divergences;
    res.gradient_evaluations += pc.stats.gradient_evaluations;
    res.chain_seconds += row[5];
    res.target_seconds += row[6];
    res.observer_seconds += row[8];
  }
  if (bins > 0 && res.chain_seconds > 0 && diagnosable)
    res.ess_per_second_kmax = res.pk_ess.back() / res.chain_seconds;
  res.seconds = std::chrono::duration<double>(Clock::now() - start_time).count();
  return res;
}

PosteriorResult sample_flow_posterior(MultiScaleFlow<float>& flow,
                                      const Preprocessing& preprocessing, const Observation& obs,
                                      const std::vector<double>& y_start,
                                      const PosteriorSettings& settings,
                                      const ChainSharing& sharing, std::FILE* log) {
  if (settings.space == "latent") {
    LatentPosterior<float> space(flow, preprocessing, obs);
    return sample_posterior(space, preprocessing, obs, y_start, settings, sharing, log);
  }
  FlowPrior<float> prior(flow);
  PosteriorObjective objective(prior, preprocessing, obs);
  YPosterior space(objective, flow_prior_eigenvalues(flow));
  return sample_posterior(space, preprocessing, obs, y_start, settings, sharing, log);
}

}  // namespace ff
