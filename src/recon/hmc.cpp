#include "fieldflow/recon/hmc.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <complex>
#include <limits>
#include <string>

#include "fieldflow/core/error.hpp"

namespace ff {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// White noise for (stream, draw): counters draw * ceil(d/2) + j, two normals each.
void white_noise(const CounterRng& rng, uint64_t draw, Eigen::VectorXd& w) {
  const Eigen::Index d = w.size();
  const uint64_t pairs = uint64_t(d + 1) / 2;
  for (Eigen::Index j = 0; j < d; j += 2) {
    const auto [a, b] = rng.normal_pair(draw * pairs + uint64_t(j / 2));
    w[j] = a;
    if (j + 1 < d) w[j + 1] = b;
  }
}

// The target, counted and timed.
struct TimedTarget {
  const LogDensityGrad& f;
  long calls = 0;
  double seconds = 0.0;
  double operator()(const Eigen::VectorXd& q, Eigen::VectorXd& grad) {
    const auto start = Clock::now();
    const double value = f(q, grad);
    seconds += seconds_since(start);
    ++calls;
    return value;
  }
};

// One trajectory of `steps` leapfrog steps from (q, p) with log density logp and gradient g, all
// updated in place. Returns false (divergent) when the log density turns non-finite or the
// potential alone already exceeds the start's energy by more than max_energy_error.
bool leapfrog(TimedTarget& target, MassMatrix& mass, double eps, int steps, double h0,
              double max_energy_error, Eigen::VectorXd& q, Eigen::VectorXd& p, Eigen::VectorXd& g,
              Eigen::VectorXd& v, double& logp) {
  p.noalias() += 0.5 * eps * g;
  for (int step = 0; step < steps; ++step) {
    mass.apply_inverse(p, v);
    q.noalias() += eps * v;
    logp = target(q, g);
    // K >= 0, so H >= -logp: a potential this high is a divergence whatever the momentum.
    if (!std::isfinite(logp) || -logp - h0 > max_energy_error || !g.allFinite()) return false;
    p.noalias() += (step + 1 < steps ? 1.0 : 0.5) * eps * g;
  }
  return true;
}

double kinetic(MassMatrix& mass, const Eigen::VectorXd& p, Eigen::VectorXd& v) {
  mass.apply_inverse(p, v);
  return 0.5 * p.dot(v);
}

}  // namespace

DiagonalMass::DiagonalMass(Eigen::VectorXd mass) {
  if (mass.size() == 0 || !(mass.array() > 0).all() || !mass.allFinite())
    throw Error("mass matrix", "diagonal masses must be finite and positive");
  sqrt_mass_ = mass.array().sqrt();
  inverse_mass_ = mass.array().inverse();
}

void DiagonalMass::apply_sqrt(const Eigen::VectorXd& w, Eigen::VectorXd& p) {
  p = sqrt_mass_.cwiseProduct(w);
}

void DiagonalMass::apply_inverse(const Eigen::VectorXd& p, Eigen::VectorXd& v) {
  v = inverse_mass_.cwiseProduct(p);
}

FourierDiagonalMass::FourierDiagonalMass(int n, const std::vector<double>& mass_eigenvalues,
                                         int threads)
    : n_(n), fft_(std::make_unique<RealFft3d<double>>(n, threads)) {
  if (mass_eigenvalues.size() != fft_->complex_size())
    throw Error("mass matrix", "expected " + std::to_string(fft_->complex_size()) +
                                   " Fourier eigenvalues, got " +
                                   std::to_string(mass_eigenvalues.size()));
  const double n3 = double(fft_->real_size());
  sqrt_mass_.resize(mass_eigenvalues.size());
  inverse_mass_.resize(mass_eigenvalues.size());
  for (size_t i = 0; i < mass_eigenvalues.size(); ++i) {
    const double m = mass_eigenvalues[i];
    if (!(m > 0) || !std::isfinite(m))
      throw Error("mass matrix", "Fourier eigenvalues must be finite and positive");
    sqrt_mass_[i] = std::sqrt(m) / n3;
    inverse_mass_[i] = 1.0 / (m * n3);
  }
}

