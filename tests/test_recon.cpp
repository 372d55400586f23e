// Reconstruction: masks and noise, the Wiener filter (closed form, PCG against a dense solve and
// its normal equations, iterations against the masked fraction, the same on every SIMD target),
// the MAP objective's gradient against finite differences, L-BFGS's monotone descent, the
// MAP = WF identity for a Gaussian flow, and the divergence guard.
#include <gtest/gtest.h>

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Dense>
#include <cmath>
#include <numbers>

#include "error_of.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/core/simd.hpp"
#include "fieldflow/flow/base.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/recon/map.hpp"
#include "fieldflow/recon/observation.hpp"
#include "fieldflow/recon/wiener.hpp"
#include "recon_test_data.hpp"

namespace ff {
namespace {

// |a - b| / |reference| over all voxels.
double relative_distance(const std::vector<double>& a, const std::vector<double>& b,
                         const std::vector<double>& reference) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    norm += reference[i] * reference[i];
  }
  return std::sqrt(diff / norm);
}

const std::vector<double> kK = {0.05, 0.1, 0.2, 0.4, 0.8, 1.6};
const std::vector<double> kP = {3000, 2500, 900, 200, 30, 4};

// A Gaussian random field with the table's spectrum (the truth of the tests).
Grid gaussian_field(int n, double box, uint64_t seed) {
  CorrelatedGaussian g = CorrelatedGaussian::from_power(n, box, kK, kP, 0.0);
  Grid out(n, box);
  g.sample(out.values.data(), seed, 0, 1.0);
  return out;
}

std::vector<double> eigenvalues(int n, double box) {
  return CorrelatedGaussian::from_power(n, box, kK, kP, 0.0).eigenvalues();
}

// Dense circulant matrix of the eigenvalues raised to `power`, by transforming basis vectors.
Eigen::MatrixXd dense_fourier_diagonal(int n, const std::vector<double>& lambda, double power) {
  const int N = n * n * n;
  RealFft3d<double> fft(n, 1);
  Eigen::MatrixXd M(N, N);
  for (int j = 0; j < N; ++j) {
    std::fill(fft.real(), fft.real() + N, 0.0);
    fft.real()[j] = 1.0;
    fft.forward();
    for (size_t m = 0; m < fft.complex_size(); ++m) fft.complex()[m] *= std::pow(lambda[m], power);
    fft.inverse();
    for (int i = 0; i < N; ++i) M(i, j) = fft.real()[i] / N;
  }
  return M;
}

Observation masked_observation(int n, double box, double fraction, double sigma, uint64_t seed) {
  return test::observe_through_cubes(gaussian_field(n, box, seed), fraction, sigma, seed);
}

double count_masked(const std::vector<double>& m) {
  double c = 0;
  for (double v : m) c += v == 0.0;
  return c;
}

TEST(Mask, KindsReachTheirFractionAndFollowTheSeed) {
  const int n = 16;
  const double N = n * n * n;
  MaskSettings s;
  s.fraction = 0.35;
  s.size = 4;
  const auto cubes = make_mask(n, s);
  EXPECT_GE(count_masked(cubes), 0.35 * N);
  EXPECT_LT(count_masked(cubes), 0.35 * N + 64);
  EXPECT_EQ(make_mask(n, s), cubes);
  s.seed = 3;
  EXPECT_NE(make_mask(n, s), cubes);
  s.size = 2;
  const auto small = make_mask(n, s);
  EXPECT_LT(count_masked(small), 0.35 * N + 8);
  s.kind = "slab";
  const auto slab = make_mask(n, s);
  EXPECT_EQ(count_masked(slab), std::lround(0.35 * n) * n * n);
  // A slab masks whole x-planes.
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n * n; ++j) EXPECT_EQ(slab[i * n * n + j], slab[i * n * n]);
  s.kind = "sphere";
  s.fraction = 0.1;
  EXPECT_EQ(count_masked(make_mask(n, s)), std::llround(0.1 * N));
  s.kind = "none";
  EXPECT_EQ(count_masked(make_mask(n, s)), 0);
  s.kind = "cubes";
  s.fraction = 1.0;
  EXPECT_EQ(error_of([&] { make_mask(n, s); }), "mask.fraction: must be in [0, 1), got 1");
}

