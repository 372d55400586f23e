// Periodic 3D convolution: fast SIMD kernels against the plain reference loops (in double),
// gradients against finite differences, translation equivariance; Adam against hand-computed steps.
#include <gtest/gtest.h>

#include <cmath>

#include "fieldflow/core/rng.hpp"
#include "fieldflow/nn/adam.hpp"
#include "fieldflow/nn/conv3d.hpp"
#include "nn_test_data.hpp"

namespace ff {
namespace {

using testing_data::fill_normal;
using testing_data::max_abs_diff;

struct Shape {
  int in, out, kernel, n = 8;
};

class ConvFastVsReference : public ::testing::TestWithParam<Shape> {};

// The float SIMD kernels (forward, backward to input, backward to weights) agree with the
// double reference loops.
TEST_P(ConvFastVsReference, ForwardAndBackward) {
  const Shape s = GetParam();
  const int n = s.n, batch = 2;
  Conv3d<float> fast(s.in, s.out, s.kernel, "fast");
  Conv3d<double> ref(s.in, s.out, s.kernel, "ref");
  ref.path = ConvPath::reference;
  fast.init_default(3, 4);
  ref.init_default(3, 4);
  for (size_t i = 0; i < ref.weight.size(); ++i) ref.weight.value[i] = fast.weight.value[i];
  for (size_t i = 0; i < ref.bias.size(); ++i) ref.bias.value[i] = fast.bias.value[i];
  Tensor<float> xf(batch, n, s.in), yf, dyf(batch, n, s.out), dxf;
  Tensor<double> xd(batch, n, s.in), yd, dyd(batch, n, s.out), dxd;
  fill_normal(xf, 1);
  fill_normal(dyf, 2);
  for (size_t i = 0; i < xf.size(); ++i) xd.data[i] = xf.data[i];
  for (size_t i = 0; i < dyf.size(); ++i) dyd.data[i] = dyf.data[i];
  for (double slope : {-1.0, 0.0, 0.1}) {  // no activation, ReLU, LeakyReLU
    fast.forward(xf, yf, Activation<float>{slope >= 0, float(std::max(slope, 0.0))});
    ref.forward(xd, yd, Activation<double>{slope >= 0, std::max(slope, 0.0)});
    EXPECT_LT(max_abs_diff(yf.data, yd.data), 1e-4) << "activation slope " << slope;
  }
  fast.backward(xf, dyf, &dxf);
  ref.backward(xd, dyd, &dxd);
  EXPECT_LT(max_abs_diff(dxf.data, dxd.data), 1e-4);
  // Weight gradients sum over every voxel: float rounding grows with their magnitude.
  auto scale = [](const std::vector<double>& v) {
    double m = 1;
    for (double e : v) m = std::max(m, std::abs(e));
    return m;
  };
  EXPECT_LT(max_abs_diff(fast.weight.grad, ref.weight.grad), 1e-4 * scale(ref.weight.grad));
  EXPECT_LT(max_abs_diff(fast.bias.grad, ref.bias.grad), 1e-4 * scale(ref.bias.grad));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ConvFastVsReference,
    ::testing::Values(Shape{1, 16, 3}, Shape{16, 16, 1}, Shape{16, 2, 3}, Shape{32, 8, 3},
                      Shape{4, 32, 3}, Shape{32, 32, 3}, Shape{64, 32, 3}, Shape{16, 64, 3},
                      Shape{64, 64, 1}, Shape{3, 5, 3}, Shape{48, 16, 3}, Shape{16, 3, 1},
                      // grids of one and two SIMD widths: z-vectorised kernels
                      Shape{16, 2, 3, 16}, Shape{32, 8, 3, 16}, Shape{1, 16, 3, 16},
                      Shape{4, 32, 3, 16}, Shape{5, 7, 3, 16}, Shape{16, 11, 1, 16},
                      Shape{2, 3, 3, 32},
                      // bench-32's output convolution at its grid (n = 4
                      // AVX2 widths: z-vectorised)
                      Shape{8, 2, 3, 32},
                      // one input vector per voxel (AVX-512, AVX2, SSE4)
                      // and rows long enough for tiles that do not wrap;
                      // one input channel with whole 16-voxel tiles
                      Shape{16, 2, 3, 32}, Shape{4, 3, 3, 16}, Shape{1, 16, 3, 32},
                      // one input channel against one, two and three output vectors on
                      // SSE4 / AVX2 / AVX-512 widths, and rows shorter than a tile
                      Shape{1, 4, 3, 16}, Shape{1, 8, 3, 16}, Shape{1, 24, 3, 16},
                      Shape{1, 8, 3, 5},
                      // two output vectors on AVX2 (4-voxel tiles) with a 2-voxel tail
                      Shape{1, 16, 3, 6},
                      // several input channels against one output vector (SSE4, AVX2)
                      Shape{5, 4, 3, 16}, Shape{7, 8, 3, 16}));

// Gradients of L = sum(y * r) against central differences (double, reference path and fast
// path with a SIMD-width channel count).
void check_conv_gradients(int in, int out, int kernel, ConvPath path, int n = 4) {
  const int batch = 2;
  Conv3d<double> conv(in, out, kernel, "c");
  conv.path = path;
  conv.init_default(7, 1);
  Tensor<double> x(batch, n, in), y, r(batch, n, out), dx;
  fill_normal(x, 5);
  fill_normal(r, 6);
  auto loss = [&]() {
    conv.forward(x, y);
    double sum = 0;
    for (size_t i = 0; i < y.size(); ++i) sum += y.data[i] * r.data[i];
    return sum;
  };
  loss();
  conv.weight.zero_grad();
  conv.bias.zero_grad();
  conv.backward(x, r, &dx);
  const double h = 1e-6;
  for (size_t i = 0; i < x.size(); i += 7) {
    const double keep = x.data[i];
    x.data[i] = keep + h;
    const double up = loss();
    x.data[i] = keep - h;
    const double down = loss();
    x.data[i] = keep;
    EXPECT_NEAR(dx.data[i], (up - down) / (2 * h), 1e-6) << "dx " << i;
  }
  for (Param<double>* p : conv.params())
    for (size_t i = 0; i < p->size(); i += 5) {
      const double keep = p->value[i];
      p->value[i] = keep + h;
      const double up = loss();
      p->value[i] = keep - h;
      const double down = loss();
      p->value[i] = keep;
      EXPECT_NEAR(p->grad[i], (up - down) / (2 * h), 1e-6) << p->name << " " << i;
    }
}

TEST(Conv3d, GradientsMatchFiniteDifferences) {
  check_conv_gradients(2, 3, 3, ConvPath::reference);
  check_conv_gradients(3, 2, 1, ConvPath::reference);
  const int lanes = int(simd_lanes<double>());
  check_conv_gradients(2, lanes, 3, ConvPath::automatic);     // output-vectorised kernels
  check_conv_gradients(lanes, 2, 3, ConvPath::automatic);     // input-vectorised kernels
  check_conv_gradients(2, 3, 3, ConvPath::automatic, lanes);  // z-vectorised kernels
}

// A periodic shift of the input shifts the output: circular padding has no edges.
TEST(Conv3d, TranslationEquivariant) {
  const int n = 8, C = 16;
  Conv3d<float> conv(C, C, 3, "c");
  conv.init_default(1, 1);
  Tensor<float> x(1, n, C), xs(1, n, C), y, ys;
  fill_normal(x, 9);
  const int sx = 3, sy = 5, sz = 7;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c < n; ++c)
        for (int k = 0; k < C; ++k)
          xs.at(0, (a + sx) % n, (b + sy) % n, (c + sz) % n, k) = x.at(0, a, b, c, k);
  conv.forward(x, y);
  conv.forward(xs, ys);
  double err = 0;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c < n; ++c)
        for (int k = 0; k < C; ++k)
          err =
              std::max(err, double(std::abs(ys.at(0, (a + sx) % n, (b + sy) % n, (c + sz) % n, k) -
                                            y.at(0, a, b, c, k))));
  EXPECT_LT(err, 1e-5);
}