void FourierDiagonalMass::filter(const Eigen::VectorXd& in, const std::vector<double>& factor,
                                 Eigen::VectorXd& out) {
  const size_t size = fft_->real_size();
  if (size_t(in.size()) != size)
    throw Error("mass matrix", "vector of " + std::to_string(in.size()) + " values for a " +
                                   std::to_string(n_) + "^3 grid");
  std::copy(in.data(), in.data() + size, fft_->real());
  fft_->forward();
  std::complex<double>* modes = fft_->complex();
  for (size_t i = 0; i < factor.size(); ++i) modes[i] *= factor[i];
  fft_->inverse();
  out.resize(Eigen::Index(size));
  std::copy(fft_->real(), fft_->real() + size, out.data());
}

void FourierDiagonalMass::scale_per_voxel(std::vector<double> scale) {
  if (scale.size() != fft_->real_size())
    throw Error("mass matrix", "expected " + std::to_string(fft_->real_size()) +
                                   " voxel scales, got " + std::to_string(scale.size()));
  sqrt_scale_.resize(Eigen::Index(scale.size()));
  for (size_t i = 0; i < scale.size(); ++i) {
    if (!(scale[i] > 0) || !std::isfinite(scale[i]))
      throw Error("mass matrix", "voxel scales must be finite and positive");
    sqrt_scale_[Eigen::Index(i)] = std::sqrt(scale[i]);
  }
}

// With B = D^{1/2} F^-1 diag(sqrt m) F (F^-1 diag(sqrt m) F is symmetric), M = B B^T:
// p = B w ~ N(0, M), and M^{-1} = D^{-1/2} F^-1 diag(1/m) F D^{-1/2}.
void FourierDiagonalMass::apply_sqrt(const Eigen::VectorXd& w, Eigen::VectorXd& p) {
  filter(w, sqrt_mass_, p);
  if (sqrt_scale_.size() > 0) p.array() *= sqrt_scale_.array();
}

void FourierDiagonalMass::apply_inverse(const Eigen::VectorXd& p, Eigen::VectorXd& v) {
  // No scale, or a vector of the wrong size (refused by filter).
  if (sqrt_scale_.size() == 0 || p.size() != sqrt_scale_.size()) return filter(p, inverse_mass_, v);
  scaled_ = p.array() / sqrt_scale_.array();
  filter(scaled_, inverse_mass_, v);
  v.array() /= sqrt_scale_.array();
}

void validate(const HmcSettings& s) {
  const auto fail = [](const std::string& problem) { throw Error("posterior", problem); };
  if (s.warmup < 0) fail("warmup must be >= 0, got " + std::to_string(s.warmup));
  if (s.samples < 1) fail("samples must be >= 1, got " + std::to_string(s.samples));
  if (s.leapfrog_steps < 1)
    fail("leapfrog_steps must be >= 1, got " + std::to_string(s.leapfrog_steps));
  if (!(s.step_size >= 0) || !std::isfinite(s.step_size))
    fail("step_size must be finite and >= 0 (0: found automatically)");
  if (s.warmup == 0 && s.step_size <= 0)
    fail("step_size must be > 0 when warmup is 0 (nothing adapts it)");
  if (!(s.target_accept > 0 && s.target_accept < 1)) fail("target_accept must lie in (0, 1)");
  if (!(s.jitter >= 0 && s.jitter < 1)) fail("jitter must lie in [0, 1)");
  if (!(s.max_energy_error > 0)) fail("max_energy_error must be > 0");
}

DualAveraging::DualAveraging(double initial_step_size, double target_accept)
    : mu_(std::log(10.0 * initial_step_size)),
      target_(target_accept),
      log_eps_(std::log(initial_step_size)),
      log_eps_bar_(std::log(initial_step_size)) {}

double DualAveraging::update(double accept_probability) {
  constexpr double gamma = 0.05, t0 = 10.0, kappa = 0.75;  // Stan's defaults
  ++m_;
  const double eta = 1.0 / (double(m_) + t0);
  h_bar_ = (1.0 - eta) * h_bar_ + eta * (target_ - accept_probability);
  log_eps_ = mu_ - std::sqrt(double(m_)) / gamma * h_bar_;
  const double x_eta = std::pow(double(m_), -kappa);
  log_eps_bar_ = x_eta * log_eps_ + (1.0 - x_eta) * log_eps_bar_;
  return std::exp(log_eps_);
}

double DualAveraging::final_step_size() const {
  return std::exp(log_eps_bar_);
}