TEST(Observation, NoiseHasItsSigmaAndMaskedVoxelsAreEmpty) {
  const Observation o = masked_observation(16, 64.0, 0.3, 0.7, 1);
  double sum2 = 0, count = 0;
  for (size_t i = 0; i < o.size(); ++i) {
    if (o.mask[i] == 0) {
      EXPECT_EQ(o.data[i], 0.0);
      continue;
    }
    const double r = o.data[i] - (*o.truth)[i];
    sum2 += r * r;
    ++count;
  }
  EXPECT_NEAR(std::sqrt(sum2 / count), 0.7, 0.7 * 4 / std::sqrt(count));
  EXPECT_NEAR(o.observed_fraction(), count / double(o.size()), 1e-12);
}

// No mask, uniform noise: the PCG agrees with the closed form S (S + N)^-1 d.
TEST(WienerFilter, ConjugateGradientEqualsClosedFormWithoutMask) {
  const int n = 16;
  const double box = 64.0;
  const Observation o = masked_observation(n, box, 0.0, 1.3, 2);
  WienerFilter wf(n, eigenvalues(n, box), o.inverse_noise(), 1);
  ASSERT_TRUE(wf.closed_form_applies());
  const WienerResult exact = wf.solve(o.data, 1e-10, 100);
  EXPECT_TRUE(exact.closed_form);
  EXPECT_LT(exact.relative_residual, 1e-12);
  const WienerResult cg = wf.solve(o.data, 1e-10, 100, false);
  EXPECT_FALSE(cg.closed_form);
  EXPECT_LE(cg.iterations, 2);  // the preconditioner is exact here
  double diff = 0, norm = 0;
  for (size_t i = 0; i < o.size(); ++i) {
    diff = std::max(diff, std::abs(cg.x[i] - exact.x[i]));
    norm = std::max(norm, std::abs(exact.x[i]));
  }
  EXPECT_LT(diff, 1e-6 * norm);
  // The closed form is the textbook filter mode by mode: x_k = lambda_k/(lambda_k + sigma^2) d_k.
  RealFft3d<double> fft(n, 1);
  std::copy(o.data.begin(), o.data.end(), fft.real());
  fft.forward();
  const auto lambda = eigenvalues(n, box);
  for (size_t m = 0; m < fft.complex_size(); ++m)
    fft.complex()[m] *= lambda[m] / (lambda[m] + 1.69);
  fft.inverse();
  for (size_t i = 0; i < o.size(); ++i)
    EXPECT_NEAR(exact.x[i], fft.real()[i] / o.size(), 1e-9 * norm);
}

// With a mask and non-uniform noise: the PCG solution equals a dense solve of the normal
// equations, and satisfies them to the requested residual.
TEST(WienerFilter, MaskedSolutionSatisfiesNormalEquations) {
  const int n = 8, N = n * n * n;
  const double box = 40.0;
  Observation o = masked_observation(n, box, 0.35, 0.8, 3);
  for (size_t i = 0; i < o.size(); i += 3) o.noise_sigma[i] = 1.5;  // not uniform
  const auto lambda = eigenvalues(n, box);
  WienerFilter wf(n, lambda, o.inverse_noise(), 1);
  EXPECT_FALSE(wf.closed_form_applies());
  const double tol = 1e-8;
  const WienerResult r = wf.solve(o.data, tol, 500);
  EXPECT_GT(r.iterations, 2);
  EXPECT_LE(r.relative_residual, 10 * tol);
  EXPECT_GE(r.iterations_cpu_seconds, 0.0);               // timed (the iterations alone)
  EXPECT_LE(r.iterations_cpu_seconds, r.seconds + 0.01);  // one thread here: within the solve
  const Eigen::MatrixXd S_inv = dense_fourier_diagonal(n, lambda, -1.0);
  const Eigen::MatrixXd S_half = dense_fourier_diagonal(n, lambda, 0.5);
  const std::vector<double> w = o.inverse_noise();
  Eigen::VectorXd W = Eigen::Map<const Eigen::VectorXd>(w.data(), N);
  Eigen::VectorXd d = Eigen::Map<const Eigen::VectorXd>(o.data.data(), N);
  Eigen::MatrixXd A = S_inv;
  A.diagonal() += W;
  const Eigen::VectorXd b = W.cwiseProduct(d);
  const Eigen::VectorXd x_dense = A.ldlt().solve(b);
  const Eigen::VectorXd x = Eigen::Map<const Eigen::VectorXd>(r.x.data(), N);
  EXPECT_LT((x - x_dense).norm(), 1e-6 * x_dense.norm());
  // The whitened residual S^1/2 (b - A x) relative to S^1/2 b, the CG's stopping criterion.
  const double whitened = (S_half * (b - A * x)).norm() / (S_half * b).norm();
  EXPECT_LE(whitened, 10 * tol);
  EXPECT_NEAR(whitened, r.relative_residual, 1e-3 * tol + 0.5 * whitened);
}

