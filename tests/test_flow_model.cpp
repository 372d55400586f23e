// The whole multi-scale flow: inversion, log|det J| against a brute-force Jacobian, parameter and
// input gradients (full and input-only) and the gradient through the inverse against finite
// differences, LeakyReLU's slope reaching the couplings, the explicit actnorm initialisation
// (also split over two "ranks"), translation equivariance, and the correlated Gaussian base
// against the dense multivariate normal.
#include <gtest/gtest.h>

// GCC 12 reports false -Wmaybe-uninitialized inside the AVX-512 intrinsics Eigen uses.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Dense>
#include <barrier>
#include <cmath>
#include <numbers>
#include <thread>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/flow/flow.hpp"

namespace ff {
namespace {

template <typename T>
void fill_normal(Tensor<T>& t, uint64_t seed, double scale = 1.0) {
  const CounterRng rng(seed, 21);
  for (size_t i = 0; i < t.size(); ++i) t.data[i] = T(scale * rng.normal(i));
}

FlowSpec small_spec(int grid, MixingKind mixing, bool actnorm, ScaleBound bound,
                    double negative_slope = 0.0, int calibration_bins = 0,
                    bool global_context = false) {
  FlowSpec s;
  s.global_context = global_context;
  s.calibration_bins = calibration_bins;
  s.grid = grid;
  s.channels = 1;
  s.levels = {{2, 2, 4, 5}, {2, 0, 3, 0}};
  s.mixing = mixing;
  s.actnorm = actnorm;
  s.scale_bound = bound;
  s.negative_slope = negative_slope;
  s.seed = 3;
  return s;
}

struct Variant {
  std::string label;
  MixingKind mixing;
  bool actnorm;
  ScaleBound bound;
  double negative_slope = 0.0;
  int calibration_bins = 0;
  bool global_context = false;
};

class FlowVariant : public ::testing::TestWithParam<Variant> {
 protected:
  FlowSpec spec(int grid) const {
    const Variant& v = GetParam();
    return small_spec(grid, v.mixing, v.actnorm, v.bound, v.negative_slope, v.calibration_bins,
                      v.global_context);
  }
};

template <typename T>
void initialise(MultiScaleFlow<T>& flow, const Tensor<T>& x) {
  flow.initialize_actnorms(x);
  flow.perturb(17, 0.1);
}

TEST_P(FlowVariant, InverseRoundTripFloat32) {
  MultiScaleFlow<float> flow(spec(8));
  Tensor<float> x(2, 8, 1), back;
  fill_normal(x, 1);
  initialise(flow, x);
  std::vector<float> ld;
  flow.forward(x, ld);
  flow.inverse(flow.latents(), back);
  double err = 0;
  for (size_t i = 0; i < x.size(); ++i)
    err = std::max(err, double(std::abs(back.data[i] - x.data[i])));
  EXPECT_LT(err, 1e-4);
}

TEST_P(FlowVariant, LogDetMatchesBruteForceJacobian) {
  MultiScaleFlow<double> flow(spec(4));
  Tensor<double> x(1, 4, 1);
  fill_normal(x, 2);
  initialise(flow, x);
  auto latent_vector = [&](const Tensor<double>& input) {
    std::vector<double> ld;
    flow.forward(input, ld);
    std::vector<double> z;
    for (const auto& t : flow.latents()) z.insert(z.end(), t.data.begin(), t.data.end());
    return z;
  };
  std::vector<double> logdet;
  flow.forward(x, logdet);
  const double model = logdet[0];
  const int D = 64;
  Eigen::MatrixXd jac(D, D);
  const double h = 1e-5;
  for (int i = 0; i < D; ++i) {
    Tensor<double> xp = x, xm = x;
    xp.data[i] += h;
    xm.data[i] -= h;
    const auto zp = latent_vector(xp), zm = latent_vector(xm);
    ASSERT_EQ(int(zp.size()), D);
    for (int j = 0; j < D; ++j) jac(j, i) = (zp[j] - zm[j]) / (2 * h);
  }
  const double brute = std::log(std::abs(jac.determinant()));
  EXPECT_NEAR(model, brute, 1e-6 * std::max(1.0, std::abs(brute)));
}

TEST_P(FlowVariant, NllParameterGradientsMatchFiniteDifferences) {
  MultiScaleFlow<double> flow(spec(4));
  Tensor<double> x(2, 4, 1);
  fill_normal(x, 3);
  initialise(flow, x);
  for (Param<double>* p : flow.params()) p->zero_grad();
  const double nll = flow.nll_backward(x);
  const auto logp = flow.log_prob(x);
  EXPECT_NEAR(nll, -(logp[0] + logp[1]) / 2, 1e-10);
  const double h = 1e-6;
  int checked = 0;
  for (Param<double>* p : flow.params()) {
    const size_t stride = std::max<size_t>(1, p->size() / 4);
    for (size_t i = 0; i < p->size(); i += stride) {
      const double keep = p->value[i];
      p->value[i] = keep + h;
      auto up = flow.log_prob(x);
      p->value[i] = keep - h;
      auto down = flow.log_prob(x);
      p->value[i] = keep;
      const double fd = -((up[0] + up[1]) - (down[0] + down[1])) / (2 * 2 * h);
      EXPECT_NEAR(p->grad[i], fd, 1e-5 * std::max(1.0, std::abs(fd))) << p->name << " " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked, 40);
}

// log_prob_grad and the input-only log_prob_input_grad against central differences; the
// input-only one gives the same dx and leaves every parameter gradient untouched.
TEST_P(FlowVariant, DensityGradientMatchesFiniteDifferences) {
  MultiScaleFlow<double> flow(spec(4));
  Tensor<double> x(2, 4, 1), dx, dx_input;
  fill_normal(x, 4);
  initialise(flow, x);
  const auto logp = flow.log_prob_grad(x, dx);
  const auto reference = flow.log_prob(x);
  EXPECT_NEAR(logp[0], reference[0], 1e-10);
  for (Param<double>* p : flow.params())
    for (double& g : p->grad) g = 42.0;
  const auto logp_input = flow.log_prob_input_grad(x, dx_input);
  for (Param<double>* p : flow.params())
    for (double g : p->grad) ASSERT_EQ(g, 42.0) << p->name;
  EXPECT_EQ(logp_input, logp);
  ASSERT_EQ(dx_input.size(), dx.size());
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_EQ(dx_input.data[i], dx.data[i]) << i;
  const double h = 1e-6;
  for (size_t i = 0; i < x.size(); ++i) {
    Tensor<double> xp = x, xm = x;
    xp.data[i] += h;
    xm.data[i] -= h;
    const int b = int(i / x.field_size());
    const double fd = (flow.log_prob(xp)[b] - flow.log_prob(xm)[b]) / (2 * h);
    EXPECT_NEAR(dx_input.data[i], fd, 1e-5 * std::max(1.0, std::abs(fd))) << i;
  }
}

// The gradient through the inverse flow with respect to its grid-form latents u (HMC in the
// latent space): L = sum(r * f^-1(u)), inverse_vjp against central differences.
TEST_P(FlowVariant, InverseVjpMatchesFiniteDifferences) {
  MultiScaleFlow<double> flow(spec(4));
  Tensor<double> x(2, 4, 1), u, back, r, du;
  fill_normal(x, 9);
  initialise(flow, x);
  std::vector<double> ld;
  flow.forward(x, ld);
  flow.latents_to_grid(flow.latents(), u);
  flow.inverse_from_grid(u, back);
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(back.data[i], x.data[i], 1e-10);
  r.resize_like(back);
  fill_normal(r, 10);
  flow.inverse_vjp(r, du);
  ASSERT_EQ(du.size(), u.size());
  auto loss = [&](const Tensor<double>& latents) {
    Tensor<double> out;
    flow.inverse_from_grid(latents, out);
    double sum = 0;
    for (size_t i = 0; i < out.size(); ++i) sum += out.data[i] * r.data[i];
    return sum;
  };
  const double h = 1e-6;
  for (size_t i = 0; i < u.size(); ++i) {
    Tensor<double> up = u, um = u;
    up.data[i] += h;
    um.data[i] -= h;
    const double fd = (loss(up) - loss(um)) / (2 * h);
    EXPECT_NEAR(du.data[i], fd, 1e-6 * std::max(1.0, std::abs(fd))) << i;
  }
  // A forward pass in between invalidates the kept inverse.
  flow.forward(x, ld);
  EXPECT_THROW(flow.inverse_vjp(r, du), Error);
}

INSTANTIATE_TEST_SUITE_P(
    Variants, FlowVariant,
    ::testing::Values(Variant{"plain", MixingKind::none, false, ScaleBound::tanh},
                      Variant{"actnorm_lu", MixingKind::lu, true, ScaleBound::tanh_scale},
                      Variant{"orthogonal", MixingKind::orthogonal, false, ScaleBound::softclamp},
                      Variant{"permutation", MixingKind::permutation, true, ScaleBound::tanh},
                      Variant{"leaky_actnorm_lu", MixingKind::lu, true, ScaleBound::tanh, 0.2},
                      // The spectral calibration in front (scales perturbed with the rest):
                      // sampling, the density gradient (MAP) and inverse_vjp (latent HMC).
                      Variant{"calibrated", MixingKind::lu, true, ScaleBound::tanh, 0.0, 2},
                      // flow.global_context: every coupling's pooled path (G perturbed too).
                      Variant{"global_context", MixingKind::lu, true, ScaleBound::tanh, 0.0, 0,
                              true}),
    [](const ::testing::TestParamInfo<Variant>& info) { return info.param.label; });

// With a standard normal base, shifting the input periodically by a multiple of the coarsest
// squeeze (2^(levels-1) cells) leaves log p unchanged.
TEST(MultiScaleFlow, TranslationEquivariance) {
  FlowSpec s = small_spec(8, MixingKind::lu, true, ScaleBound::tanh);
  s.levels = {{2, 2, 4, 5}, {2, 2, 3, 4}, {2, 0, 3, 0}};
  MultiScaleFlow<double> flow(s);
  const int n = 8;
  Tensor<double> x(1, n, 1), shifted(1, n, 1);
  fill_normal(x, 5);
  initialise(flow, x);
  const int sx = 4, sy = 0, sz = 12 % n;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c < n; ++c)
        shifted.at(0, (a + sx) % n, (b + sy) % n, (c + sz) % n, 0) = x.at(0, a, b, c, 0);
  const double lp = flow.log_prob(x)[0], lps = flow.log_prob(shifted)[0];
  EXPECT_NEAR(lp, lps, 1e-9 * std::abs(lp));
  // A shift by one cell moves the checkerboard and squeeze blocks: a different density.
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c < n; ++c) shifted.at(0, (a + 1) % n, b, c, 0) = x.at(0, a, b, c, 0);
  EXPECT_GT(std::abs(flow.log_prob(shifted)[0] - lp), 1e-6);
}

// activation: leaky_relu reaches the couplings: the same weights with slopes 0 (ReLU), 0.1 and 0.5
// give three different densities.
TEST(MultiScaleFlow, LeakySlopeChangesTheDensity) {
  Tensor<double> x(1, 8, 1);
  fill_normal(x, 12);
  std::vector<double> logp;
  for (double slope : {0.0, 0.1, 0.5}) {
    MultiScaleFlow<double> flow(small_spec(8, MixingKind::none, false, ScaleBound::tanh, slope));
    flow.perturb(17, 0.3);  // same seeds: the same weights for every slope
    logp.push_back(flow.log_prob(x)[0]);
  }
  EXPECT_GT(std::abs(logp[1] - logp[0]), 1e-6 * std::abs(logp[0]));
  EXPECT_GT(std::abs(logp[2] - logp[1]), 1e-6 * std::abs(logp[1]));
}

// The explicit actnorm initialisation: forward refuses an uninitialised flow; after
// initialize_actnorms(x) every actnorm's output on x, its input being the output of the already
// initialised layers before it, has mean 0 and variance 1 per channel.
TEST(MultiScaleFlow, ActNormInitialisationIsExplicitAndInFlowOrder) {
  FlowSpec s = small_spec(8, MixingKind::lu, true, ScaleBound::tanh);
  MultiScaleFlow<double> flow(s);
  flow.perturb(5, 0.2);  // non-trivial couplings between the actnorms
  for (ActNorm<double>* a : flow.actnorms()) a->initialized = false;
  Tensor<double> x(2, 8, 1);
  fill_normal(x, 13, 3.0);
  std::vector<double> ld;
  EXPECT_THROW(flow.forward(x, ld), Error);
  EXPECT_FALSE(flow.actnorms_initialized());
  int calls = 0;
  EXPECT_EQ(flow.initialize_actnorms(x, [&](ActNormStats&) { ++calls; }), 6);
  EXPECT_EQ(calls, 6);
  EXPECT_TRUE(flow.actnorms_initialized());
  EXPECT_EQ(flow.initialize_actnorms(x), 0);  // nothing left to initialise
  // Walk the first level by hand: each actnorm normalises what the steps before it produce.
  Tensor<double> cur = x, next;
  std::vector<double> unused(2, 0.0);
  int checked = 0;
  for (auto& step : flow.steps(0)) {
    step->forward(cur, next, unused.data());
    if (dynamic_cast<ActNorm<double>*>(step.get())) {
      const ActNormStats out = actnorm_statistics(next);
      for (int c = 0; c < out.channels(); ++c) {
        EXPECT_NEAR(out.sum(c) / out.count(), 0.0, 1e-9) << step->name();
        EXPECT_NEAR(out.sum_squares(c) / out.count(), 1.0, 1e-5) << step->name();
      }
      ++checked;
    }
    std::swap(cur, next);
  }
  EXPECT_EQ(checked, 4);
}

// Two "ranks" (threads) each with half of the batch, summing the statistics through the reduce
// callback as an MPI allreduce would, initialise their flows exactly as one flow on the whole
// batch does.
TEST(MultiScaleFlow, ActNormInitialisationReducedOverRanks) {
  const FlowSpec s = small_spec(8, MixingKind::orthogonal, true, ScaleBound::tanh);
  Tensor<double> whole(4, 8, 1);
  fill_normal(whole, 14, 2.0);
  MultiScaleFlow<double> reference(s);
  reference.perturb(6, 0.2);
  for (ActNorm<double>* a : reference.actnorms()) a->initialized = false;
  reference.initialize_actnorms(whole);

  std::vector<std::unique_ptr<MultiScaleFlow<double>>> ranks;
  std::vector<Tensor<double>> shares(2, Tensor<double>(2, 8, 1));
  for (int r = 0; r < 2; ++r) {
    ranks.push_back(std::make_unique<MultiScaleFlow<double>>(s));
    ranks[r]->perturb(6, 0.2);
    for (ActNorm<double>* a : ranks[r]->actnorms()) a->initialized = false;
    std::copy(whole.field(2 * r), whole.field(2 * r) + shares[r].size(), shares[r].data.begin());
  }
  std::vector<double> exchange[2];
  std::barrier sync(2);
  auto run = [&](int r) {
    ranks[r]->initialize_actnorms(shares[r], [&](ActNormStats& stats) {
      exchange[r] = stats.values;
      sync.arrive_and_wait();
      for (size_t i = 0; i < stats.values.size(); ++i)
        stats.values[i] = exchange[0][i] + exchange[1][i];
      sync.arrive_and_wait();
    });
  };
  std::thread other(run, 1);
  run(0);
  other.join();
  const auto expected = reference.actnorms();
  for (int r = 0; r < 2; ++r) {
    const auto got = ranks[r]->actnorms();
    ASSERT_EQ(got.size(), expected.size());
    for (size_t k = 0; k < got.size(); ++k)
      for (size_t c = 0; c < got[k]->bias.size(); ++c) {
        EXPECT_NEAR(got[k]->bias.value[c], expected[k]->bias.value[c], 1e-12);
        EXPECT_NEAR(got[k]->log_scale.value[c], expected[k]->log_scale.value[c], 1e-12);
      }
  }
}

// copy_state_from: a flow built with another seed (other initial weights and fixed mixings) takes
// a trained flow's parameters, actnorm states and mixings, and then gives its log p exactly.
TEST(MultiScaleFlow, CopyStateFromGivesTheSameDensity) {
  for (MixingKind kind : {MixingKind::lu, MixingKind::orthogonal, MixingKind::permutation}) {
    FlowSpec s = small_spec(8, kind, true, ScaleBound::tanh);
    MultiScaleFlow<double> trained(s);
    Tensor<double> x(2, 8, 1);
    fill_normal(x, 15);
    initialise(trained, x);
    s.seed = 99;
    MultiScaleFlow<double> copy(s);
    copy.initialize_actnorms(x);
    EXPECT_NE(copy.log_prob(x), trained.log_prob(x));
    copy.copy_state_from(trained);
    EXPECT_EQ(copy.log_prob(x), trained.log_prob(x)) << to_string(kind);
  }
  MultiScaleFlow<double> other(small_spec(8, MixingKind::none, false, ScaleBound::tanh));
  MultiScaleFlow<double> with_actnorm(small_spec(8, MixingKind::none, true, ScaleBound::tanh));
  EXPECT_THROW(other.copy_state_from(with_actnorm), Error);
}

// A trained flow copied behind a spectral calibration: the identity calibration gives its log p
// (to FFT rounding); with scales a, log p(x) = log p_trained(A x) + log|det A|, A applied on its
// own.
TEST(MultiScaleFlow, CalibrationInFrontOfATrainedFlow) {
  FlowSpec s = small_spec(8, MixingKind::lu, true, ScaleBound::tanh);
  MultiScaleFlow<double> trained(s);
  Tensor<double> x(2, 8, 1);
  fill_normal(x, 15);
  initialise(trained, x);
  s.calibration_bins = 4;
  MultiScaleFlow<double> calibrated(s);
  EXPECT_EQ(trained.calibration(), nullptr);
  ASSERT_NE(calibrated.calibration(), nullptr);
  calibrated.copy_state_from(trained);
  const std::vector<double> same = calibrated.log_prob(x), plain = trained.log_prob(x);
  for (int b = 0; b < 2; ++b) EXPECT_NEAR(same[b], plain[b], 1e-9) << b;  // FFT rounding only
  std::vector<double>& log_scale = calibrated.calibration()->log_scale.value;
  for (size_t b = 0; b < log_scale.size(); ++b) log_scale[b] = 0.1 * double(b % 3) - 0.15;
  SpectralCalibration<double> alone("alone", 4);
  alone.log_scale.value = log_scale;
  Tensor<double> ax;
  std::vector<double> logdet(2, 0.0);
  alone.forward(x, ax, logdet.data());
  const std::vector<double> expected = trained.log_prob(ax), got = calibrated.log_prob(x);
  for (int b = 0; b < 2; ++b) EXPECT_NEAR(got[b], expected[b] + logdet[b], 1e-9) << b;
  // The reverse copy (calibration into a flow without one) is refused.
  EXPECT_THROW(trained.copy_state_from(calibrated), Error);
}

// bench-32 has the parameter count of the PyTorch peer (572228).
TEST(MultiScaleFlow, Bench32ParameterCount) {
  MultiScaleFlow<float> flow(bench32_flow_spec());
  EXPECT_EQ(flow.parameter_count(), 572228u);
}

// ---- correlated Gaussian base ----

std::vector<double> power_law_k() {
  return {0.05, 0.1, 0.2, 0.4, 0.8, 1.6};
}
std::vector<double> power_law_pk() {
  return {800, 1000, 600, 200, 50, 10};
}

// Dense covariance S_ij = (1/N) sum over all N modes lambda_k cos(k . (r_i - r_j)), the lambdas
// read from the half-complex table through the k -> -k symmetry.
Eigen::MatrixXd dense_covariance(const CorrelatedGaussian& g) {
  const int n = g.n(), N = n * n * n, nh = n / 2 + 1;
  auto lambda = [&](int a, int b, int c) {
    if (c > n / 2) {  // conjugate mode
      a = (n - a) % n;
      b = (n - b) % n;
      c = n - c;
    }
    return g.eigenvalues()[(size_t(a) * n + b) * nh + c];
  };
  Eigen::MatrixXd S(N, N);
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      const int dx = i / (n * n) - j / (n * n), dy = (i / n) % n - (j / n) % n, dz = i % n - j % n;
      double s = 0;
      for (int a = 0; a < n; ++a)
        for (int b = 0; b < n; ++b)
          for (int c = 0; c < n; ++c)
            s += lambda(a, b, c) * std::cos(2 * std::numbers::pi * (a * dx + b * dy + c * dz) / n);
      S(i, j) = s / N;
    }
  return S;
}

