// recon: posterior sampling. The Gaussian case is exact (identity flow over a correlated-Gaussian
// base, identity preprocessing): without a mask the posterior of every Fourier mode is Gaussian
// with mean S(S+N)^-1 d and variance SN/(S+N); with a mask its mean is the Wiener filter. The
// latent-space target's gradient (through the inverse flow) matches finite differences. Same seed,
// same chains; every settings key changes the result.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <string>

#include "error_of.hpp"
#include "fieldflow/core/config.hpp"
#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/flow/base.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/recon/map.hpp"
#include "fieldflow/recon/mcmc_diagnostics.hpp"
#include "fieldflow/recon/observation.hpp"
#include "fieldflow/recon/posterior.hpp"
#include "fieldflow/recon/wiener.hpp"
#include "fieldflow/stats/power_spectrum.hpp"
#include "recon_test_data.hpp"

namespace ff {
namespace {

const std::vector<double> kK = {0.05, 0.1, 0.2, 0.4, 0.8, 1.6};
const std::vector<double> kP = {3000, 2500, 900, 200, 30, 4};
constexpr double kBox = 64.0;

FlowSpec gaussian_flow_spec(int n) {
  FlowSpec s;
  s.grid = n;
  s.channels = 1;
  s.levels = {{1, 1, 4, 4}, {1, 0, 4, 0}};
  s.base = BaseKind::correlated_gaussian;
  s.base_k_hmpc = kK;
  s.base_pk = kP;
  s.base_box_size_mpch = kBox;
  s.seed = 5;
  return s;
}

Observation gaussian_observation(MultiScaleFlow<double>& flow, double fraction, double sigma,
                                 uint64_t seed) {
  const int n = flow.spec().grid;
  Grid truth(n, kBox);
  flow.correlated_base()->sample(truth.values.data(), seed, 0, 1.0);
  return test::observe_through_cubes(truth, fraction, sigma, seed);
}

// Everything a posterior run needs, over a double-precision flow.
struct Problem {
  MultiScaleFlow<double> flow;
  Preprocessing preprocessing;
  Observation obs;
  FlowPrior<double> prior;
  PosteriorObjective objective;
  LatentPosterior<double> latent;
  YPosterior y_space;
  Problem(const FlowSpec& spec, double fraction, double sigma, uint64_t seed)
      : flow(spec),
        obs(gaussian_observation(flow, fraction, sigma, seed)),
        prior(flow),
        objective(prior, preprocessing, obs),
        latent(flow, preprocessing, obs),
        y_space(objective, flow_prior_eigenvalues(flow)) {}
  PosteriorSpace& space(const std::string& name) {
    return name == "y" ? static_cast<PosteriorSpace&>(y_space) : latent;
  }
  PosteriorResult run(const PosteriorSettings& s, const std::vector<double>& start,
                      const ChainSharing& sharing = {}) {
    return sample_posterior(space(s.space), preprocessing, obs, start, s, sharing);
  }
};

// The per-voxel z-scores of the posterior mean against `expected`, with each voxel's Monte Carlo
// error sd / sqrt(ESS) from the kept samples (thin = 1: every draw).
std::vector<double> mean_z_scores(const PosteriorResult& r, const std::vector<double>& expected,
                                  const std::vector<double>& sd, int chains) {
  const size_t size = expected.size(), per_chain = r.kept.size() / size_t(chains);
  std::vector<double> z(size);
  for (size_t i = 0; i < size; ++i) {
    Chains voxel(static_cast<size_t>(chains));
    for (size_t s = 0; s < r.kept.size(); ++s)
      voxel[size_t(r.kept_chain[s])].push_back(r.kept[s][i]);
    EXPECT_EQ(voxel[0].size(), per_chain);
    const double ess = effective_sample_size(voxel);
    z[i] = (r.mean[i] - expected[i]) / (sd[i] / std::sqrt(ess));
  }
  return z;
}

void expect_standard_z(const std::vector<double>& z, const std::string& label) {
  double sum_sq = 0, worst = 0;
  for (double v : z) sum_sq += v * v, worst = std::max(worst, std::abs(v));
  // 512 voxels, correlated: the mean of z^2 scatters by a few tenths at most around 1.
  EXPECT_LT(sum_sq / double(z.size()), 1.6) << label;
  EXPECT_GT(sum_sq / double(z.size()), 0.4) << label;
  EXPECT_LT(worst, 5.0) << label;
}

// The exact mass matrix makes successive draws nearly independent: a few hundred suffice.
PosteriorSettings quick(const std::string& space) {
  PosteriorSettings s;
  s.space = space;
  s.chains = 2;
  s.warmup = 80;
  s.samples = 300;
  s.leapfrog_steps = 3;
  s.thin = 1;
  return s;
}

}  // namespace

// Also with a spectral calibration in front (calibration_bins 2, its scales perturbed too): the
// latent chains' y = f^-1(u) and gradient go through its inverse.
TEST(LatentPosterior, GradientThroughTheInverseFlowMatchesFiniteDifferences) {
  omp_set_num_threads(1);  // tiny grids: threads only cost
  for (int calibration_bins : {0, 2}) {
    SCOPED_TRACE("calibration_bins " + std::to_string(calibration_bins));
    FlowSpec spec = gaussian_flow_spec(4);
    spec.calibration_bins = calibration_bins;
    MultiScaleFlow<double> flow(spec);
    flow.perturb(3, 0.2);  // a non-trivial flow
    Preprocessing p;
    p.transform = PreprocessTransform::log1p;
    p.mean = -0.1;
    p.std = 0.6;
    p.eps = 1e-3;
    Observation obs = gaussian_observation(flow, 0.3, 0.5, 4);
    for (double& d : obs.data) d = 0.3 * d;  // keep delta = g(y) in a sensible range
    LatentPosterior<double> target(flow, p, obs);
    const CounterRng rng(9);
    Eigen::VectorXd u(64), grad(64), g2(64);
    for (int i = 0; i < 64; ++i) u[i] = 0.3 * rng.normal(uint64_t(i));
    target.log_density_grad(u, grad);
    const double h = 1e-6;
    for (int i = 0; i < 64; i += 5) {
      Eigen::VectorXd up = u, um = u;
      up[i] += h;
      um[i] -= h;
      const double fd =
          (target.log_density_grad(up, g2) - target.log_density_grad(um, g2)) / (2 * h);
      EXPECT_NEAR(grad[i], fd, 1e-6 * std::max(1.0, std::abs(fd))) << i;
    }
    // The same gradient after evaluating elsewhere (the cache of the inverse pass is keyed on u).
    Eigen::VectorXd again(64);
    target.log_density_grad(u, again);
    EXPECT_LT((again - grad).norm(), 1e-12 * grad.norm());
    // from_y inverts to_y.
    std::vector<double> y(64);
    target.to_y(u, y.data());
    EXPECT_LT((target.from_y(y) - u).norm(), 1e-9 * u.norm());
  }
}

TEST(Posterior, GaussianCaseWithoutMaskIsExactPerFourierMode) {
  omp_set_num_threads(1);  // tiny grids: threads only cost
  const int n = 8;
  const double sigma = 1.0;
  for (const std::string space : {"latent", "y"}) {
    Problem pb(gaussian_flow_spec(n), 0.0, sigma, 21);
    const std::vector<double> lambda = pb.flow.correlated_base()->eigenvalues();
    WienerFilter wf(n, lambda, pb.obs.inverse_noise(), 1);
    const WienerResult exact = wf.solve(pb.obs.data, 1e-10, 100);
    ASSERT_TRUE(exact.closed_form);
    const PosteriorSettings s = quick(space);
    const PosteriorResult r = pb.run(s, exact.x);
    // Per voxel the posterior sd is the same everywhere: sqrt(mean over all modes of SN/(S+N)).
    double voxel_var = 0;
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b)
        for (int c = 0; c <= n / 2; ++c) {
          const double l = lambda[size_t((a * n + b) * (n / 2 + 1) + c)];
          voxel_var += half_complex_weight(c, n) * l * sigma * sigma / (l + sigma * sigma);
        }
    voxel_var /= n * n * n;
    const std::vector<double> sd(pb.obs.size(), std::sqrt(voxel_var));
    expect_standard_z(mean_z_scores(r, exact.x, sd, s.chains), space + " mean");

    // Each mode's posterior variance: E|x_k - m_k|^2 = n^3 SN/(S+N). Averaged over every mode of
    // each shell and every draw, the ratio to it has mean 1; its Monte Carlo error from the
    // ESS of the per-draw shell averages.
    RealFft3d<double> fft(n, 1);
    std::vector<std::complex<double>> mean_k(fft.complex_size());
    std::copy(exact.x.begin(), exact.x.end(), fft.real());
    fft.forward();
    std::copy(fft.complex(), fft.complex() + fft.complex_size(), mean_k.begin());
    const int shells = n;
    std::vector<Chains> ratio(size_t(shells), Chains(size_t(s.chains)));
    for (size_t d = 0; d < r.kept.size(); ++d) {
      std::copy(r.kept[d].begin(), r.kept[d].end(), fft.real());
      fft.forward();
      std::vector<double> sum(size_t(shells), 0.0), count(size_t(shells), 0.0);
      for (int a = 0; a < n; ++a)
        for (int b = 0; b < n; ++b)
          for (int c = 0; c <= n / 2; ++c) {
            const size_t m = size_t((a * n + b) * (n / 2 + 1) + c);
            const int ka = fft_wavenumber(a, n), kb = fft_wavenumber(b, n);
            const int shell = int(std::sqrt(double(ka * ka + kb * kb + c * c)));
            if (shell == 0 || shell >= shells) continue;
            const double l = lambda[m], v = l * sigma * sigma / (l + sigma * sigma);
            const double w = half_complex_weight(c, n);
            sum[size_t(shell)] += w * std::norm(fft.complex()[m] - mean_k[m]) / (n * n * n * v);
            count[size_t(shell)] += w;
          }
      for (int sh = 1; sh < shells; ++sh)
        if (count[size_t(sh)] > 0)
          ratio[size_t(sh)][size_t(r.kept_chain[d])].push_back(sum[size_t(sh)] / count[size_t(sh)]);
    }
    for (int sh = 1; sh < shells; ++sh) {
      if (ratio[size_t(sh)][0].empty()) continue;
      double mean = 0, var = 0, total = 0;
      for (const auto& c : ratio[size_t(sh)])
        for (double v : c) mean += v, total += 1;
      mean /= total;
      for (const auto& c : ratio[size_t(sh)])
        for (double v : c) var += (v - mean) * (v - mean);
      var /= total - 1;
      const double se = std::sqrt(var / effective_sample_size(ratio[size_t(sh)]));
      EXPECT_NEAR(mean, 1.0, 4.5 * se) << space << " shell " << sh;
    }
    EXPECT_EQ(r.divergences, 0) << space;
    EXPECT_GT(r.acceptance_rate, 0.6) << space;
    for (double rhat : r.pk_rhat) EXPECT_LT(rhat, 1.1) << space;
  }
}

