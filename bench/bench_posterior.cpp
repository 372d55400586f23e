// Posterior sampling (docs/posterior.md), one command:
//  (a) calibration in the exact Gaussian case: the identity flow over a correlated-Gaussian base
//      (the test tables' P(k), 4 Mpc/h cells), identity preprocessing, noise sigma 1, 35% masked
//      in 2^3 cubes; F truths drawn from the prior, each with its own noise and mask. Per field:
//      the fraction of voxels whose truth lies in the central 68% and 95% posterior intervals,
//      the fraction of k bins whose true P(k) lies in the samples' central 95%, the largest split
//      R-hat and the ESS of P(k) in the highest k bin, the acceptance rate; and the posterior
//      mean's rms distance to the Wiener filter (the exact posterior mean) in units of the
//      posterior sd.
//  (b) cost at n^3 with the bench-32 architecture (random weights, log1p): one call of the latent
//      target (inverse flow + its VJP + base) and of the y target (the flow's input gradient)
//      against one density-gradient call of the flow (log_prob_input_grad); then a short latent
//      chain: a leapfrog step's cost over one target call, and ESS of P(k) in the highest k bin
//      per CPU second.
// Usage: OMP_NUM_THREADS=1 bench_posterior [--fields F] [--n N] [--draws D] [--cost-n M]
//        [--cost-draws K]
// Times are CPU seconds of the process (one thread): stable on a shared machine.
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "fieldflow/flow/base.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/recon/map.hpp"
#include "fieldflow/recon/observation.hpp"
#include "fieldflow/recon/posterior.hpp"
#include "fieldflow/recon/wiener.hpp"
#include "timing.hpp"

using namespace ff;

namespace {

const std::vector<double> kK = {0.05, 0.1, 0.2, 0.4, 0.8, 1.6};
const std::vector<double> kP = {3000, 2500, 900, 200, 30, 4};

Observation cube_masked(const Grid& truth, double sigma, uint64_t seed) {
  MaskSettings ms;
  ms.fraction = 0.35;
  ms.size = 2;
  ms.seed = seed + 7;
  return observe(truth, make_mask(truth.n, ms), std::vector<double>(truth.size(), sigma),
                 seed + 11);
}

}  // namespace