double dense_log_normal(const Eigen::MatrixXd& S, const Eigen::VectorXd& u) {
  Eigen::LLT<Eigen::MatrixXd> llt(S);
  const Eigen::MatrixXd L = llt.matrixL();
  double logdet = 0;
  for (int i = 0; i < S.rows(); ++i) logdet += 2 * std::log(L(i, i));
  const double quad = u.dot(llt.solve(u));
  return -0.5 * quad - 0.5 * logdet - 0.5 * S.rows() * std::log(2 * std::numbers::pi);
}

TEST(CorrelatedGaussian, MatchesDenseMultivariateNormal) {
  CorrelatedGaussian g =
      CorrelatedGaussian::from_power(4, 50.0, power_law_k(), power_law_pk(), 0.0);
  const Eigen::MatrixXd S = dense_covariance(g);
  Eigen::VectorXd u(64);
  const CounterRng rng(1, 2);
  for (int i = 0; i < 64; ++i) u[i] = 3 * rng.normal(uint64_t(i));
  std::vector<double> grad(64);
  const double dense = dense_log_normal(S, u);
  EXPECT_NEAR(g.log_prob(u.data()), dense, 1e-9 * std::abs(dense));
  EXPECT_NEAR(g.log_prob_grad(u.data(), grad.data()), dense, 1e-9 * std::abs(dense));
  const Eigen::VectorXd expected = -S.llt().solve(u);
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(grad[i], expected[i], 1e-9 * expected.norm());
}