TEST(Posterior, GaussianCaseWithMaskHasTheWienerFilterAsMean) {
  omp_set_num_threads(1);  // tiny grids: threads only cost
  const int n = 8;
  Problem pb(gaussian_flow_spec(n), 0.3, 0.7, 31);
  WienerFilter wf(n, pb.flow.correlated_base()->eigenvalues(), pb.obs.inverse_noise(), 1);
  const WienerResult exact = wf.solve(pb.obs.data, 1e-10, 1000);
  ASSERT_FALSE(exact.closed_form);
  // Both masses: with a mask the likelihood's curvature differs from voxel to voxel, so
  // fourier_voxel's mass is not a circulant; either way the chain must target the same posterior.
  for (const std::string mass : {"fourier", "fourier_voxel"}) {
    PosteriorSettings s = quick("latent");
    s.samples = 400;
    s.mass = mass;
    const PosteriorResult r = pb.run(s, exact.x);
    expect_standard_z(mean_z_scores(r, exact.x, r.std, s.chains), "masked mean, " + mass);
    // The Monte Carlo noise power estimates the power of (mean - exact mean): over all the bins'
    // modes (2 chains: one degree of freedom per mode) their ratio is near 1.
    Grid error(n, pb.obs.box_size_mpch);
    for (size_t i = 0; i < error.size(); ++i) error.values[i] = r.mean[i] - exact.x[i];
    const PowerSpectrum error_pk = measure_power_spectrum(error);
    ASSERT_EQ(r.mc_pk_of_mean.size(), error_pk.pk.size()) << mass;
    double actual = 0, estimated = 0;
    for (size_t b = 0; b < error_pk.pk.size(); ++b) {
      actual += error_pk.nmodes[b] * error_pk.pk[b];
      estimated += error_pk.nmodes[b] * r.mc_pk_of_mean[b];
    }
    EXPECT_GT(estimated / actual, 0.5) << mass;
    EXPECT_LT(estimated / actual, 2.0) << mass;
    // Masked voxels are less certain than observed ones.
    double sd_obs = 0, sd_masked = 0, n_obs = 0;
    for (size_t i = 0; i < r.std.size(); ++i) {
      (pb.obs.mask[i] > 0 ? sd_obs : sd_masked) += r.std[i];
      n_obs += pb.obs.mask[i];
    }
    EXPECT_GT(sd_masked / (double(r.std.size()) - n_obs), 1.2 * sd_obs / n_obs) << mass;
  }
}

