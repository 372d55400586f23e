// core: FFT conventions against a brute-force DFT, periodic wrapping at its edges, typed config
// errors, Philox known answers.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <functional>
#include <limits>
#include <numbers>

#include "error_of.hpp"
#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/grid.hpp"
#include "fieldflow/core/periodic.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/core/text.hpp"

using namespace ff;

TEST(Fft, ForwardMatchesBruteForceDftWithNegativeSign) {
  const int n = 4;
  RealFft3d<double> fft(n);
  CounterRng rng(7);
  std::vector<double> x(n * n * n);
  for (size_t i = 0; i < x.size(); ++i) x[i] = rng.normal(i);
  std::copy(x.begin(), x.end(), fft.real());
  fft.forward();
  const int nc = n / 2 + 1;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c < nc; ++c) {
        std::complex<double> sum = 0;
        for (int i = 0; i < n; ++i)
          for (int j = 0; j < n; ++j)
            for (int k = 0; k < n; ++k) {
              const double phase = -2 * std::numbers::pi * (a * i + b * j + c * k) / n;
              sum += x[(i * n + j) * n + k] * std::polar(1.0, phase);
            }
        const auto got = fft.complex()[(a * n + b) * nc + c];
        EXPECT_NEAR(got.real(), sum.real(), 1e-12);
        EXPECT_NEAR(got.imag(), sum.imag(), 1e-12);
      }
}

TEST(Fft, SineWaveHasImaginaryPartMinusHalfN3AtPlusK) {
  // delta = sin(2 pi x / N) gives delta_k = -i N^3 / 2 at k = (1, 0, 0) with FFTW's sign -1.
  const int n = 8;
  RealFft3d<float> fft(n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k)
        fft.real()[(i * n + j) * n + k] = std::sin(2 * std::numbers::pi * i / n);
  fft.forward();
  const int nc = n / 2 + 1;
  const auto mode = fft.complex()[(1 * n + 0) * nc + 0];
  EXPECT_NEAR(mode.real(), 0.0, 1e-3);
  EXPECT_NEAR(mode.imag(), -n * n * n / 2.0, 1e-3);
  EXPECT_NEAR(std::abs(fft.complex()[0]), 0.0, 1e-3);
}