// Iterations grow mildly with the masked fraction (and stay far below 100 at 35%).
TEST(WienerFilter, IterationsAgainstMaskedFraction) {
  const int n = 16;
  std::vector<int> its;
  for (double f : {0.10, 0.35, 0.60}) {
    const Observation o = masked_observation(n, 64.0, f, 1.0, 4);
    WienerFilter wf(n, eigenvalues(n, 64.0), o.inverse_noise(), 1);
    its.push_back(wf.solve(o.data, 1e-6, 1000).iterations);
  }
  EXPECT_LT(its[1], 100);
  EXPECT_LE(its[0], its[2]);
  EXPECT_LT(its[2], 3 * its[0] + 10);
}

// The PCG's pass over the modes is a SIMD kernel (recon/wiener_kernels.cpp): every target this CPU
// supports, forced one at a time, reaches the solution of the least of them in as many iterations
// (the sums' order and the fused multiply-adds differ: rounding only).
TEST(WienerFilter, SameSolutionOnEverySimdTarget) {
  const int n = 16;
  const Observation o = masked_observation(n, 64.0, 0.35, 1.0, 5);
  WienerFilter wf(n, eigenvalues(n, 64.0), o.inverse_noise(), 1);
  struct Restore {
    ~Restore() { force_simd_target(""); }
  } restore;
  const std::vector<std::string> targets = simd_available_targets();
  ASSERT_FALSE(targets.empty());
  force_simd_target(targets.back());
  const WienerResult reference = wf.solve(o.data, 1e-8, 500);
  double largest = 0;
  for (double v : reference.x) largest = std::max(largest, std::abs(v));
  for (const std::string& target : targets) {
    force_simd_target(target);
    const WienerResult r = wf.solve(o.data, 1e-8, 500);
    double worst = 0;
    for (size_t i = 0; i < r.x.size(); ++i)
      worst = std::max(worst, std::abs(r.x[i] - reference.x[i]));
    EXPECT_NEAR(r.iterations, reference.iterations, 1) << target;
    EXPECT_LE(r.relative_residual, 1e-7) << target;
    EXPECT_LT(worst, 1e-7 * largest) << target << " against " << targets.back();
  }
}

FlowSpec small_flow(int grid) {
  FlowSpec s;
  s.grid = grid;
  s.levels = {{2, 1, 4, 6}, {2, 0, 4, 0}};
  s.seed = 5;
  return s;
}

// small_flow over the correlated-Gaussian base of kK, kP in a box of side box.
FlowSpec gaussian_flow(int grid, double box) {
  FlowSpec spec = small_flow(grid);
  spec.base = BaseKind::correlated_gaussian;
  spec.base_k_hmpc = kK;
  spec.base_pk = kP;
  spec.base_box_size_mpch = box;
  return spec;
}