TEST(Posterior, VoxelScaleGivesTheGaussianApproximationsDiagonal) {
  // D_i (p + w_eff) = p + W_i, p the mean of 1/lambda_k over all n^3 modes (brute force over the
  // full grid here, not the half-complex sum), W_i = mask / sigma^2 (d delta / dy)^2.
  Problem pb(gaussian_flow_spec(4), 0.3, 0.7, 61);
  const std::vector<double> y(pb.obs.size(), 0.25);
  auto& space = pb.latent;
  const std::vector<double> lambda = space.prior_eigenvalues();
  const int n = 4, nc = n / 2 + 1;
  double p = 0.0;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c < n; ++c) {  // c > n/2: the conjugate of (-a, -b, n - c)
        const int cc = c <= n / 2 ? c : n - c, aa = c <= n / 2 ? a : (n - a) % n,
                  bb = c <= n / 2 ? b : (n - b) % n;
        p += 1.0 / lambda[size_t((aa * n + bb) * nc + cc)];
      }
  p /= double(n * n * n);
  const std::vector<double> noise = pb.obs.inverse_noise();
  std::vector<double> w(y.size());
  double w_eff = 0.0;
  for (size_t i = 0; i < y.size(); ++i) {
    double delta = 0, slope = 0;
    preprocessing_to_delta(pb.preprocessing, &y[i], &delta, &slope, 1);
    w[i] = noise[i] * slope * slope;
    w_eff += w[i] / double(y.size());
  }
  const std::vector<double> scale = posterior_mass_voxel_scale(space, pb.preprocessing, pb.obs, y);
  const std::vector<double> m = posterior_mass_eigenvalues(space, pb.preprocessing, pb.obs, y);
  bool varies = false;
  for (size_t i = 0; i < y.size(); ++i) {
    EXPECT_NEAR(scale[i] * (p + w_eff), p + w[i], 1e-12 * (p + w[i])) << i;
    varies = varies || std::abs(scale[i] - scale[0]) > 1e-3;
  }
  EXPECT_TRUE(varies);  // the mask makes W vary
  EXPECT_NEAR(m[0], 1.0 / lambda[0] + w_eff, 1e-12 * m[0]);
}