// P at k = 0 sets the k = 0 eigenvalue alone (the field's mean); 0 keeps P at the smallest k.
TEST(CorrelatedGaussian, PowerAtZeroSetsTheMeanModeOnly) {
  const int n = 8;
  const double box = 100.0, volume_factor = double(n * n * n) / (box * box * box);
  const CorrelatedGaussian old_rule =
      CorrelatedGaussian::from_power(n, box, power_law_k(), power_law_pk(), 0.0);
  const CorrelatedGaussian with_p0 =
      CorrelatedGaussian::from_power(n, box, power_law_k(), power_law_pk(), 7.5);
  EXPECT_DOUBLE_EQ(old_rule.eigenvalues()[0], power_law_pk().front() * volume_factor);
  EXPECT_DOUBLE_EQ(with_p0.eigenvalues()[0], 7.5 * volume_factor);
  for (size_t m = 1; m < old_rule.eigenvalues().size(); ++m)
    ASSERT_EQ(old_rule.eigenvalues()[m], with_p0.eigenvalues()[m]) << m;
  EXPECT_THROW(CorrelatedGaussian::from_power(n, box, power_law_k(), power_law_pk(), -1.0), Error);
}

// Samples have the requested mode variances: the mean of |u_k|^2 / (N lambda_k) over many
// samples, per |k| shell, is 1 within its statistical error.
TEST(CorrelatedGaussian, SamplesHaveRequestedSpectrum) {
  const int n = 8, N = n * n * n, nh = n / 2 + 1, samples = 300;
  CorrelatedGaussian g =
      CorrelatedGaussian::from_power(n, 100.0, power_law_k(), power_law_pk(), 0.0);
  RealFft3d<double> fft(n, 1);
  std::vector<double> ratio_sum(n, 0.0), count(n, 0.0);
  std::vector<double> u(N);
  for (int s = 0; s < samples; ++s) {
    g.sample(u.data(), 42, uint64_t(s), 1.0);
    std::copy(u.begin(), u.end(), fft.real());
    fft.forward();
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b)
        for (int c = 0; c < nh; ++c) {
          const size_t m = (size_t(a) * n + b) * nh + c;
          const double ka = fft_wavenumber(a, n), kb = fft_wavenumber(b, n);
          const int shell = std::min(n - 1, int(std::sqrt(ka * ka + kb * kb + c * c)));
          ratio_sum[shell] += std::norm(fft.complex()[m]) / (N * g.eigenvalues()[m]);
          count[shell] += 1;
        }
  }
  for (int shell = 1; shell < n; ++shell) {
    if (count[shell] < 100) continue;
    // Each ratio is exponential (complex modes) or chi^2_1 (real modes): std <= sqrt(2).
    const double mean = ratio_sum[shell] / count[shell];
    EXPECT_NEAR(mean, 1.0, 4 * std::sqrt(2.0 / count[shell])) << "shell " << shell;
  }
}

