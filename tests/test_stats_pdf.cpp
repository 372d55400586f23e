// stats: the one-point PDF histogram against a hand count and a Gaussian's density.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "error_of.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/stats/pdf.hpp"

using namespace ff;

TEST(OnePointPdf, CountsByHand) {
  const std::vector<double> v = {-0.9, -0.5, -0.5, 0.1, 0.4, 0.99, 1.0, 2.0, NAN, -3.0};
  const OnePointPdf p = one_point_pdf(std::span<const double>(v), {-1.0, 1.0, 4, false});
  // bins of width 0.5: [-1,-0.5) [-0.5,0) [0,0.5) [0.5,1]; 1.0 falls in the last bin.
  ASSERT_EQ(p.x.size(), 4u);
  EXPECT_DOUBLE_EQ(p.x[0], -0.75);
  EXPECT_DOUBLE_EQ(p.density[0], 1 / (10 * 0.5));
  EXPECT_DOUBLE_EQ(p.density[1], 2 / (10 * 0.5));
  EXPECT_DOUBLE_EQ(p.density[2], 2 / (10 * 0.5));
  EXPECT_DOUBLE_EQ(p.density[3], 2 / (10 * 0.5));
  EXPECT_DOUBLE_EQ(p.below, 0.1);  // -3
  EXPECT_DOUBLE_EQ(p.above, 0.2);  // 2 and NaN
}

TEST(OnePointPdf, LogBinsOfALognormalGiveAGaussianInLog10) {
  // 1 + delta = 10^g with g ~ N(0, 0.2^2): the density per unit log10(1 + delta) is N(0, 0.2^2).
  std::vector<float> v(200000);
  CounterRng rng(4);
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(std::pow(10.0, 0.2 * rng.normal(i)) - 1.0);
  const OnePointPdf p = one_point_pdf(
      std::span<const float>(v), {std::pow(10.0, -0.8) - 1, std::pow(10.0, 0.8) - 1, 16, true});
  const double width = 1.6 / 16;
  for (size_t i = 0; i < p.x.size(); ++i) {
    const double g = std::log10(p.x[i]);
    // The exact probability of the bin [g - w/2, g + w/2) of N(0, 0.2^2), per unit log10.
    auto cdf = [](double u) { return 0.5 * std::erfc(-u / (0.2 * std::sqrt(2.0))); };
    const double expected = (cdf(g + width / 2) - cdf(g - width / 2)) / width;
    const double sigma =
        std::sqrt(expected * width * double(v.size())) / (width * double(v.size()));
    EXPECT_NEAR(p.density[i], expected, 5 * sigma + 1e-6) << "g = " << g;
  }
  EXPECT_LT(p.below + p.above, 1e-4);
}

TEST(OnePointPdf, RefusesBadBinning) {
  const std::vector<double> v = {0.0};
  EXPECT_EQ(error_of([&] {
              one_point_pdf(std::span<const double>(v), {-2.0, 1.0, 4, true});
            }),
            "one-point PDF: log bins need lo > -1, got -2");
  EXPECT_EQ(error_of([&] {
              one_point_pdf(std::span<const double>(v), {1.0, 1.0, 4, false});
            }),
            "one-point PDF: needs a range lo < hi, got 1, 1");
  EXPECT_EQ(error_of([&] {
              one_point_pdf(std::span<const double>(v), {0.0, 1.0, 0, false});
            }),
            "one-point PDF: needs at least one bin, got 0");
}