TEST(Posterior, SameSeedSameChainsAndChainsIndependentOfTheirNumber) {
  omp_set_num_threads(1);  // tiny grids: threads only cost
  Problem pb(gaussian_flow_spec(4), 0.3, 0.7, 41);
  PosteriorSettings s;
  s.chains = 2;
  s.warmup = 10;
  s.samples = 8;
  s.leapfrog_steps = 3;
  s.thin = 4;
  const std::vector<double> start(pb.obs.size(), 0.0);
  const PosteriorResult a = pb.run(s, start), b = pb.run(s, start);
  EXPECT_EQ(a.mean, b.mean);
  EXPECT_EQ(a.kept, b.kept);
  s.chains = 3;
  const PosteriorResult c = pb.run(s, start);
  for (size_t bin = 0; bin < a.pk.size(); ++bin)
    for (int chain = 0; chain < 2; ++chain) EXPECT_EQ(a.pk[bin][chain], c.pk[bin][chain]);
  EXPECT_EQ(c.kept.size(), 3u * 2u);
  EXPECT_EQ(c.kept[2], a.kept[2]);
}

// The progress lines: with progress_seconds = 0, one per iteration but the last (the chain's
// summary line follows it), warm-up first, in order; logging does not change the chain.
TEST(Posterior, ProgressLinesReportEveryIterationInOrder) {
  omp_set_num_threads(1);
  Problem pb(gaussian_flow_spec(4), 0.3, 0.7, 43);
  PosteriorSettings s;
  s.chains = 1;
  s.warmup = 3;
  s.samples = 4;
  s.leapfrog_steps = 2;
  const std::vector<double> start(pb.obs.size(), 0.0);
  std::FILE* log = std::tmpfile();
  ASSERT_NE(log, nullptr);
  const PosteriorResult logged =
      sample_posterior(pb.latent, pb.preprocessing, pb.obs, start, s, ChainSharing{}, log, 0.0);
  std::rewind(log);
  std::vector<std::string> lines;
  for (char buf[512]; std::fgets(buf, sizeof buf, log);) lines.emplace_back(buf);
  std::fclose(log);
  ASSERT_EQ(lines.size(), 7u);  // iterations 1..6 of 7, then the chain's summary
  for (int i = 0; i < 6; ++i) {
    const std::string expected = "posterior: chain 0: iteration " + std::to_string(i + 1) + "/7 (" +
                                 (i < 3 ? "warm-up" : "sampling") + ")";
    EXPECT_EQ(lines[size_t(i)].rfind(expected, 0), 0u) << lines[size_t(i)];
    EXPECT_NE(lines[size_t(i)].find("ETA"), std::string::npos);
  }
  EXPECT_EQ(lines[6].rfind("posterior: chain 0 (rank 0): step size", 0), 0u) << lines[6];
  EXPECT_EQ(logged.mean, pb.run(s, start).mean);
}

