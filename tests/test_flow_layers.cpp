// Every flow step: inverse(forward(x)) = x in float32 with randomised weights, log|det J| equal to
// the log-determinant of a brute-force (central-difference, float64) Jacobian on a 4^3 grid,
// parameter and input gradients against finite differences (also input-only), and the backward
// pass through the inverse against finite differences of the inverse.
#include <gtest/gtest.h>

// GCC 12 reports false -Wmaybe-uninitialized inside the AVX-512 intrinsics Eigen uses.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Dense>
#include <cmath>
#include <functional>
#include <memory>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/flow/layers.hpp"

namespace ff {
namespace {

template <typename T>
void fill_normal(Tensor<T>& t, uint64_t seed, double scale = 1.0) {
  const CounterRng rng(seed, 11);
  for (size_t i = 0; i < t.size(); ++i) t.data[i] = T(scale * rng.normal(i));
}

template <typename T>
void perturb(FlowStep<T>& step, uint64_t seed, double scale) {
  uint64_t stream = 0;
  for (Param<T>* p : step.params()) {
    const CounterRng rng(seed, stream++);
    for (size_t i = 0; i < p->size(); ++i) p->value[i] += T(scale * rng.normal(i));
  }
}

// Builds the same step in float or double.
struct StepCase {
  std::string label;
  int channels;
  std::function<std::unique_ptr<FlowStep<float>>()> make_float;
  std::function<std::unique_ptr<FlowStep<double>>()> make_double;
};

template <typename T>
std::unique_ptr<FlowStep<T>> make_coupling(CouplingMask mask, int channels, int hidden, int parity,
                                           ScaleBound bound, double negative_slope = 0.0,
                                           bool global_context = false) {
  auto c = std::make_unique<AffineCoupling<T>>("c", mask, channels, hidden, 3, parity, bound, 2.0,
                                               nullptr, negative_slope, global_context);
  c->conv1.init_default(1, 1);
  c->conv2.init_default(1, 2);
  return c;
}

// An actnorm marked initialised (perturb then sets bias and log-scale).
template <typename T>
std::unique_ptr<FlowStep<T>> initialized_actnorm() {
  auto a = std::make_unique<ActNorm<T>>("a", 2);
  a->initialized = true;
  return a;
}

std::vector<StepCase> cases() {
  std::vector<StepCase> out;
  for (int parity : {0, 1})
    for (ScaleBound bound : {ScaleBound::tanh, ScaleBound::tanh_scale, ScaleBound::softclamp}) {
      const std::string b = to_string(bound);
      out.push_back(
          {"checker" + std::to_string(parity) + "_" + b, 1,
           [=] { return make_coupling<float>(CouplingMask::checkerboard, 1, 4, parity, bound); },
           [=] { return make_coupling<double>(CouplingMask::checkerboard, 1, 4, parity, bound); }});
      out.push_back(
          {"channel" + std::to_string(parity) + "_" + b, 2,
           [=] { return make_coupling<float>(CouplingMask::channel, 2, 3, parity, bound); },
           [=] { return make_coupling<double>(CouplingMask::channel, 2, 3, parity, bound); }});
    }
  out.push_back(
      {"checker_2ch", 2,
       [] { return make_coupling<float>(CouplingMask::checkerboard, 2, 3, 1, ScaleBound::tanh); },
       [] {
         return make_coupling<double>(CouplingMask::checkerboard, 2, 3, 1, ScaleBound::tanh);
       }});
  out.push_back(
      {"checker_leaky", 1,
       [] {
         return make_coupling<float>(CouplingMask::checkerboard, 1, 4, 0, ScaleBound::tanh, 0.2);
       },
       [] {
         return make_coupling<double>(CouplingMask::checkerboard, 1, 4, 0, ScaleBound::tanh, 0.2);
       }});
  out.push_back(
      {"channel_leaky", 2,
       [] {
         return make_coupling<float>(CouplingMask::channel, 2, 3, 1, ScaleBound::softclamp, 0.1);
       },
       [] {
         return make_coupling<double>(CouplingMask::channel, 2, 3, 1, ScaleBound::softclamp, 0.1);
       }});
  // flow.global_context: the pooled path (perturbed away from its zero start like every parameter).
  for (int parity : {0, 1}) {
    out.push_back({"checker_global" + std::to_string(parity), 2,
                   [=] {
                     return make_coupling<float>(CouplingMask::checkerboard, 2, 3, parity,
                                                 ScaleBound::tanh_scale, 0.0, true);
                   },
                   [=] {
                     return make_coupling<double>(CouplingMask::checkerboard, 2, 3, parity,
                                                  ScaleBound::tanh_scale, 0.0, true);
                   }});
    out.push_back({"channel_global" + std::to_string(parity), 4,
                   [=] {
                     return make_coupling<float>(CouplingMask::channel, 4, 3, parity,
                                                 ScaleBound::softclamp, 0.1, true);
                   },
                   [=] {
                     return make_coupling<double>(CouplingMask::channel, 4, 3, parity,
                                                  ScaleBound::softclamp, 0.1, true);
                   }});
  }
  out.push_back({"squeeze", 1, [] { return std::make_unique<Squeeze<float>>("s"); },
                 [] { return std::make_unique<Squeeze<double>>("s"); }});
  out.push_back({"actnorm", 2, [] { return initialized_actnorm<float>(); },
                 [] { return initialized_actnorm<double>(); }});
  // Two bins per k_N: on the 4^3 grid of the brute-force tests every bin has modes.
  out.push_back({"spectral_calibration", 2,
                 [] { return std::make_unique<SpectralCalibration<float>>("k", 2); },
                 [] { return std::make_unique<SpectralCalibration<double>>("k", 2); }});
  for (MixingKind kind : {MixingKind::permutation, MixingKind::orthogonal, MixingKind::lu})
    out.push_back({std::string("mixing_") + to_string(kind), 3,
                   [=] { return std::make_unique<ChannelMixing<float>>("m", 3, kind, 5); },
                   [=] { return std::make_unique<ChannelMixing<double>>("m", 3, kind, 5); }});
  return out;
}

class StepTest : public ::testing::TestWithParam<StepCase> {};

TEST_P(StepTest, InverseRoundTripFloat32) {
  const StepCase& c = GetParam();
  auto step = c.make_float();
  perturb(*step, 3, 0.3);
  Tensor<float> x(3, 8, c.channels), y, back;
  fill_normal(x, 1);
  std::vector<float> logdet(3, 0.f);
  step->forward(x, y, logdet.data());
  step->inverse(y, back);
  ASSERT_EQ(back.size(), x.size());
  double err = 0, change = 0;
  for (size_t i = 0; i < x.size(); ++i)
    err = std::max(err, double(std::abs(back.data[i] - x.data[i])));
  for (size_t i = 0; i < std::min(x.size(), y.size()); ++i)
    change = std::max(change, double(std::abs(y.data[i] - x.data[i])));
  EXPECT_LT(err, 1e-4);
  EXPECT_GT(change, 1e-3) << "the step should not be the identity here";
}

// log|det J| per field against the brute-force Jacobian of one field (batch of 2, the second
// field differs, so per-field bookkeeping is checked too).
TEST_P(StepTest, LogDetMatchesBruteForceJacobian) {
  const StepCase& c = GetParam();
  auto step = c.make_double();
  perturb(*step, 3, 0.3);
  const int n = 4;
  Tensor<double> x(2, n, c.channels), y;
  fill_normal(x, 2);
  std::vector<double> logdet(2, 0.0);
  step->forward(x, y, logdet.data());
  const int D = int(x.field_size());
  Eigen::MatrixXd jac(D, D);
  const double h = 1e-5;
  for (int b = 0; b < 2; ++b) {
    for (int i = 0; i < D; ++i) {
      Tensor<double> xp = x, xm = x, yp, ym;
      xp.field(b)[i] += h;
      xm.field(b)[i] -= h;
      std::vector<double> unused(2, 0.0);
      step->forward(xp, yp, unused.data());
      step->forward(xm, ym, unused.data());
      for (int j = 0; j < D; ++j) jac(j, i) = (yp.field(b)[j] - ym.field(b)[j]) / (2 * h);
    }
    const double brute = std::log(std::abs(jac.determinant()));
    EXPECT_NEAR(logdet[b], brute, 1e-6 * std::max(1.0, std::abs(brute))) << "field " << b;
  }
}

// L = sum(y * r) + sum_b w_b logdet_b: backward's dx and parameter gradients against central
// differences; the input-only and params-only passes agree with them.
TEST_P(StepTest, GradientsMatchFiniteDifferences) {
  const StepCase& c = GetParam();
  auto step = c.make_double();
  perturb(*step, 4, 0.3);
  const int n = 4;
  Tensor<double> x(2, n, c.channels), y, r, dx;
  fill_normal(x, 6);
  std::vector<double> logdet(2, 0.0);
  step->forward(x, y, logdet.data());
  r.resize_like(y);
  fill_normal(r, 7);
  const std::vector<double> w{0.7, -1.3};
  auto loss = [&]() {
    std::vector<double> ld(2, 0.0);
    Tensor<double> out;
    step->forward(x, out, ld.data());
    double sum = w[0] * ld[0] + w[1] * ld[1];
    for (size_t i = 0; i < out.size(); ++i) sum += out.data[i] * r.data[i];
    return sum;
  };
  const double base = loss();
  (void)base;
  for (Param<double>* p : step->params()) p->zero_grad();
  step->forward(x, y, logdet.data());
  step->backward(x, r, w.data(), dx, Backprop::all);
  const double h = 1e-6;
  for (size_t i = 0; i < x.size(); i += 3) {
    const double keep = x.data[i];
    x.data[i] = keep + h;
    const double up = loss();
    x.data[i] = keep - h;
    const double down = loss();
    x.data[i] = keep;
    EXPECT_NEAR(dx.data[i], (up - down) / (2 * h), 2e-6 * std::max(1.0, std::abs(dx.data[i])))
        << "dx " << i;
  }
  for (Param<double>* p : step->params()) {
    const size_t stride = std::max<size_t>(1, p->size() / 12);
    for (size_t i = 0; i < p->size(); i += stride) {
      const double keep = p->value[i];
      p->value[i] = keep + h;
      const double up = loss();
      p->value[i] = keep - h;
      const double down = loss();
      p->value[i] = keep;
      const double fd = (up - down) / (2 * h);
      EXPECT_NEAR(p->grad[i], fd, 2e-6 * std::max(1.0, std::abs(fd))) << p->name << " " << i;
    }
  }
  // Backprop::input gives the same dL/dx and leaves every parameter gradient as it was;
  // Backprop::params gives the same parameter gradients.
  step->forward(x, y, logdet.data());
  std::vector<std::vector<double>> grads;
  for (Param<double>* p : step->params()) {
    grads.push_back(p->grad);
    for (double& g : p->grad) g = 42.0;
  }
  Tensor<double> dx_input, unused;
  step->backward(x, r, w.data(), dx_input, Backprop::input);
  ASSERT_EQ(dx_input.size(), dx.size());
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_EQ(dx_input.data[i], dx.data[i]) << i;
  for (Param<double>* p : step->params())
    for (double g : p->grad) ASSERT_EQ(g, 42.0) << p->name;
  for (Param<double>* p : step->params()) p->zero_grad();
  step->backward(x, r, w.data(), unused, Backprop::params);
  size_t k = 0;
  for (Param<double>* p : step->params()) EXPECT_EQ(p->grad, grads[k++]) << p->name;
}

// L = sum(r * f^-1(y)): inverse_backward's dL/dy against central differences of the inverse.
TEST_P(StepTest, InverseBackwardMatchesFiniteDifferences) {
  const StepCase& c = GetParam();
  auto step = c.make_double();
  perturb(*step, 5, 0.3);
  Tensor<double> x(2, 4, c.channels), y, back, r, dy;
  fill_normal(x, 8);
  std::vector<double> logdet(2, 0.0);
  step->forward(x, y, logdet.data());
  step->inverse(y, back);
  r.resize_like(back);
  fill_normal(r, 9);
  step->inverse_backward(y, r, dy);
  ASSERT_EQ(dy.size(), y.size());
  auto loss = [&](const Tensor<double>& input) {
    Tensor<double> out;
    step->inverse(input, out);
    double sum = 0;
    for (size_t i = 0; i < out.size(); ++i) sum += out.data[i] * r.data[i];
    return sum;
  };
  const double h = 1e-6;
  for (size_t i = 0; i < y.size(); i += 3) {
    Tensor<double> yp = y, ym = y;
    yp.data[i] += h;
    ym.data[i] -= h;
    const double fd = (loss(yp) - loss(ym)) / (2 * h);
    EXPECT_NEAR(dy.data[i], fd, 2e-6 * std::max(1.0, std::abs(fd))) << "dy " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Steps, StepTest, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<StepCase>& info) {
                           return info.param.label;
                         });

// The calibration's bins against a direct count: at bins_per_nyquist = n/2 each bin is one
// fundamental wide ([b, b + 1) k_F), as the P(k) estimator's; at log_scale = 0 it is the identity.
TEST(SpectralCalibration, BinsAndIdentity) {
  SpectralCalibration<double> cal("k", 4);
  EXPECT_EQ(cal.log_scale.size(), size_t(7));  // floor(sqrt(3) * 4) + 1
  std::vector<double> expected(7, 0.0);
  for (int a = -4; a < 4; ++a)
    for (int b = -4; b < 4; ++b)
      for (int c = -4; c < 4; ++c) expected[size_t(std::sqrt(double(a * a + b * b + c * c)))] += 1;
  EXPECT_EQ(cal.bin_mode_counts(8), expected);
  Tensor<double> x(2, 8, 1), y;
  fill_normal(x, 3);
  std::vector<double> logdet(2, 0.0);
  cal.forward(x, y, logdet.data());
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y.data[i], x.data[i], 1e-12);
  EXPECT_EQ(logdet[0], 0.0);
  // One scale a on bin 1 only: y - x is (a - 1) times x's modes of 1 <= |k|/k_F < 2.
  cal.log_scale.value[1] = std::log(3.0);
  cal.forward(x, y, logdet.data());
  EXPECT_NEAR(logdet[0], 26 * std::log(3.0), 1e-12);  // 6 + 12 + 8 modes: |k| = 1, sqrt 2, 3
  double moved = 0;
  for (size_t i = 0; i < x.size(); ++i) moved = std::max(moved, std::abs(y.data[i] - x.data[i]));
  EXPECT_GT(moved, 1e-3);
}

// A fresh coupling (last conv zero) is the identity with log|det| = 0.
TEST(AffineCoupling, StartsAsIdentity) {
  AffineCoupling<float> c("c", CouplingMask::checkerboard, 1, 4, 3, 0, ScaleBound::tanh, 2.0,
                          nullptr, 0.0);
  c.conv1.init_default(1, 1);
  c.conv2.init_default(1, 2);
  Tensor<float> x(1, 4, 1), y;
  fill_normal(x, 1);
  std::vector<float> ld(1, 0.f);
  c.forward(x, y, ld.data());
  EXPECT_EQ(ld[0], 0.f);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y.data[i], x.data[i]);
}