// -log p(y|d)'s gradient (log1p preprocessing through a perturbed flow, mask, noise) matches
// central finite differences.
TEST(PosteriorObjective, GradientMatchesFiniteDifferences) {
  const int n = 8;
  MultiScaleFlow<double> flow(small_flow(n));
  flow.perturb(9, 0.05);
  FlowPrior<double> prior(flow);
  Preprocessing p{PreprocessTransform::log1p, 0.1, 0.6};
  Observation o = masked_observation(n, 32.0, 0.3, 0.5, 5);
  for (double& d : *o.truth) d = std::max(d, -0.9);
  PosteriorObjective obj(prior, p, o);
  std::vector<double> y(o.size()), g(o.size());
  const CounterRng rng(3, 0);
  for (size_t i = 0; i < y.size(); ++i) y[i] = 0.7 * rng.normal(i);
  // Every 7th voxel's derivative against a central difference.
  auto check = [&](PosteriorObjective& objective) {
    objective.value_grad(y.data(), g.data());
    const double h = 1e-5;
    for (size_t i = 0; i < y.size(); i += 7) {
      std::vector<double> yp = y, ym = y;
      yp[i] += h;
      ym[i] -= h;
      const double fd =
          (objective.value_grad(yp.data(), nullptr) - objective.value_grad(ym.data(), nullptr)) /
          (2 * h);
      EXPECT_NEAR(g[i], fd, 1e-6 * std::max(1.0, std::abs(fd))) << i;
    }
  };
  check(obj);
  // With a range that many voxels leave on both sides: the wall's gradient too.
  PosteriorObjective walled(prior, p, o, PriorRange{-0.6, 0.5});
  const double f_walled = walled.value_grad(y.data(), nullptr);
  EXPECT_GT(walled.wall(), 0.0);
  EXPECT_NEAR(f_walled - walled.wall(), obj.value_grad(y.data(), nullptr), 1e-9);
  check(walled);
  // A prior weight beta scales the prior's term: f_beta - f_1 = (1 - beta) log p(y).
  PosteriorObjective tempered(prior, p, o, PriorRange{-0.6, 0.5}, 0.6);
  EXPECT_NEAR(tempered.value_grad(y.data(), nullptr) - f_walled, 0.4 * walled.log_prior(),
              1e-9 * std::abs(f_walled));
  check(tempered);
  for (double beta : {0.0, -1.0, std::numeric_limits<double>::infinity()})
    EXPECT_NE(error_of([&] {
                PosteriorObjective(prior, p, o, {}, beta);
              }).find("map: the prior's weight must be finite and > 0"),
              std::string::npos)
        << beta;
}

// The flow prior takes the flow's input-only gradient: the same input gradient as the full
// backward pass, and no parameter gradient touched (a poisoned grad survives).
TEST(FlowPrior, InputGradientLeavesParameterGradientsAlone) {
  const int n = 8;
  MultiScaleFlow<double> flow(small_flow(n));
  flow.perturb(4, 0.05);
  for (Param<double>* p : flow.params()) std::fill(p->grad.begin(), p->grad.end(), 7.0);
  FlowPrior<double> prior(flow);
  std::vector<double> y(size_t(n) * n * n), g(y.size());
  const CounterRng rng(5, 0);
  for (size_t i = 0; i < y.size(); ++i) y[i] = rng.normal(i);
  const double logp = prior.log_prob_grad(y.data(), g.data());
  for (Param<double>* p : flow.params())
    for (double v : p->grad) ASSERT_EQ(v, 7.0) << p->name;
  Tensor<double> x(1, n, 1), dx;
  std::copy(y.begin(), y.end(), x.data.begin());
  EXPECT_DOUBLE_EQ(flow.log_prob_grad(x, dx)[0], logp);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(g[i], dx.data[i], 1e-12) << i;
}

// Each L-BFGS iteration lowers the objective, and the iteration cap and the tolerances stop it.
TEST(MapReconstruction, LbfgsDecreasesMonotonically) {
  const int n = 8;
  MultiScaleFlow<double> flow(small_flow(n));
  flow.perturb(9, 0.05);
  FlowPrior<double> prior(flow);
  Preprocessing p{PreprocessTransform::log1p, 0.0, 0.8};
  Observation o = masked_observation(n, 32.0, 0.3, 0.5, 6);
  PosteriorObjective obj(prior, p, o);
  MapSettings s;
  s.max_iterations = 12;
  s.tolerance = 0;
  s.gradient_tolerance = 0;
  const MapResult r = map_reconstruct(obj, std::vector<double>(o.size(), 0.0), s);
  ASSERT_EQ(r.history.size(), size_t(r.iterations) + 1);
  EXPECT_EQ(r.iterations, 12);
  EXPECT_EQ(r.stop, "max_iterations");
  for (size_t i = 1; i < r.history.size(); ++i) EXPECT_LT(r.history[i], r.history[i - 1]) << i;
  EXPECT_NEAR(r.objective, r.history.back(), 1e-9 * std::abs(r.objective));
  s.tolerance = 1e-2;
  const MapResult loose = map_reconstruct(obj, std::vector<double>(o.size(), 0.0), s);
  EXPECT_EQ(loose.stop, "objective_change");
  EXPECT_LT(loose.iterations, 12);
  s.tolerance = 0;
  s.gradient_tolerance = 0.3;
  s.max_iterations = 40;
  const MapResult grad = map_reconstruct(obj, std::vector<double>(o.size(), 0.0), s);
  EXPECT_EQ(grad.stop, "gradient");
  EXPECT_LE(grad.gradient_rms, 0.3);
  EXPECT_LT(grad.iterations, 40);
}