// Two processes, played in turn: "rank 1" runs its chains and records what it contributes to each
// sum; "rank 0" runs its own and adds rank 1's contributions in the same order. Rank 0 then holds
// what both would after an allreduce, and it must equal one process running every chain.
TEST(Posterior, ChainsSharedOverTwoProcessesEqualOneProcess) {
  omp_set_num_threads(1);
  Problem pb(gaussian_flow_spec(4), 0.3, 0.7, 61);
  pb.flow.perturb(4, 0.1);
  PosteriorSettings s;
  s.chains = 3;  // rank 0 runs chains 0 and 2, rank 1 chain 1
  s.warmup = 10;
  s.samples = 8;
  s.leapfrog_steps = 3;
  s.thin = 2;
  const std::vector<double> start(pb.obs.size(), 0.0);
  std::vector<std::vector<double>> doubles;
  std::vector<std::vector<float>> floats;
  ChainSharing rank1{1, 2, [&](double* v, size_t n) { doubles.emplace_back(v, v + n); },
                     [&](float* v, size_t n) { floats.emplace_back(v, v + n); }, nullptr};
  pb.run(s, start, rank1);
  size_t next_double = 0, next_float = 0;
  ChainSharing rank0{0, 2,
                     [&](double* v, size_t n) {
                       const auto& other = doubles.at(next_double++);
                       for (size_t i = 0; i < n; ++i) v[i] += other[i];
                     },
                     [&](float* v, size_t n) {
                       const auto& other = floats.at(next_float++);
                       for (size_t i = 0; i < n; ++i) v[i] += other[i];
                     },
                     [](const std::function<void()>& f) { f(); }};
  const PosteriorResult shared = pb.run(s, start, rank0);
  const PosteriorResult single = pb.run(s, start);
  EXPECT_EQ(next_double, doubles.size());
  EXPECT_EQ(shared.mean, single.mean);
  EXPECT_EQ(shared.std, single.std);
  EXPECT_EQ(shared.kept, single.kept);
  EXPECT_EQ(shared.pk, single.pk);
  EXPECT_EQ(shared.r, single.r);
  EXPECT_EQ(shared.pk_ess, single.pk_ess);
  EXPECT_EQ(shared.divergences, single.divergences);
  EXPECT_EQ(shared.acceptance_rate, single.acceptance_rate);
}