TEST(Fft, InverseOfForwardIsN3TimesInput) {
  const int n = 16;
  RealFft3d<double> fft(n, 2);
  CounterRng rng(3);
  std::vector<double> x(fft.real_size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(i);
  std::copy(x.begin(), x.end(), fft.real());
  fft.forward();
  fft.inverse();
  const double n3 = double(n) * n * n;
  for (size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(fft.real()[i] / n3, x[i], 1e-13);
}

TEST(Fft, WavenumberOrderingAndBadSize) {
  EXPECT_EQ(fft_wavenumber(0, 8), 0);
  EXPECT_EQ(fft_wavenumber(4, 8), 4);
  EXPECT_EQ(fft_wavenumber(5, 8), -3);
  EXPECT_EQ(fft_wavenumber(7, 8), -1);
  EXPECT_THROW(RealFft3d<double>(7), Error);
}

TEST(Grid, IndexingAndScales) {
  Grid g(4, 100.0);
  g(1, 2, 3) = 5.0;
  EXPECT_EQ(g.values[(1 * 4 + 2) * 4 + 3], 5.0);
  EXPECT_DOUBLE_EQ(g.cell_size_mpch(), 25.0);
  EXPECT_DOUBLE_EQ(g.fundamental_k_hmpc(), 2 * std::numbers::pi / 100.0);
  EXPECT_DOUBLE_EQ(g.nyquist_k_hmpc(), std::numbers::pi * 4 / 100.0);
  EXPECT_DOUBLE_EQ(g.mean(), 5.0 / 64);
}

TEST(Config, ReadsTypedValuesAndNestedSections) {
  auto c = Config::parse(
      "train:\n  optimizer:\n    lr: 1e-3\n  steps: 10\n  name: run1\n"
      "  sizes: [1, 2, 3]\n  amp: true\n",
      "run.yaml");
  auto train = c.root().section("train");
  EXPECT_DOUBLE_EQ(train.section("optimizer").positive("lr"), 1e-3);
  EXPECT_EQ(train.positive_integer("steps"), 10);
  EXPECT_EQ(train.text("name"), "run1");
  EXPECT_EQ(train.integers("sizes"), (std::vector<long>{1, 2, 3}));
  EXPECT_TRUE(train.flag("amp"));
  EXPECT_EQ(train.number("missing", 2.5), 2.5);
  EXPECT_NO_THROW(c.finish());
}

TEST(Config, WrongTypeNamesFileKeyPathAndValue) {
  auto c = Config::parse("train:\n  optimizer:\n    lr: fast\n", "run.yaml");
  EXPECT_EQ(error_of([&] { c.root().section("train").section("optimizer").positive("lr"); }),
            "run.yaml: train.optimizer.lr: expected a positive number, got \"fast\"");
  auto d = Config::parse("steps: -3\nmode: sideways\nlist: 4\n", "d.yaml");
  EXPECT_EQ(error_of([&] { d.root().positive_integer("steps"); }),
            "d.yaml: steps: expected a positive integer, got \"-3\"");
  EXPECT_EQ(error_of([&] {
              d.root().choice("mode", {"up", "down"});
            }),
            "d.yaml: mode: expected one of up, down, got \"sideways\"");
  EXPECT_EQ(error_of([&] { d.root().numbers("list"); }),
            "d.yaml: list: expected a list of numbers, got \"4\"");
  EXPECT_EQ(error_of([&] { d.root().number("absent"); }),
            "d.yaml: absent: required key is missing");
}

TEST(Config, RejectsUnknownKeys) {
  auto c = Config::parse("train:\n  lr: 1\n  lr_typo: 2\n", "run.yaml");
  c.root().section("train").positive("lr");
  EXPECT_EQ(error_of([&] { c.finish(); }), "run.yaml: train.lr_typo: unknown key");
}

TEST(Config, OverridesReplaceAndCreateKeys) {
  auto c = Config::parse("train:\n  lr: 1\n", "run.yaml",
                         {"train.lr=0.5", "train.optimizer.beta=0.9", "seed=3"});
  auto root = c.root();
  EXPECT_DOUBLE_EQ(root.section("train").positive("lr"), 0.5);
  EXPECT_DOUBLE_EQ(root.section("train").section("optimizer").number("beta"), 0.9);
  EXPECT_EQ(root.integer("seed"), 3);
  EXPECT_NO_THROW(c.finish());
  EXPECT_EQ(error_of([] { Config::parse("a: 1\n", "x.yaml", {"novalue"}); }),
            "x.yaml: --set expects key=value, got \"novalue\"");
  EXPECT_EQ(error_of([] { Config::parse("a: 1\n", "x.yaml", {"a.b=2"}); }),
            "x.yaml: --set a.b: a is not a mapping");
}

TEST(Config, MalformedOrMissingFilesAreNamed) {
  EXPECT_EQ(error_of([] { Config::load("/nonexistent/run.yaml"); }),
            "/nonexistent/run.yaml: cannot open config file");
  const std::string bad = error_of([] { Config::parse("a: [1, 2\n", "bad.yaml"); });
  EXPECT_EQ(bad.rfind("bad.yaml: malformed YAML at line", 0), 0u) << bad;
  EXPECT_EQ(error_of([] { Config::parse("- 1\n- 2\n", "list.yaml"); }),
            "list.yaml: expected a mapping of keys at the top level");
}

TEST(Rng, PhiloxKnownAnswersFromRandom123) {
  // Known-answer vectors of Random123's kat_vectors for philox4x32_10.
  EXPECT_EQ(philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (std::array<uint32_t, 4>{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  EXPECT_EQ(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                          {0xffffffffu, 0xffffffffu}),
            (std::array<uint32_t, 4>{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  EXPECT_EQ(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
                          {0xa4093822u, 0x299f31d0u}),
            (std::array<uint32_t, 4>{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(Rng, NormalsHaveUnitVarianceAndArePureFunctions) {
  CounterRng rng(42, 5);
  const int m = 200000;
  double sum = 0, sum2 = 0, sum4 = 0;
  for (int i = 0; i < m; ++i) {
    const auto [a, b] = rng.normal_pair(i);
    sum += a + b;
    sum2 += a * a + b * b;
    sum4 += a * a * a * a + b * b * b * b;
  }
  EXPECT_NEAR(sum / (2 * m), 0.0, 5 * std::sqrt(1.0 / (2 * m)));
  EXPECT_NEAR(sum2 / (2 * m), 1.0, 5 * std::sqrt(2.0 / (2 * m)));
  EXPECT_NEAR(sum4 / (2 * m), 3.0, 5 * std::sqrt(96.0 / (2 * m)));
  EXPECT_EQ(CounterRng(42, 5).normal(123), rng.normal(123));
  EXPECT_NE(CounterRng(42, 6).normal(123), rng.normal(123));
  EXPECT_NE(CounterRng(43, 5).normal(123), rng.normal(123));
  for (int i = 0; i < 1000; ++i) {
    const double u = rng.uniform(i);
    ASSERT_GT(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

// Index wrapping against the mathematical modulo, for neighbours and for any integer.
TEST(Periodic, IndicesWrapLikeTheModulo) {
  for (int n : {1, 2, 5, 8})
    for (int i = -3 * n; i < 4 * n; ++i) {
      const int truth = ((i % n) + n) % n;
      EXPECT_EQ(wrap_index(i, n), truth) << i << " mod " << n;
      if (i >= -n && i < 2 * n) {
        EXPECT_EQ(wrap_index_near(i, n), truth) << i << " mod " << n;
      }
    }
}

// Coordinates: inside values unchanged (bit for bit), L and -0 to +0, values just below L kept,
// tiny negatives (which round to L) to 0, far values by whole periods; in float32 and float64.
template <typename Real>
void check_coordinate_edges(Real box) {
  SCOPED_TRACE(sizeof(Real) == 4 ? "float32" : "float64");
  const Real below = std::nextafter(box, Real(0));  // the largest value < L
  EXPECT_EQ(wrap_periodic(below, box), below);
  EXPECT_EQ(wrap_periodic(Real(0.25) * box, box), Real(0.25) * box);
  EXPECT_EQ(wrap_periodic(box, box), Real(0));
  const Real zero = wrap_periodic(Real(-0.0), box);
  EXPECT_EQ(zero, Real(0));
  EXPECT_FALSE(std::signbit(zero));
  const Real tiny = std::numeric_limits<Real>::denorm_min();
  EXPECT_EQ(wrap_periodic(-tiny, box), Real(0));  // -tiny + L rounds to L
  EXPECT_EQ(wrap_periodic(tiny, box), tiny);
  EXPECT_EQ(wrap_periodic(box + Real(0.5), box), Real(0.5));
  EXPECT_EQ(wrap_periodic(Real(-0.5), box), box - Real(0.5));
  EXPECT_EQ(wrap_periodic(Real(3) * box + Real(1), box), Real(1));
  // Every result lies in [0, L) in Real, whatever rounding does near the edges.
  for (int k = -4; k <= 4; ++k)
    for (Real x : {Real(k) * box, std::nextafter(Real(k) * box, Real(-1e30)),
                   std::nextafter(Real(k) * box, Real(1e30))}) {
      const Real w = wrap_periodic(x, box);
      EXPECT_TRUE(w >= Real(0) && w < box) << "x " << x << " -> " << w;
    }
}

TEST(Periodic, CoordinatesWrapIntoHalfOpenBox) {
  check_coordinate_edges<float>(128.0f);
  check_coordinate_edges<double>(128.0);
  check_coordinate_edges<float>(1000.0f / 3.0f);  // a box that is not a power of two
  check_coordinate_edges<double>(1000.0 / 3.0);
}

// The half-complex multiplicities add up to the full spectrum's n^3 modes (odd and even n).
TEST(Fft, HalfComplexWeightsCountEveryModeOnce) {
  for (int n : {1, 2, 3, 4, 5, 8}) {
    long total = 0;
    for (int c = 0; c <= n / 2; ++c) total += long(half_complex_weight(c, n)) * n * n;
    EXPECT_EQ(total, long(n) * n * n) << "n " << n;
  }
}

// ---- Error and printable ----

TEST(Error, ComposesContextKeyAndProblemWithoutStringSurgery) {
  const Error plain("grid.h5", "no such file");
  EXPECT_STREQ(plain.what(), "grid.h5: no such file");
  EXPECT_EQ(plain.key(), "");
  const Error keyed("run.yaml", "train.optimizer.lr", "expected a positive number");
  EXPECT_STREQ(keyed.what(), "run.yaml: train.optimizer.lr: expected a positive number");
  EXPECT_EQ(keyed.context(), "run.yaml");
  EXPECT_EQ(keyed.key(), "train.optimizer.lr");
  EXPECT_EQ(keyed.problem(), "expected a positive number");
  // A library routine's error re-said about the user's input keeps the routine as the key.
  const Error routine("power spectrum", "P(k) exceeds double precision");
  const Error about_file = routine.in("g.h5");
  EXPECT_STREQ(about_file.what(), "g.h5: power spectrum: P(k) exceeds double precision");
  EXPECT_EQ(about_file.problem(), routine.problem());
  EXPECT_STREQ(keyed.in("other.yaml").what(),
               "other.yaml: run.yaml: train.optimizer.lr: expected a positive number");
  EXPECT_STREQ(keyed.in("run.yaml").what(), keyed.what());
  EXPECT_STREQ(Error("", "only a problem").what(), "only a problem");
}

TEST(Text, PrintableEscapesControlCharactersSoAMessageStaysOneLine) {
  EXPECT_EQ(printable("a\nb\tc\rd\x1b[31m\x7f"), "a\\nb\\tc\\rd\\x1b[31m\\x7f");
  EXPECT_EQ(printable("plain name.h5 (ünï)"), "plain name.h5 (ünï)");
}