// One Adam step by hand: m = (1-b1) g, v = (1-b2) g^2, update lr * m_hat / (sqrt(v_hat) + eps).
TEST(Adam, StepMatchesHandComputation) {
  Param<double> p("p", 3);
  p.value = {1.0, -2.0, 0.5};
  p.grad = {0.3, -0.1, 2.0};
  AdamOptions opt;
  opt.lr = 0.01;
  Adam<double> adam({&p}, opt);
  adam.step();
  const double expected[3] = {1.0 - 0.01, -2.0 + 0.01, 0.5 - 0.01};  // first step: lr * sign(g)
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(p.value[i], expected[i], 1e-7);
  // AdamW decays the value by lr * weight_decay before the Adam update.
  Param<double> q("q", 1);
  q.value = {2.0};
  q.grad = {1.0};
  opt.weight_decay = 0.1;
  Adam<double> adamw({&q}, opt);
  adamw.step();
  EXPECT_NEAR(q.value[0], 2.0 * (1 - 0.01 * 0.1) - 0.01, 1e-7);
}

TEST(Adam, ScheduleAndClipping) {
  Param<double> p("p", 2);
  AdamOptions opt;
  opt.lr = 1.0;
  opt.warmup_steps = 4;
  opt.total_steps = 14;
  opt.min_lr_ratio = 0.1;
  opt.clip_grad_norm = 1.0;
  Adam<double> adam({&p}, opt);
  EXPECT_NEAR(adam.learning_rate(0), 0.25, 1e-12);
  EXPECT_NEAR(adam.learning_rate(3), 1.0, 1e-12);
  EXPECT_NEAR(adam.learning_rate(4), 1.0, 1e-12);
  EXPECT_NEAR(adam.learning_rate(9), 0.1 + 0.9 * 0.5, 1e-12);  // half way through the cosine
  EXPECT_NEAR(adam.learning_rate(14), 0.1, 1e-12);
  EXPECT_NEAR(adam.learning_rate(100), 0.1, 1e-12);
  // Clipping rescales the gradient to norm 1; the returned norm is the one before clipping.
  p.grad = {30.0, 40.0};
  EXPECT_NEAR(adam.step(), 50.0, 1e-12);
  EXPECT_NEAR(adam.first_moments()[0][0], 0.1 * 0.6, 1e-12);
  EXPECT_NEAR(adam.first_moments()[0][1], 0.1 * 0.8, 1e-12);
  // A norm passed in is the one clipped against (the trainer passes the norm it already has).
  Adam<double> given({&p}, opt);
  EXPECT_NEAR(given.gradient_norm(), 50.0, 1e-12);
  EXPECT_EQ(given.step(100.0), 100.0);
  EXPECT_NEAR(given.first_moments()[0][0], 0.1 * 30.0 / 100.0, 1e-12);
}

}  // namespace
}  // namespace ff