// The identity flow over a correlated-Gaussian base equal to S, with identity preprocessing,
// makes -log p(y|d) the Wiener filter's quadratic: the MAP equals the Wiener solution.
TEST(MapReconstruction, GaussianFlowMapEqualsWienerFilter) {
  const int n = 8;
  const double box = 32.0;
  FlowSpec spec = gaussian_flow(n, box);
  MultiScaleFlow<double> flow(spec);  // fresh couplings: the identity
  FlowPrior<double> prior(flow);
  const Observation o = masked_observation(n, box, 0.35, 0.6, 7);
  WienerFilter wf(n, eigenvalues(n, box), o.inverse_noise(), 1);
  const WienerResult w = wf.solve(o.data, 1e-12, 1000);
  PosteriorObjective obj(prior, Preprocessing{}, o);
  MapSettings s;
  s.max_iterations = 2000;
  s.tolerance = 1e-15;
  s.gradient_tolerance = 1e-11;
  const MapResult m = map_reconstruct(obj, std::vector<double>(o.size(), 0.0), s);
  EXPECT_LT(relative_distance(m.delta, w.x, w.x), 1e-6) << m.stop << " " << m.iterations;
  // The same in the whitened variable y = S^{1/2} u (Hessian I + S^{1/2} W S^{1/2}).
  const auto lambda = eigenvalues(n, box);
  const MapResult mw =
      map_reconstruct(obj, std::vector<double>(o.size(), 0.0), s, nullptr, 10.0, &lambda);
  EXPECT_LT(relative_distance(mw.delta, w.x, w.x), 1e-6) << mw.stop << " " << mw.iterations;
  // With the prior raised to the power beta the prior is the Gaussian of covariance S / beta: the
  // MAP is the Wiener filter of S / beta.
  {
    const double beta = 0.4;
    std::vector<double> scaled = lambda;
    for (double& l : scaled) l /= beta;
    const WienerResult wb =
        WienerFilter(n, scaled, o.inverse_noise(), 1).solve(o.data, 1e-12, 1000);
    PosteriorObjective tempered(prior, Preprocessing{}, o, {}, beta);
    const MapResult mb =
        map_reconstruct(tempered, std::vector<double>(o.size(), 0.0), s, nullptr, 10.0, &lambda);
    EXPECT_LT(relative_distance(mb.delta, wb.x, wb.x), 1e-6) << mb.stop << " " << mb.iterations;
    EXPECT_GT(relative_distance(mb.delta, w.x, w.x), 1e-2);  // and not the WF of S
  }
  // And in y = D^{-1/2} S^{1/2} u with a per-voxel scale D (here the likelihood's weight, which
  // varies between masked and observed voxels): the same maximum.
  std::vector<double> scale = o.inverse_noise();
  for (double& d : scale) d = 0.5 + d;
  const MapResult mv =
      map_reconstruct(obj, std::vector<double>(o.size(), 0.0), s, nullptr, 10.0, &lambda, &scale);
  EXPECT_LT(relative_distance(mv.delta, w.x, w.x), 1e-6) << mv.stop << " " << mv.iterations;
  // A scale of the wrong size, or not positive, is refused.
  std::vector<double> short_scale(3, 1.0), zero_scale(o.size(), 0.0);
  EXPECT_NE(error_of([&] {
              map_reconstruct(obj, std::vector<double>(o.size(), 0.0), s, nullptr, 10.0, &lambda,
                              &short_scale);
            }).find("voxel scale has the wrong size"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              map_reconstruct(obj, std::vector<double>(o.size(), 0.0), s, nullptr, 10.0, &lambda,
                              &zero_scale);
            }).find("voxel scale must be finite and > 0"),
            std::string::npos);
}