// With the identity flow (fresh couplings), a correlated-Gaussian-based flow's log p is exactly
// the Gaussian prior of the Wiener filter, and its gradient is -S^-1 x.
TEST(MultiScaleFlow, CorrelatedBaseWithIdentityFlowIsTheGaussianPrior) {
  FlowSpec s = small_spec(4, MixingKind::none, false, ScaleBound::tanh);
  s.base = BaseKind::correlated_gaussian;
  s.base_k_hmpc = power_law_k();
  s.base_pk = power_law_pk();
  s.base_box_size_mpch = 50.0;
  s.base_pk0 = 40.0;  // the k = 0 mode's own P
  MultiScaleFlow<double> flow(s);
  const double volume_factor = 64 / (50.0 * 50.0 * 50.0);
  EXPECT_DOUBLE_EQ(flow.correlated_base()->eigenvalues()[0], 40.0 * volume_factor);
  {
    MultiScaleFlow<double> refit(s);
    refit.set_base_power({0.1, 1.0}, {10.0, 1.0}, 25.0);
    EXPECT_DOUBLE_EQ(refit.correlated_base()->eigenvalues()[0], 25.0 * volume_factor);
    EXPECT_EQ(refit.spec().base_pk0, 25.0);
    EXPECT_EQ(refit.spec().base_pk, (std::vector<double>{10.0, 1.0}));
  }
  Tensor<double> x(1, 4, 1), dx;
  fill_normal(x, 8, 2.0);
  const Eigen::MatrixXd S = dense_covariance(*flow.correlated_base());
  const Eigen::VectorXd u = Eigen::Map<const Eigen::VectorXd>(x.data.data(), 64);
  const double dense = dense_log_normal(S, u);
  const auto logp = flow.log_prob_grad(x, dx);
  EXPECT_NEAR(logp[0], dense, 1e-9 * std::abs(dense));
  const Eigen::VectorXd expected = -S.llt().solve(u);
  for (int i = 0; i < 64; ++i) EXPECT_NEAR(dx.data[i], expected[i], 1e-9 * expected.norm());
  // Perturbed, its gradient still matches finite differences.
  flow.perturb(3, 0.1);
  flow.log_prob_grad(x, dx);
  const double h = 1e-6;
  for (size_t i = 0; i < x.size(); i += 3) {
    Tensor<double> xp = x, xm = x;
    xp.data[i] += h;
    xm.data[i] -= h;
    const double fd = (flow.log_prob(xp)[0] - flow.log_prob(xm)[0]) / (2 * h);
    EXPECT_NEAR(dx.data[i], fd, 1e-5 * std::max(1.0, std::abs(fd))) << i;
  }
}