TEST(Posterior, EveryKeyIsReadAndChangesTheResult) {
  omp_set_num_threads(1);
  Problem pb(gaussian_flow_spec(4), 0.3, 0.7, 51);
  pb.flow.perturb(2, 0.1);  // so that the latent and y coordinates differ
  const std::vector<double> start(pb.obs.size(), 0.0);
  const std::map<std::string, std::string> base = {
      {"samples", "8"}, {"warmup", "6"}, {"chains", "1"}, {"thin", "2"}};
  // The base settings with one key replaced or added.
  const auto run = [&](const std::string& key, const std::string& value) {
    std::map<std::string, std::string> keys = base;
    if (!key.empty()) keys[key] = value;
    std::string yaml = "posterior:\n";
    for (const auto& [k, v] : keys) yaml += "  " + k + ": " + v + "\n";
    Config config = Config::parse(yaml, "test.yaml");
    const PosteriorSettings s = read_posterior_settings(config.root().section("posterior"));
    config.finish();
    return pb.run(s, start);
  };
  const PosteriorResult reference = run("", "");
  EXPECT_EQ(reference.kept.size(), 4u);
  const std::vector<std::pair<std::string, std::string>> changes = {
      {"seed", "4"},          {"space", "y"},           {"leapfrog_steps", "3"},
      {"step_size", "0.05"},  {"target_accept", "0.6"}, {"jitter", "0.5"},
      {"init_spread", "0.0"}, {"warmup", "7"},          {"samples", "9"},
      {"mass", "fourier"}};
  for (const auto& [key, value] : changes) EXPECT_NE(run(key, value).mean, reference.mean) << key;
  EXPECT_EQ(run("thin", "4").kept.size(), 2u);
  EXPECT_EQ(run("chains", "2").chains.size(), 2u);

  EXPECT_EQ(error_of([&] { run("space", "z"); }),
            "test.yaml: posterior.space: expected one of latent, y, got z");
  EXPECT_EQ(error_of([&] { run("mass", "dense"); }),
            "test.yaml: posterior.mass: expected one of fourier, fourier_voxel, got dense");
  EXPECT_EQ(error_of([&] { run("target_accept", "1.5"); }),
            "test.yaml: posterior.target_accept: expected a number > 0 and < 1, got 1.5");
  EXPECT_EQ(error_of([&] { run("warmup", "0"); }),
            "test.yaml: posterior.step_size: must be > 0 when warmup is 0 (nothing adapts it)");
  EXPECT_EQ(error_of([&] { run("chains", "0"); }),
            "test.yaml: posterior.chains: expected an integer >= 1 and <= 2147483647, got 0");
}

}  // namespace ff