// A spectral calibration a(|k|) in front of that Gaussian flow makes the prior over y the Gaussian
// of covariance S / a^2 (per mode): the MAP is the Wiener filter of those eigenvalues, computed
// here from the bin rule (|k| in [b, b + 1) k_F at calibration_bins = n/2) on its own.
TEST(MapReconstruction, CalibratedGaussianFlowMapEqualsWienerFilterOfScaledS) {
  const int n = 8;
  const double box = 32.0;
  FlowSpec spec = gaussian_flow(n, box);
  spec.calibration_bins = n / 2;
  MultiScaleFlow<double> flow(spec);
  std::vector<double>& log_scale = flow.calibration()->log_scale.value;
  for (size_t b = 0; b < log_scale.size(); ++b) log_scale[b] = 0.4 - 0.15 * double(b);
  std::vector<double> lambda = eigenvalues(n, box);
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c <= n / 2; ++c) {
        const int ka = fft_wavenumber(a, n), kb = fft_wavenumber(b, n);
        const size_t bin = size_t(std::sqrt(double(ka * ka + kb * kb + c * c)));
        lambda[size_t((a * n + b) * (n / 2 + 1) + c)] *= std::exp(-2 * log_scale[bin]);
      }
  FlowPrior<double> prior(flow);
  const Observation o = masked_observation(n, box, 0.35, 0.6, 7);
  const WienerResult w = WienerFilter(n, lambda, o.inverse_noise(), 1).solve(o.data, 1e-12, 1000);
  const WienerResult unscaled =
      WienerFilter(n, eigenvalues(n, box), o.inverse_noise(), 1).solve(o.data, 1e-12, 1000);
  PosteriorObjective obj(prior, Preprocessing{}, o);
  MapSettings s;
  s.max_iterations = 2000;
  s.tolerance = 1e-15;
  s.gradient_tolerance = 1e-11;
  const MapResult m = map_reconstruct(obj, std::vector<double>(o.size(), 0.0), s);
  EXPECT_LT(relative_distance(m.delta, w.x, w.x), 1e-6) << m.stop << " " << m.iterations;
  EXPECT_GT(relative_distance(m.delta, unscaled.x, w.x), 1e-2);  // and not the WF of S
}

// A prior whose density grows without bound (log p = slope sum y) has no MAP: one clear error.
class UnboundedPrior final : public FieldPrior {
 public:
  explicit UnboundedPrior(int n, double slope = 1.0) : n_(n), slope_(slope) {}
  int n() const override { return n_; }
  double log_prob(const double* y) override {
    double s = 0;
    for (int i = 0; i < n_ * n_ * n_; ++i) s += slope_ * y[i];
    return s;
  }
  double log_prob_grad(const double* y, double* g) override {
    for (int i = 0; i < n_ * n_ * n_; ++i) g[i] = slope_;
    return log_prob(y);
  }

 private:
  int n_;
  double slope_;
};

// The same prior within a range: the wall holds it, and the MAP is the closed form per voxel.
// Masked: y = high + slope/k. Observed (identity preprocessing, weight w): y = d + slope/w when
// that is inside, else (w d + slope + k bound)/(w + k), k = kWallStiffness.
TEST(MapReconstruction, RangeWallHoldsAnUnboundedPrior) {
  UnboundedPrior prior(8);
  const Observation o = masked_observation(8, 32.0, 0.3, 1.0, 8);
  const PriorRange range{-2.0, 1.5};
  PosteriorObjective obj(prior, Preprocessing{}, o, range);
  MapSettings s;
  s.max_iterations = 2000;
  s.tolerance = 1e-15;
  s.gradient_tolerance = 1e-9;
  const MapResult m = map_reconstruct(obj, std::vector<double>(o.size(), 0.0), s);
  const std::vector<double> w = o.inverse_noise();
  int masked = 0;
  for (size_t i = 0; i < o.size(); ++i) {
    double expected = o.data[i] + 1.0 / std::max(w[i], 1e-300);
    if (w[i] == 0.0 || !range.contains(expected)) {
      const double bound = w[i] == 0.0 || expected > range.high ? range.high : range.low;
      expected = (w[i] * o.data[i] + 1.0 + kWallStiffness * bound) / (w[i] + kWallStiffness);
    }
    masked += w[i] == 0.0;
    EXPECT_NEAR(m.y[i], expected, 1e-6) << i << " " << m.stop;
  }
  ASSERT_GT(masked, 0);
  EXPECT_GE(m.beyond_range, masked);
  // The start is clamped into the range.
  const MapResult far = map_reconstruct(obj, std::vector<double>(o.size(), 50.0), s);
  for (size_t i = 0; i < o.size(); ++i) EXPECT_NEAR(far.y[i], m.y[i], 1e-6) << i;
}