// flow.mixing_init identity: every lu mixing starts at W = I, so the zero-initialised flow over
// the correlated base is the Gaussian prior itself (the same log p as without mixing, dense
// truth above); Glow's rotation start is not. Refused with a fixed mixing.
TEST(MultiScaleFlow, LuMixingStartsAtTheIdentityWhenAsked) {
  auto spec = [](MixingKind mixing, bool identity) {
    FlowSpec s = small_spec(8, mixing, false, ScaleBound::tanh);
    s.base = BaseKind::correlated_gaussian;
    s.base_k_hmpc = power_law_k();
    s.base_pk = power_law_pk();
    s.base_box_size_mpch = 50.0;
    s.mixing_identity = identity;
    return s;
  };
  Tensor<double> x(2, 8, 1);
  fill_normal(x, 5, 2.0);
  MultiScaleFlow<double> plain(spec(MixingKind::none, false));
  MultiScaleFlow<double> identity(spec(MixingKind::lu, true));
  MultiScaleFlow<double> rotation(spec(MixingKind::lu, false));
  ASSERT_FALSE(identity.mixings().empty());
  for (ChannelMixing<double>* m : identity.mixings()) {
    const std::vector<double> w = m->matrix();
    const int C = int(std::lround(std::sqrt(double(w.size()))));
    for (int r = 0; r < C; ++r)
      for (int c = 0; c < C; ++c) EXPECT_EQ(w[size_t(r) * C + c], r == c ? 1.0 : 0.0);
  }
  const std::vector<double> expected = plain.log_prob(x), got = identity.log_prob(x),
                            rotated = rotation.log_prob(x);
  for (int b = 0; b < 2; ++b) {
    EXPECT_NEAR(got[b], expected[b], 1e-9 * std::abs(expected[b]));
    EXPECT_GT(std::abs(rotated[b] - expected[b]), 1e-3 * std::abs(expected[b]));
  }
  // Its factors are parameters: moved, the mixing is no longer the identity.
  const std::vector<double> start = identity.mixings()[0]->matrix();
  identity.perturb(4, 0.1);
  EXPECT_NE(identity.mixings()[0]->matrix(), start);
  FlowSpec fixed = spec(MixingKind::orthogonal, true);
  try {
    validate(fixed);
    ADD_FAILURE() << "mixing_init identity with a fixed mixing was not refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("flow.mixing_init"), std::string::npos) << e.what();
  }
}

// Samples are finite, reproducible from the seed, and the identity flow's samples have the
// base's variance times temperature^2.
TEST(MultiScaleFlow, SamplingIsReproducibleAndTempered) {
  MultiScaleFlow<float> flow(small_spec(8, MixingKind::none, false, ScaleBound::tanh));
  Tensor<float> a, b;
  flow.sample(4, 11, 0.5, a);
  flow.sample(4, 11, 0.5, b);
  ASSERT_EQ(a.size(), size_t(4 * 512));
  double sum2 = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(std::isfinite(a.data[i]));
    EXPECT_EQ(a.data[i], b.data[i]);
    sum2 += double(a.data[i]) * a.data[i];
  }
  EXPECT_NEAR(sum2 / a.size(), 0.25, 0.03);
}

}  // namespace
}  // namespace ff