HmcChainStats run_hmc_chain(const LogDensityGrad& f, MassMatrix& mass, const HmcSettings& settings,
                            uint64_t seed, uint64_t chain, Eigen::VectorXd& q,
                            const HmcObserver& observe) {
  validate(settings);
  const auto start = Clock::now();
  TimedTarget target{f};
  const Eigen::Index d = q.size();
  Eigen::VectorXd g(d), w(d), p(d), v(d), q_new(d), g_new(d);
  double logp = target(q, g);
  if (!std::isfinite(logp) || !g.allFinite())
    throw Error("posterior", "chain " + std::to_string(chain) +
                                 " starts where the log density or its gradient is not finite");

  const CounterRng momenta(seed, hmc_stream(chain, HmcStream::momentum));
  const CounterRng uniforms(seed, hmc_stream(chain, HmcStream::uniforms));

  // The energy change of one leapfrog step from q with a fresh momentum (draw `draw` of rng).
  const auto one_step_delta_h = [&](const CounterRng& rng, uint64_t draw, double eps) {
    white_noise(rng, draw, w);
    mass.apply_sqrt(w, p);
    const double h0 = -logp + kinetic(mass, p, v);
    q_new = q;
    g_new = g;
    double logp_new = logp;
    if (!leapfrog(target, mass, eps, 1, h0, settings.max_energy_error, q_new, p, g_new, v,
                  logp_new))
      return -std::numeric_limits<double>::infinity();
    const double delta = h0 - (-logp_new + kinetic(mass, p, v));
    return std::isfinite(delta) ? delta : -std::numeric_limits<double>::infinity();
  };

  double eps = settings.step_size > 0 ? settings.step_size : 1.0;
  if (settings.warmup > 0) {
    // Stan's heuristic: double or halve until one step's acceptance crosses 0.8.
    const CounterRng search(seed, hmc_stream(chain, HmcStream::step_search));
    const double threshold = std::log(0.8);
    uint64_t draw = 0;
    const int direction = one_step_delta_h(search, draw++, eps) > threshold ? 1 : -1;
    for (;;) {
      const double delta = one_step_delta_h(search, draw++, eps);
      if (direction == 1 && !(delta > threshold)) break;
      if (direction == -1 && !(delta < threshold)) break;
      eps = direction == 1 ? 2.0 * eps : 0.5 * eps;
      if (eps > 1e12 || eps < 1e-12 || draw > 200)
        throw Error("posterior", "chain " + std::to_string(chain) +
                                     ": no usable step size (the target's gradient is broken?)");
    }
  }
  DualAveraging adapt(eps, settings.target_accept);

  HmcChainStats stats;
  double accept_sum = 0.0;
  const long total = long(settings.warmup) + settings.samples;
  for (long it = 0; it < total; ++it) {
    HmcIteration info;
    info.iteration = it;
    info.warmup = it < settings.warmup;
    const auto [u_accept, u_jitter] = uniforms.uniform_pair(uint64_t(it));
    info.step_size = eps * (1.0 + settings.jitter * (2.0 * u_jitter - 1.0));

    white_noise(momenta, uint64_t(it), w);
    mass.apply_sqrt(w, p);
    const double h0 = -logp + kinetic(mass, p, v);
    q_new = q;
    g_new = g;
    double logp_new = logp;
    const bool ok = leapfrog(target, mass, info.step_size, settings.leapfrog_steps, h0,
                             settings.max_energy_error, q_new, p, g_new, v, logp_new);
    const double h = ok ? -logp_new + kinetic(mass, p, v) : 0.0;
    info.divergent = !ok || !std::isfinite(h) || h - h0 > settings.max_energy_error;
    info.accept_probability = info.divergent ? 0.0 : std::min(1.0, std::exp(h0 - h));
    info.accepted = !info.divergent && u_accept < info.accept_probability;
    if (info.accepted) {
      q.swap(q_new);
      g.swap(g_new);
      logp = logp_new;
    }
    info.log_density = logp;

    if (info.warmup) {
      stats.warmup_divergences += info.divergent;
      eps = adapt.update(info.accept_probability);
      if (it + 1 == settings.warmup) eps = adapt.final_step_size();
    } else {
      stats.divergences += info.divergent;
      accept_sum += info.accept_probability;
    }
    if (observe) {
      const auto observe_start = Clock::now();
      observe(info, q);
      stats.observer_seconds += seconds_since(observe_start);
    }
  }
  stats.step_size = eps;
  stats.acceptance_rate = accept_sum / settings.samples;
  stats.gradient_evaluations = target.calls;
  stats.target_seconds = target.seconds;
  stats.seconds = seconds_since(start);
  return stats;
}

}  // namespace ff