// A prior that pulls harder than the wall holds (slope 1e4: y = high + 10 in masked voxels) is
// refused with one line rather than returned.
TEST(MapReconstruction, ResultBeyondTheRangeIsRefused) {
  UnboundedPrior prior(8, 1e4);
  const Observation o = masked_observation(8, 32.0, 0.3, 1.0, 8);
  PosteriorObjective obj(prior, Preprocessing{}, o, PriorRange{-2.0, 1.5});
  MapSettings s;
  s.max_iterations = 200;
  const std::string e =
      error_of([&] { map_reconstruct(obj, std::vector<double>(o.size(), 0.0), s); });
  EXPECT_NE(e.find("map: the MAP left the prior's range y in [-2, 1.5] in "), std::string::npos)
      << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);
  // An empty range is refused where it is made.
  EXPECT_NE(error_of([&] {
              PosteriorObjective(prior, Preprocessing{}, o, PriorRange{1.0, 1.0});
            }).find("map: the prior's range of y is empty"),
            std::string::npos);
}

TEST(MapReconstruction, UnboundedObjectiveFailsWithOneLine) {
  UnboundedPrior prior(8);
  const Observation o = masked_observation(8, 32.0, 0.3, 1.0, 8);
  PosteriorObjective obj(prior, Preprocessing{}, o);
  MapSettings s;
  s.max_step_y = 0;  // unbounded steps reach |y| > kDivergentY within the iterations
  const std::string e =
      error_of([&] { map_reconstruct(obj, std::vector<double>(o.size(), 0.0), s); });
  EXPECT_NE(e.find("map: the objective -log p(y|d) decreases without bound"), std::string::npos)
      << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);
}

// max_step_y bounds how far any voxel of y moves in one iteration (in y, also when whitened).
TEST(MapReconstruction, StepBoundLimitsEachIterationsMove) {
  UnboundedPrior prior(8);
  const Observation o = masked_observation(8, 32.0, 0.3, 1.0, 8);
  PosteriorObjective obj(prior, Preprocessing{}, o);
  const auto lambda = eigenvalues(8, 32.0);
  MapSettings s;
  s.max_iterations = 6;
  s.tolerance = 0;
  s.gradient_tolerance = 0;
  auto largest_move = [&](double bound, const std::vector<double>* whitening,
                          const std::vector<double>* voxel_scale) {
    s.max_step_y = bound;
    const MapResult m = map_reconstruct(obj, std::vector<double>(o.size(), 0.0), s, nullptr, 10.0,
                                        whitening, voxel_scale);
    EXPECT_EQ(m.iterations, 6);
    double largest = 0;
    for (double y : m.y) largest = std::max(largest, std::abs(y));
    return largest;
  };
  for (const std::vector<double>* w : {static_cast<const std::vector<double>*>(nullptr), &lambda}) {
    EXPECT_LE(largest_move(0.1, w, nullptr), 6 * 0.1 * (1 + 1e-9));
    EXPECT_GT(largest_move(0.0, w, nullptr), 1.0);  // unbounded: far further in as many iterations
  }
  // Also with a per-voxel scale on top of the whitening.
  std::vector<double> scale(o.size());
  for (size_t i = 0; i < scale.size(); ++i) scale[i] = 0.2 + double(i % 7);
  EXPECT_LE(largest_move(0.1, &lambda, &scale), 6 * 0.1 * (1 + 1e-9));
  EXPECT_GT(largest_move(0.0, &lambda, &scale), 1.0);
}

}  // namespace
}  // namespace ff