// flow.global_context: zero at start (the coupling is the identity), and once G is non-zero a
// transformed voxel responds to a conditioning voxel beyond the nets' 5-voxel receptive field,
// which it cannot without the pooled path. Per field: another field of the batch has no effect.
TEST(AffineCoupling, GlobalContextSeesTheWholeBox) {
  auto make = [](bool global) {
    auto c =
        make_coupling<double>(CouplingMask::checkerboard, 1, 4, 0, ScaleBound::tanh, 0.0, global);
    return std::unique_ptr<AffineCoupling<double>>(
        static_cast<AffineCoupling<double>*>(c.release()));
  };
  const int n = 16;
  Tensor<double> x(2, n, 1), y;
  fill_normal(x, 4);
  auto global = make(true);
  ASSERT_EQ(global->global.size(), size_t(2 * 4));
  std::vector<double> ld(2, 0.0);
  global->forward(x, y, ld.data());
  EXPECT_EQ(ld[0], 0.0);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y.data[i], x.data[i]);

  // Voxel (0,0,0) is transformed (parity 0); (8,8,9) conditions and lies 8 voxels away.
  auto response = [&](AffineCoupling<double>& c, int field) {
    perturb(c, 9, 0.3);
    Tensor<double> moved = x, y0, y1;
    std::vector<double> l0(2, 0.0), l1(2, 0.0);
    c.forward(x, y0, l0.data());
    moved.at(field, 8, 8, 9, 0) += 1.0;
    c.forward(moved, y1, l1.data());
    return std::abs(y1.at(0, 0, 0, 0, 0) - y0.at(0, 0, 0, 0, 0));
  };
  auto local = make(false);
  EXPECT_EQ(response(*local, 0), 0.0);
  EXPECT_GT(response(*make(true), 0), 1e-6);
  EXPECT_EQ(response(*make(true), 1), 0.0);
}