int main(int argc, char** argv) {
  int fields = 8, n = 8, draws = 400, cost_n = 32, cost_draws = 20;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--fields")) fields = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--n")) n = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--draws")) draws = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--cost-n")) cost_n = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--cost-draws")) cost_draws = std::atoi(argv[i + 1]);
  }
  omp_set_num_threads(1);

  // (a) Calibration, exact Gaussian case.
  if (fields > 0) {
    FlowSpec spec;
    spec.grid = n;
    spec.levels = {{1, 1, 4, 4}, {1, 0, 4, 0}};
    spec.base = BaseKind::correlated_gaussian;
    spec.base_k_hmpc = kK;
    spec.base_pk = kP;
    spec.base_box_size_mpch = 4.0 * n;
    MultiScaleFlow<double> flow(spec);
    const Preprocessing pre;
    PosteriorSettings s;
    s.chains = 2;
    s.warmup = 100;
    s.samples = draws;
    s.leapfrog_steps = 4;
    s.thin = 1;
    double sum68 = 0, sum95 = 0, sum_pk = 0, worst_rhat = 0;
    std::printf("calibration: %d^3, %d fields, 2 chains x %d draws (latent space)\n", n, fields,
                draws);
    for (int f = 0; f < fields; ++f) {
      Grid truth(n, spec.base_box_size_mpch);
      flow.correlated_base()->sample(truth.values.data(), 100 + uint64_t(f), 0, 1.0);
      const Observation obs = cube_masked(truth, 1.0, 200 + uint64_t(f));
      WienerFilter wf(n, flow.correlated_base()->eigenvalues(), obs.inverse_noise(), 1);
      const WienerResult exact = wf.solve(obs.data, 1e-10, 2000);
      LatentPosterior<double> space(flow, pre, obs);
      s.seed = 300 + uint64_t(f);
      const PosteriorResult r = sample_posterior(space, pre, obs, exact.x, s, ChainSharing{});
      double z2 = 0;
      for (size_t i = 0; i < r.mean.size(); ++i) {
        const double z = (r.mean[i] - exact.x[i]) / r.std[i];
        z2 += z * z;
      }
      const double rhat = *std::max_element(r.pk_rhat.begin(), r.pk_rhat.end());
      worst_rhat = std::max(worst_rhat, rhat);
      std::printf(
          "  field %d: coverage68 %.3f coverage95 %.3f P(k) in central 95%% %.3f, max R-hat "
          "%.3f, ESS(P(k_max)) %.0f, acceptance %.2f, |mean - WF| rms %.3f sd\n",
          f, *r.coverage68, *r.coverage95, *r.pk_coverage95, rhat, r.pk_ess.back(),
          r.acceptance_rate, std::sqrt(z2 / double(r.mean.size())));
      sum68 += *r.coverage68;
      sum95 += *r.coverage95;
      sum_pk += *r.pk_coverage95;
    }
    std::printf(
        "calibration: mean coverage68 %.3f (nominal 0.68), coverage95 %.3f (0.95), P(k) in "
        "central 95%% %.3f (target >= 0.9), worst R-hat %.3f\n",
        sum68 / fields, sum95 / fields, sum_pk / fields, worst_rhat);
  }

  // (b) Cost with the bench-32 architecture.
  if (cost_n > 0) {
    FlowSpec spec = bench32_flow_spec();
    spec.grid = cost_n;
    spec.seed = 4;
    MultiScaleFlow<float> flow(spec);
    flow.perturb(5, 0.02);
    const Preprocessing pre{PreprocessTransform::log1p, -0.3, 0.8};
    Grid truth(cost_n, 4.0 * cost_n);
    CorrelatedGaussian::from_power(cost_n, truth.box_size_mpch, kK, kP, 0.0)
        .sample(truth.values.data(), 7, 0, 1.0);
    const double var = truth.variance();
    for (double& v : truth.values) v = std::exp(v - var / 2) - 1;
    const Observation obs = cube_masked(truth, 1.0, 9);
    const std::vector<double> y0 = delta_to_preprocessed(pre, truth.values);
    Tensor<float> x(1, cost_n, 1), dx;
    for (size_t i = 0; i < x.size(); ++i) x.data[i] = float(y0[i]);
    const int reps = 3;
    const double density_grad = median_seconds(reps, [&] { flow.log_prob_input_grad(x, dx); });
    LatentPosterior<float> latent(flow, pre, obs);
    const Eigen::VectorXd u0 = latent.from_y(y0);
    Eigen::VectorXd g;
    Eigen::VectorXd u = u0;
    const double latent_call = median_seconds(reps, [&] {
      u[0] += 1e-3;  // a new state each time (the target caches its last inverse pass)
      latent.log_density_grad(u, g);
    });
    FlowPrior<float> prior(flow);
    PosteriorObjective objective(prior, pre, obs);
    YPosterior y_space(objective, flow_prior_eigenvalues(flow));
    const Eigen::VectorXd q0 = y_space.from_y(y0);
    const double y_call = median_seconds(reps, [&] { y_space.log_density_grad(q0, g); });
    std::printf(
        "cost %d^3 (bench-32 architecture): density gradient (log_prob_input_grad) %.3f s; "
        "latent target %.3f s (%.2fx); y target %.3f s (%.2fx)\n",
        cost_n, density_grad, latent_call, latent_call / density_grad, y_call,
        y_call / density_grad);
    PosteriorSettings s;
    s.chains = 1;
    s.warmup = cost_draws;
    s.samples = cost_draws;
    s.leapfrog_steps = 8;
    s.thin = cost_draws;
    const double cpu0 = cpu_now();
    const PosteriorResult r = sample_posterior(latent, pre, obs, y0, s, ChainSharing{});
    const double cpu = cpu_now() - cpu0;
    const double calls = double(r.gradient_evaluations);
    // Wall-clock split of the chain (HMC's own timers): a leapfrog step (everything but the
    // draws' measurement) over a target call.
    const double step_over_call = (r.chain_seconds - r.observer_seconds) / r.target_seconds;
    std::printf(
        "chain %d^3 latent, %d warm-up + %d draws x %d leapfrog steps: %.0f gradient calls, "
        "%.1f CPU s; a leapfrog step is %.2fx a target call; CPU per leapfrog step (draws' "
        "measurement included) %.3f s = %.2fx a density-gradient call (target <= 1.5); "
        "acceptance %.2f, %ld divergences; ESS(P(k_max)) %.1f over %d draws, %.3g per CPU "
        "second\n",
        cost_n, s.warmup, s.samples, s.leapfrog_steps, calls, cpu, step_over_call, cpu / calls,
        cpu / calls / density_grad, r.acceptance_rate, r.divergences, r.pk_ess.back(), s.samples,
        r.pk_ess.back() / cpu);
  }
  return 0;
}
