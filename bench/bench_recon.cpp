// Reconstruction speed, one command (docs/BENCHMARKS.md):
//  (a) Wiener filter at 32^3 and 64^3 (35% masked in 4^3 cubes, sigma = field rms, residual
//      1e-6): seconds and PCG iterations; each iteration (the solver's own CPU time of its
//      iterations, WienerResult::iterations_cpu_seconds, over their number) against one FFT round
//      trip (the c2r and r2c it needs) timed in the same run on the filter's own plans: target
//      <= 1.5x; iterations at 10/35/60% masked, target < 100 at 35%.
//  (b) MAP: seconds and L-BFGS iterations at 32^3 and 64^3 with the bench-32 architecture
//      (random weights, log1p preprocessing) over a lognormal field; the cost per L-BFGS
//      iteration against one input-gradient call of the flow, same run: target <= 1.3x.
// Usage: OMP_NUM_THREADS=1 bench_recon [--reps R] [--map-iterations K]
// Times are CPU seconds of the process (one thread): stable on a shared machine.
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "fieldflow/core/fft.hpp"
#include "fieldflow/flow/base.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/recon/map.hpp"
#include "fieldflow/recon/observation.hpp"
#include "fieldflow/recon/wiener.hpp"
#include "timing.hpp"

using namespace ff;

namespace {

const std::vector<double> kK = {0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6};
const std::vector<double> kP = {8000, 12000, 6000, 2000, 500, 90, 12};

// A lognormal field: a Gaussian with the table's spectrum, exponentiated (delta > -1, skewed).
Grid lognormal(int n, double box, uint64_t seed) {
  Grid g(n, box);
  CorrelatedGaussian::from_power(n, box, kK, kP, 0.0).sample(g.values.data(), seed, 0, 1.0);
  const double var = g.variance();
  for (double& v : g.values) v = std::exp(v - var / 2) - 1;
  return g;
}

std::vector<double> delta_eigenvalues(const Grid& g) {
  // The prior S from the field's own table (a Gaussian approximation, as a WF would use).
  return CorrelatedGaussian::from_power(g.n, g.box_size_mpch, kK, kP, 0.0).eigenvalues();
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 5, map_iterations = 30;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--reps")) reps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--map-iterations")) map_iterations = std::atoi(argv[i + 1]);
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // one line at a time, also into a pipe
  std::printf(
      "bench_recon: %d threads, median CPU seconds of %d repetitions (run it with "
      "OMP_NUM_THREADS=1)\n",
      omp_get_max_threads(), reps);
  bool pass = true;
  for (int n : {32, 64}) {
    const double box = 4.0 * n;
    const Grid truth = lognormal(n, box, 1);
    const double sigma = std::sqrt(truth.variance());
    const std::vector<double> lambda = delta_eigenvalues(truth);
    for (double fraction : {0.10, 0.35, 0.60}) {
      MaskSettings ms;
      ms.fraction = fraction;
      const Observation o =
          observe(truth, make_mask(n, ms), std::vector<double>(truth.size(), sigma), 3);
      WienerFilter wf(n, lambda, o.inverse_noise());
      WienerResult r;
      std::vector<double> iteration_times;  // the solver's own timing of its iterations
      const double solve = median_seconds(reps, [&] {
        r = wf.solve(o.data, 1e-6, 2000);
        iteration_times.push_back(r.iterations_cpu_seconds / std::max(1, r.iterations));
      });
      std::sort(iteration_times.begin(), iteration_times.end());
      const double per_iteration = iteration_times[iteration_times.size() / 2];
      RealFft3d<double>& fft = wf.fft();
      const double round_trip = median_seconds(reps * 20, [&] {
        fft.inverse();
        fft.forward();
      });
      const double ratio = per_iteration / round_trip;
      const bool ok = (fraction != 0.35 || r.iterations < 100) && ratio <= 1.5;
      pass = pass && ok;
      std::printf(
          "WF %d^3 %2.0f%% masked: %.4f s, %d PCG iterations (residual %.2g), %.3f ms per "
          "iteration, FFT round trip %.3f ms, ratio %.2f (target <= 1.5%s) %s\n",
          n, 100 * fraction, solve, r.iterations, r.relative_residual, 1e3 * per_iteration,
          1e3 * round_trip, ratio, fraction == 0.35 ? ", iterations < 100" : "",
          ok ? "PASS" : "FAIL");
    }
    // MAP.
    FlowSpec spec = bench32_flow_spec();
    spec.grid = n;
    spec.seed = 4;
    MultiScaleFlow<float> flow(spec);
    flow.perturb(5, 0.02);
    const Preprocessing pre{PreprocessTransform::log1p, -0.3, 0.8};
    MaskSettings ms;
    const Observation o =
        observe(truth, make_mask(n, ms), std::vector<double>(truth.size(), sigma), 3);
    FlowPrior<float> prior(flow);
    PosteriorObjective objective(prior, pre, o);
    Tensor<float> x(1, n, 1), dx;
    std::vector<double> y0 = delta_to_preprocessed(pre, truth.values);
    for (size_t i = 0; i < x.size(); ++i) x.data[i] = float(y0[i]);
    const double grad_call = median_seconds(reps, [&] { flow.log_prob_input_grad(x, dx); });
    MapSettings s;
    s.max_iterations = map_iterations;
    s.tolerance = 0;
    s.gradient_tolerance = 0;
    MapResult m;
    const double t = median_seconds(1, [&] { m = map_reconstruct(objective, y0, s); });
    // Per iteration beyond the first evaluation (the start costs one gradient call).
    const double per_iteration = (t - grad_call) / std::max(1, m.iterations);
    const double ratio = per_iteration / grad_call;
    const bool ok = ratio <= 1.3;
    pass = pass && ok;
    std::printf(
        "MAP %d^3: %.2f s for %d L-BFGS iterations (%d evaluations, stop %s), %.1f ms per "
        "iteration, flow input gradient %.1f ms, ratio %.2f (target <= 1.3) %s\n",
        n, t, m.iterations, m.evaluations, m.stop.c_str(), 1e3 * per_iteration, 1e3 * grad_call,
        ratio, ok ? "PASS" : "FAIL");
  }
  std::printf("bench_recon: %s\n", pass ? "PASS" : "FAIL");
  return 0;
}