// Data-dependent initialisation, explicit: from the statistics of a batch, that batch comes out
// with zero mean and unit variance; forward refuses to run before it.
TEST(ActNorm, DataDependentInitialisation) {
  ActNorm<double> a("a", 2);
  Tensor<double> x(2, 4, 2), y;
  fill_normal(x, 3, 2.5);
  for (size_t i = 0; i < x.size(); i += 2) x.data[i] += 4.0;
  std::vector<double> ld(2, 0.0);
  EXPECT_THROW(a.forward(x, y, ld.data()), Error);
  EXPECT_FALSE(a.initialized);
  const ActNormStats stats = actnorm_statistics(x);
  ASSERT_EQ(stats.channels(), 2);
  EXPECT_EQ(stats.count(), 128.0);
  EXPECT_THROW(a.initialize(ActNormStats{{1.0, 2.0, 3.0}}), Error);    // one channel's worth
  EXPECT_THROW(a.initialize(ActNormStats{{0, 0, 0, 0, 0.0}}), Error);  // no data
  a.initialize(stats);
  EXPECT_TRUE(a.initialized);
  a.forward(x, y, ld.data());
  for (int c = 0; c < 2; ++c) {
    double s = 0, s2 = 0;
    const size_t count = y.size() / 2;
    for (size_t v = 0; v < count; ++v) {
      s += y.data[v * 2 + c];
      s2 += y.data[v * 2 + c] * y.data[v * 2 + c];
    }
    EXPECT_NEAR(s / count, 0.0, 1e-9);
    EXPECT_NEAR(s2 / count, 1.0, 1e-5);
  }
}

// The fixed orthogonal mixing is orthogonal; the LU mixing starts as a rotation too.
TEST(ChannelMixing, OrthogonalMatrices) {
  for (MixingKind kind : {MixingKind::orthogonal, MixingKind::lu, MixingKind::permutation}) {
    ChannelMixing<double> m("m", 5, kind, 9);
    const auto w = m.matrix();
    Eigen::Map<const Eigen::Matrix<double, 5, 5, Eigen::RowMajor>> W(w.data());
    EXPECT_LT((W * W.transpose() - Eigen::Matrix<double, 5, 5>::Identity()).norm(), 1e-10)
        << to_string(kind);
  }
}

}  // namespace
}  // namespace ff
