// The post-training spectral calibration (train/calibrate.hpp): the fit against the closed-form
// maximum-likelihood scales of a Gaussian density, the calibrated checkpoint through sample, logp
// and a reload, and `fieldflow calibrate` end to end with each of its keys changing the result;
// power with match delta against the fields' P(k) of delta after ranking; the base refit (method
// base) against the fields' own P(k) and the likelihood; the marginal map (method marginal)
// against the fields' one-point quantiles, and its command and keys.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/fields.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/stats/power_spectrum.hpp"
#include "fieldflow/train/calibrate.hpp"
#include "shell.hpp"

namespace ff {
namespace {

namespace fs = std::filesystem;

constexpr int kGrid = 8;
constexpr double kBox = 64.0;

// The identity flow (fresh couplings) over a correlated Gaussian base: a Gaussian density in y.
FlowSpec gaussian_spec() {
  FlowSpec s;
  s.grid = kGrid;
  s.levels = {{2, 2, 4, 5}, {2, 0, 3, 0}};
  s.base = BaseKind::correlated_gaussian;
  s.base_box_size_mpch = kBox;
  s.base_k_hmpc = {0.05, 0.2, 1.0};
  s.base_pk = {800.0, 300.0, 20.0};
  return s;
}

// Fields whose large scales carry more power than the base's: a Gaussian base sample plus white
// noise, so every bin's closed-form scale differs from 1.
std::vector<GridF> test_fields(int count) {
  MultiScaleFlow<float> flow(gaussian_spec());
  Tensor<float> x;
  flow.sample(count, 11, 1.3, x);
  std::vector<GridF> out;
  for (int f = 0; f < count; ++f) {
    GridF g(kGrid, kBox);
    const CounterRng rng(5, uint64_t(f));
    for (size_t i = 0; i < g.size(); ++i) g.values[i] = x.field(f)[i] + float(0.3 * rng.normal(i));
    out.push_back(g);
  }
  return out;
}

// Per bin of width k_N/4 on 8^3 (one fundamental: |k| in [b, b + 1) k_F), summed over the grids
// and modes: |Y_k|^2 / weight_k (weight: n^3 lambda_k, or 1 when lambda is empty); and the modes
// per bin (of all n^3, counted once).
std::vector<double> bin_sums(const std::vector<GridF>& grids, const std::vector<double>& lambda,
                             std::vector<double>* modes = nullptr) {
  const int n = kGrid, half = n / 2 + 1, count = 7;  // floor(sqrt(3) * 4) + 1
  std::vector<double> sums(count, 0.0);
  if (modes) modes->assign(count, 0.0);
  RealFft3d<double> fft(n, 1);
  for (const GridF& g : grids) {
    for (size_t i = 0; i < g.size(); ++i) fft.real()[i] = g.values[i];
    fft.forward();
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b)
        for (int c = 0; c < half; ++c) {
          const double ka = fft_wavenumber(a, n), kb = fft_wavenumber(b, n);
          const size_t bin = size_t(std::sqrt(ka * ka + kb * kb + double(c) * c));
          const size_t m = (size_t(a) * n + b) * half + c;
          const double w = (c == 0 || 2 * c == n) ? 1.0 : 2.0;
          const double weight = lambda.empty() ? 1.0 : double(n) * n * n * lambda[m];
          sums[bin] += w * std::norm(fft.complex()[m]) / weight;
          if (modes && &g == &grids.front()) (*modes)[bin] += w;
        }
  }
  return sums;
}

// Maximum likelihood of log N(A y; 0, S) + log|det A| in a_b, in closed form:
// a_b^2 = (modes of b) * fields / sum over fields and b's modes of |Y_k|^2 / (n^3 lambda_k).
std::vector<double> closed_form_log_scales(const std::vector<GridF>& fields,
                                           const std::vector<double>& lambda) {
  std::vector<double> modes;
  const std::vector<double> power = bin_sums(fields, lambda, &modes);
  std::vector<double> out(power.size());
  for (size_t b = 0; b < out.size(); ++b)
    out[b] = 0.5 * std::log(modes[b] * double(fields.size()) / power[b]);
  return out;
}

// `fieldflow calibrate` on DIR/NAME.yaml: checkpoint, fields, out DIR/NAME.h5, then `extra`
// (further keys, one per line).
CommandResult calibrate_command(const fs::path& dir, const std::string& name,
                                const fs::path& checkpoint, const fs::path& fields,
                                const std::string& extra) {
  const fs::path config = dir / (name + ".yaml");
  std::ofstream(config) << "calibrate:\n  checkpoint: " << checkpoint.string() << "\n  fields: ["
                        << fields.string() << "]\n  out: " << (dir / (name + ".h5")).string()
                        << "\n"
                        << extra;
  return run_command(std::string(FIELDFLOW_BINARY) + " calibrate " + config.string());
}

TEST(SpectralCalibrationFit, GaussianDensityMatchesClosedForm) {
  const std::vector<GridF> fields = test_fields(6);
  MultiScaleFlow<float> gaussian(gaussian_spec());
  const int bins = 4;  // bins one fundamental wide on 8^3
  auto flow = with_spectral_calibration(gaussian, bins);
  const Preprocessing identity;  // y = delta
  CalibrationOptions likelihood;
  likelihood.method = CalibrationMethod::likelihood;
  likelihood.iterations = 3;
  const std::vector<CalibrationPass> passes =
      fit_spectral_calibration(*flow, identity, fields, likelihood);
  ASSERT_EQ(passes.size(), 4u);
  const std::vector<double> expected =
      closed_form_log_scales(fields, gaussian.correlated_base()->eigenvalues());
  const std::vector<float>& got = flow->calibration()->log_scale.value;
  ASSERT_EQ(got.size(), expected.size());
  double spread = 0;
  EXPECT_EQ(got[0], 0.f);  // k = 0 is left to the flow
  for (size_t b = 1; b < got.size(); ++b) {
    EXPECT_NEAR(got[b], expected[b], 2e-4) << "bin " << b;
    spread = std::max(spread, std::abs(expected[b]));
  }
  EXPECT_GT(spread, 0.05) << "the test needs scales away from 1";
  // Exact for a Gaussian: the first update lands, the next ones are rounding.
  EXPECT_GT(passes[0].largest_step, 0.05);
  EXPECT_LT(passes[1].largest_step, 2e-4);
  EXPECT_EQ(passes[0].bins_kept, 0);
  // The likelihood rose, and the last pass only measures.
  EXPECT_LT(passes[1].nll_bits_per_voxel, passes[0].nll_bits_per_voxel - 1e-3);
  EXPECT_EQ(passes[3].largest_step, 0.0);
  // No calibration, or another size of it: refused.
  EXPECT_THROW(fit_spectral_calibration(gaussian, identity, fields, likelihood), Error);
  EXPECT_THROW(with_spectral_calibration(*flow, 2), Error);
}

// power: with identity preprocessing one update gives the calibrated flow's samples (the same
// draws, as `fieldflow sample` seeds them) exactly the fields' P(k) per bin, measured here with
// an FFT of its own; further updates stay there.
TEST(SpectralCalibrationFit, PowerMatchesTheFieldsSpectrum) {
  const std::vector<GridF> fields = test_fields(6);
  MultiScaleFlow<float> gaussian(gaussian_spec());
  gaussian.perturb(3, 0.02);  // not Gaussian any more
  auto flow = with_spectral_calibration(gaussian, 4);
  CalibrationOptions power;
  power.samples = 5;
  power.seed = 9;
  power.iterations = 2;
  const std::vector<CalibrationPass> passes =
      fit_spectral_calibration(*flow, Preprocessing{}, fields, power);
  ASSERT_EQ(passes.size(), 3u);
  EXPECT_GT(passes[0].largest_step, 0.05);
  EXPECT_LT(passes[1].largest_step, 1e-4);
  EXPECT_TRUE(std::isfinite(passes[0].nll_bits_per_voxel));
  EXPECT_TRUE(std::isnan(passes[1].nll_bits_per_voxel));
  std::vector<GridF> samples;
  for (int i = 0; i < power.samples; ++i) {
    Tensor<float> x;
    flow->sample(1, sample_seed(power.seed, uint64_t(i)), 1.0, x);
    GridF g(kGrid, kBox);
    std::copy(x.data.begin(), x.data.end(), g.values.begin());
    samples.push_back(g);
  }
  const std::vector<double> want = bin_sums(fields, {}), got = bin_sums(samples, {});
  for (size_t b = 1; b < want.size(); ++b)
    EXPECT_NEAR(got[b] / samples.size() / (want[b] / fields.size()), 1.0, 1e-4) << "bin " << b;
  EXPECT_EQ(flow->calibration()->log_scale.value[0], 0.f);
}

// The calibrated checkpoint: reloaded with its scales, and sample and logp go through them.
TEST(SpectralCalibrationFit, CheckpointSampleAndLogpUseTheCalibration) {
  const fs::path dir = fs::temp_directory_path() / ("ff_calibrate_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::vector<GridF> fields = test_fields(4);
  MultiScaleFlow<float> gaussian(gaussian_spec());
  gaussian.perturb(3, 0.02);
  const Preprocessing identity;
  const TrainingData data{kBox, 0.0};
  save_flow_checkpoint((dir / "plain.h5").string(), gaussian, identity, data);
  auto flow = with_spectral_calibration(gaussian, 4);
  fit_spectral_calibration(*flow, identity, fields, CalibrationOptions{});
  save_flow_checkpoint((dir / "calibrated.h5").string(), *flow, identity, data);
  FlowCheckpoint plain = load_flow_checkpoint((dir / "plain.h5").string());
  FlowCheckpoint calibrated = load_flow_checkpoint((dir / "calibrated.h5").string());
  ASSERT_NE(calibrated.flow->calibration(), nullptr);
  EXPECT_EQ(calibrated.flow->calibration()->log_scale.value, flow->calibration()->log_scale.value);
  Tensor<float> x(1, kGrid, 1);
  std::copy(fields[0].values.begin(), fields[0].values.end(), x.data.begin());
  EXPECT_NEAR(field_log_density(calibrated, fields[0]), flow->log_prob(x)[0], 1e-3);
  EXPECT_GT(
      std::abs(field_log_density(calibrated, fields[0]) - field_log_density(plain, fields[0])),
      0.1);
  const GridF a = sample_field(plain, 7, 0, 1.0, false),
              b = sample_field(calibrated, 7, 0, 1.0, false);
  double moved = 0;
  for (size_t i = 0; i < a.size(); ++i)
    moved = std::max(moved, double(std::abs(a.values[i] - b.values[i])));
  EXPECT_GT(moved, 1e-2);
  fs::remove_all(dir);
}

// power with match delta: the samples, their values put onto the fields' by rank and (zero_mean)
// each then against its own mean density, reach the fields' P(k) of delta in the fitted bins
// (those below k_max); the others keep scale 1.
class PowerOfDelta : public ::testing::TestWithParam<bool> {};

TEST_P(PowerOfDelta, MatchesAfterRanking) {
  const bool zero_mean = GetParam();
  std::vector<GridF> fields = test_fields(6);
  for (GridF& g : fields)  // a skewed one-point distribution, unlike the flow's samples
    for (float& v : g.values) v = float(std::exp(double(v) / 30.0) - 1.0);
  MultiScaleFlow<float> gaussian(gaussian_spec());
  gaussian.perturb(3, 0.02);
  auto flow = with_spectral_calibration(gaussian, 4);
  CalibrationOptions power;
  power.samples = 6;
  power.seed = 9;
  power.iterations = 12;
  power.match_delta = true;
  power.zero_mean = zero_mean;
  power.k_max_over_nyquist = 0.6;  // bins 1 and 2 (of width k_N / 4) start below
  const Preprocessing identity;
  const std::vector<CalibrationPass> passes =
      fit_spectral_calibration(*flow, identity, fields, power);
  EXPECT_GT(passes.front().largest_step, 0.02);
  std::vector<double> field_values;
  for (const GridF& g : fields)
    field_values.insert(field_values.end(), g.values.begin(), g.values.end());
  std::sort(field_values.begin(), field_values.end());
  std::vector<GridF> samples;
  std::vector<std::pair<float, size_t>> ranked;
  for (int i = 0; i < power.samples; ++i) {
    Tensor<float> x;
    flow->sample(1, sample_seed(power.seed, uint64_t(i)), 1.0, x);
    GridF g(kGrid, kBox);
    std::copy(x.data.begin(), x.data.end(), g.values.begin());
    for (size_t v = 0; v < g.size(); ++v) ranked.push_back({g.values[v], size_t(i) * g.size() + v});
    samples.push_back(g);
  }
  std::sort(ranked.begin(), ranked.end());
  for (size_t r = 0; r < ranked.size(); ++r)  // equal counts: rank r takes the r-th field value
    samples[ranked[r].second / samples[0].size()].values[ranked[r].second % samples[0].size()] =
        float(field_values[r]);
  double largest_mean = 0;
  for (GridF& g : samples) {
    const double mean = g.mean();
    largest_mean = std::max(largest_mean, std::abs(mean));
    const double eps = identity.eps, c = (1 + eps) / (1 + eps + mean);
    if (zero_mean)  // 1 + delta + eps scaled to mean 1 + eps
      for (float& v : g.values) v = float((1 + eps + v) * c - 1 - eps);
  }
  EXPECT_GT(largest_mean, 1e-3);  // so that zero_mean matters
  const std::vector<double> want = bin_sums(fields, {}), got = bin_sums(samples, {});
  const std::vector<float>& log_scale = flow->calibration()->log_scale.value;
  for (size_t b = 1; b < want.size(); ++b) {
    if (b <= 2) {
      EXPECT_NEAR(got[b] / want[b], 1.0, 1e-3) << "bin " << b;
      EXPECT_NE(log_scale[b], 0.f) << "bin " << b;
    } else {
      EXPECT_EQ(log_scale[b], 0.f) << "bin " << b;
    }
  }
  EXPECT_LT(std::abs(passes.back().bin_ratio[1] - 1.0), 0.02);
}

INSTANTIATE_TEST_SUITE_P(SpectralCalibrationFit, PowerOfDelta, ::testing::Bool());

// `fieldflow calibrate` end to end: every key changes the written scales.
// calibrate.mean_tolerance for the flow in `checkpoint`: the median |mean delta| of the first 20
// draws `fieldflow sample` makes with seed 0 (so about half of them are kept), or below the first
// draw's so that it is not kept, as YAML text.
std::string median_mean_delta(const fs::path& checkpoint) {
  FlowCheckpoint loaded = load_flow_checkpoint(checkpoint.string());
  std::vector<double> size;
  for (int i = 0; i < 20; ++i)
    size.push_back(std::abs(mean_delta(sample_field(loaded, 0, i, 1.0, false).values)));
  const double first = size[0];
  std::sort(size.begin(), size.end());
  char text[64];
  std::snprintf(text, sizeof text, "%.17g", std::min(size[10], 0.5 * first));
  return text;
}

TEST(SpectralCalibrationFit, CommandKeysChangeTheResult) {
  const fs::path dir =
      fs::temp_directory_path() / ("ff_calibrate_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  MultiScaleFlow<float> gaussian(gaussian_spec());
  gaussian.perturb(3, 0.02);
  save_flow_checkpoint((dir / "plain.h5").string(), gaussian, Preprocessing{},
                       TrainingData{kBox, 0.0});
  write_grid_stack((dir / "train.h5").string(), test_fields(4), GridPrecision::float32);
  auto run = [&](const std::string& name, const std::string& extra) {
    const CommandResult r = calibrate_command(dir, name, dir / "plain.h5", dir / "train.h5", extra);
    EXPECT_EQ(r.status, 0) << r.output;
    return load_flow_checkpoint((dir / (name + ".h5")).string())
        .flow->calibration()
        ->log_scale.value;
  };
  // Defaults: power, 256 samples, seed 0, 5 iterations, bins 0 (grid / 2 = 4).
  const std::vector<float> base = run("base", "  samples: 3\n");
  EXPECT_EQ(base.size(), 7u);
  EXPECT_NE(run("seed", "  samples: 3\n  seed: 4\n"), base);
  EXPECT_NE(run("samples", "  samples: 2\n"), base);
  EXPECT_NE(run("likelihood", "  method: likelihood\n"), base);
  const std::vector<float> delta = run("match", "  samples: 3\n  match: delta\n");
  EXPECT_NE(delta, base);
  EXPECT_NE(run("zero_mean", "  samples: 3\n  match: delta\n  zero_mean: false\n"), delta);
  EXPECT_NE(run("mean_tolerance", "  samples: 3\n  match: delta\n  mean_tolerance: " +
                                      median_mean_delta(dir / "plain.h5") + "\n"),
            delta);
  EXPECT_NE(run("iterations", "  method: likelihood\n  iterations: 1\n"),
            run("likelihood2", "  method: likelihood\n"));
  EXPECT_EQ(run("zero", "  iterations: 0\n"), std::vector<float>(7, 0.f));
  EXPECT_EQ(run("bins", "  samples: 3\n  bins: 2\n").size(), 4u);
  // k_max_hmpc: only the bins that start below it are fitted (k_N = 0.39 h/Mpc, bins of
  // 0.098: bins 1 and 2 start below 0.25), under power and under likelihood.
  for (const std::string method : {"power", "likelihood"}) {
    const std::string keys = method == "power" ? "  samples: 3\n" : "  method: likelihood\n";
    const std::vector<float> all = run(method + "_all", keys);
    const std::vector<float> low = run(method + "_low", keys + "  k_max_hmpc: 0.25\n");
    ASSERT_EQ(low.size(), all.size());
    EXPECT_EQ(low[0], 0.f);
    for (size_t b = 1; b < low.size(); ++b) {
      if (b <= 2)
        EXPECT_NE(low[b], 0.f) << method << " bin " << b;
      else
        EXPECT_EQ(low[b], 0.f) << method << " bin " << b;
    }
  }
  // A key the method does not use is refused in one line, naming it.
  for (const auto& [extra, key] : std::vector<std::pair<std::string, std::string>>{
           {"  method: likelihood\n  samples: 3\n", "calibrate.samples"},
           {"  method: likelihood\n  seed: 2\n", "calibrate.seed"},
           {"  method: base\n  bins: 2\n", "calibrate.bins"},
           {"  method: marginal\n  bins: 2\n", "calibrate.bins"},
           {"  knots: 8\n", "calibrate.knots"},
           {"  method: base\n  k_max_hmpc: 0.1\n", "calibrate.k_max_hmpc"},
           {"  method: marginal\n  k_max_hmpc: 0.1\n", "calibrate.k_max_hmpc"},
           {"  method: likelihood\n  knots: 8\n", "calibrate.knots"},
           {"  method: marginal\n  iterations: 2\n", "calibrate.iterations"},
           {"  method: likelihood\n  match: delta\n", "calibrate.match"},
           {"  zero_mean: false\n", "calibrate.zero_mean"},
           {"  method: marginal\n  zero_mean: false\n", "calibrate.zero_mean"},
           {"  method: likelihood\n  mean_tolerance: 0.1\n", "calibrate.mean_tolerance"},
           {"  method: base\n  mean_tolerance: 0.1\n", "calibrate.mean_tolerance"}}) {
    const CommandResult r =
        calibrate_command(dir, "unused", dir / "plain.h5", dir / "train.h5", extra);
    EXPECT_EQ(r.status, 1) << extra;
    EXPECT_NE(r.output.find(key), std::string::npos) << r.output;
    EXPECT_FALSE(fs::exists(dir / "unused.h5"));
  }
  // A grid of another size is refused in one line.
  write_grid_stack((dir / "other.h5").string(), std::vector<GridF>{GridF(16, kBox)},
                   GridPrecision::float32);
  const CommandResult bad = calibrate_command(dir, "bad", dir / "plain.h5", dir / "other.h5", "");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find("other.h5: grid of 16^3"), std::string::npos) << bad.output;
  fs::remove_all(dir);
}

// method base on the identity flow: the latents are the fields, so the refitted table is the
// fields' mean P(k) (every mode, the estimator's bins), measured here on its own. On a perturbed
// flow the likelihood rises, and scaling the refitted spectrum either way lowers it again.
TEST(BaseRefit, IsTheLatentsPowerAndRaisesTheLikelihood) {
  const std::vector<GridF> fields = test_fields(6);
  CalibrationOptions base;
  base.method = CalibrationMethod::base;
  base.iterations = 1;
  {
    MultiScaleFlow<float> identity_flow(gaussian_spec());
    const std::vector<CalibrationPass> passes =
        fit_spectral_calibration(identity_flow, Preprocessing{}, fields, base);
    ASSERT_EQ(passes.size(), 2u);
    PowerSpectrumOptions every_mode;
    every_mode.k_max_over_nyquist = std::sqrt(3.0);
    std::vector<double> mean;
    std::vector<double> k;
    double pk0 = 0;  // P at k = 0: L^3 (field mean)^2, averaged
    for (const GridF& g : fields) {
      const PowerSpectrum p = measure_power_spectrum(g, every_mode);
      if (mean.empty()) mean.assign(p.pk.size(), 0.0), k = p.k;
      for (size_t b = 0; b < p.pk.size(); ++b) mean[b] += p.pk[b] / double(fields.size());
      const double field_mean = g.mean();
      pk0 += kBox * kBox * kBox * field_mean * field_mean / double(fields.size());
    }
    const FlowSpec& spec = identity_flow.spec();
    EXPECT_GT(pk0, 0.01 * mean[0]);  // above the floor
    EXPECT_NEAR(spec.base_pk0, pk0, 1e-5 * pk0);
    EXPECT_NE(spec.base_pk0, gaussian_spec().base_pk0);
    ASSERT_EQ(spec.base_pk.size(), mean.size());
    for (size_t b = 0; b < mean.size(); ++b) {
      EXPECT_NEAR(spec.base_k_hmpc[b], k[b], 1e-12);
      EXPECT_NEAR(spec.base_pk[b] / mean[b], 1.0, 1e-5) << "bin " << b;
      // Before: the fields' power over the old table's at the bin (the fields carry more).
      EXPECT_NEAR(passes[0].bin_ratio[b],
                  mean[b] / tabulated_power({0.05, 0.2, 1.0}, {800.0, 300.0, 20.0}, k[b]), 1e-5);
    }
    EXPECT_GT(passes[0].largest_step, 0.1);
    EXPECT_LT(passes[1].nll_bits_per_voxel, passes[0].nll_bits_per_voxel - 1e-3);
  }
  MultiScaleFlow<float> flow(gaussian_spec());
  flow.perturb(3, 0.02);
  const std::vector<CalibrationPass> passes =
      fit_spectral_calibration(flow, Preprocessing{}, fields, base);
  EXPECT_LT(passes[1].nll_bits_per_voxel, passes[0].nll_bits_per_voxel - 1e-3);
  const std::vector<double> k = flow.spec().base_k_hmpc, pk = flow.spec().base_pk;
  CalibrationOptions measure = base;
  measure.iterations = 0;  // measures only
  for (double factor : {0.95, 1.05}) {
    std::vector<double> scaled = pk;
    for (double& p : scaled) p *= factor;
    flow.set_base_power(k, scaled, flow.spec().base_pk0);
    const std::vector<CalibrationPass> moved =
        fit_spectral_calibration(flow, Preprocessing{}, fields, measure);
    ASSERT_EQ(moved.size(), 1u);
    EXPECT_GT(moved[0].nll_bits_per_voxel, passes[1].nll_bits_per_voxel) << factor;
    EXPECT_EQ(flow.spec().base_pk, scaled) << "iterations 0 only measures";
  }
  // P at k = 0: floored at 1% of the first bin's when the fields' means are 0; kept for one field.
  {
    std::vector<GridF> zero_mean = fields;
    for (GridF& g : zero_mean) {
      const double m = g.mean();
      for (float& v : g.values) v = float(v - m);
    }
    MultiScaleFlow<float> identity_flow(gaussian_spec());
    fit_spectral_calibration(identity_flow, Preprocessing{}, zero_mean, base);
    EXPECT_NEAR(identity_flow.spec().base_pk0, 0.01 * identity_flow.spec().base_pk[0],
                1e-6 * identity_flow.spec().base_pk[0]);
    FlowSpec with_pk0 = gaussian_spec();
    with_pk0.base_pk0 = 7.0;
    MultiScaleFlow<float> one(with_pk0);
    fit_spectral_calibration(one, Preprocessing{}, {fields[0]}, base);
    EXPECT_EQ(one.spec().base_pk0, 7.0);
    EXPECT_NE(one.spec().base_pk, with_pk0.base_pk);
  }
  // Only a correlated base has a P(k).
  FlowSpec normal = gaussian_spec();
  normal.base = BaseKind::standard_normal;
  MultiScaleFlow<float> standard(normal);
  EXPECT_THROW(fit_spectral_calibration(standard, Preprocessing{}, fields, base), Error);
}

// `fieldflow calibrate` with method base: the checkpoint's base is the refitted one, no
// calibration is added, and a trainer's optimizer state and extras are kept.
TEST(BaseRefit, CommandKeepsTheOptimizerState) {
  const fs::path dir = fs::temp_directory_path() / ("ff_base_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  MultiScaleFlow<float> flow(gaussian_spec());
  flow.perturb(3, 0.02);
  AdamOptions adam_options;
  Adam<float> adam(flow.params(), adam_options);
  for (Param<float>* p : flow.params()) std::fill(p->grad.begin(), p->grad.end(), 0.5f);
  adam.step();
  ArrayFile extras;
  extras.numbers["train.step"] = 7;
  save_flow_checkpoint((dir / "trained.h5").string(), flow, Preprocessing{},
                       TrainingData{kBox, 0.0}, &adam, &extras);
  write_grid_stack((dir / "train.h5").string(), test_fields(4), GridPrecision::float32);
  auto run = [&](const std::string& name, const std::string& extra) {
    const CommandResult r = calibrate_command(dir, name, dir / "trained.h5", dir / "train.h5",
                                              "  method: base\n" + extra);
    EXPECT_EQ(r.status, 0) << r.output;
    return load_flow_checkpoint((dir / (name + ".h5")).string());
  };
  const FlowCheckpoint refit = run("refit", "");
  EXPECT_EQ(refit.flow->calibration(), nullptr);
  EXPECT_NE(refit.flow->spec().base_pk, flow.spec().base_pk);
  ASSERT_TRUE(refit.has_optimizer);
  EXPECT_EQ(refit.adam_step, 1);
  EXPECT_EQ(refit.adam_m.size(), flow.params().size());
  EXPECT_EQ(refit.extras.numbers.at("train.step"), 7);
  for (size_t i = 0; i < flow.params().size(); ++i)
    EXPECT_EQ(refit.flow->params()[i]->value, flow.params()[i]->value);
  // iterations 0 measures only: the base stays.
  EXPECT_EQ(run("measure", "  iterations: 0\n").flow->spec().base_pk, flow.spec().base_pk);
  fs::remove_all(dir);
}

// Fields with a heavy-tailed one-point distribution: sinh of the Gaussian fields.
std::vector<GridF> heavy_tailed_fields(int count) {
  std::vector<GridF> fields = test_fields(count);
  for (GridF& g : fields)
    for (float& v : g.values) v = float(std::sinh(1.5 * double(v) / 30.0));
  return fields;
}

std::vector<double> sorted_values(const std::vector<GridF>& grids) {
  std::vector<double> out;
  for (const GridF& g : grids) out.insert(out.end(), g.values.begin(), g.values.end());
  std::sort(out.begin(), out.end());
  return out;
}

// method marginal: samples mapped back through the fitted map have the fields' one-point
// quantiles (the very samples of the fit at the knots' probabilities, others to sampling noise),
// the fit does not depend on the map it starts from, and the training range is carried.
TEST(MarginalFit, SamplesTakeTheFieldsOnePointDistribution) {
  const std::vector<GridF> fields = heavy_tailed_fields(8);
  MultiScaleFlow<float> flow(gaussian_spec());
  flow.perturb(3, 0.02);
  const Preprocessing identity;
  const int samples = 8;
  const MarginalFit fit = fit_marginal_map(flow, identity, fields, 16, samples, 3);
  ASSERT_FALSE(fit.preprocessing.marginal.empty());
  EXPECT_EQ(fit.score.size(), fit.preprocessing.marginal.t_knots().size());
  EXPECT_NEAR(fit.score.front(), -fit.score.back(), 1e-12);
  EXPECT_TRUE(std::isfinite(fit.nll_before) && std::isfinite(fit.nll_after));
  EXPECT_NE(fit.nll_before, fit.nll_after);
  const std::vector<double> want = sorted_values(fields);
  auto quantile = [](const std::vector<double>& sorted, double p) {
    return sorted[size_t(p * double(sorted.size() - 1) + 0.5)];
  };
  auto mapped_samples = [&](const Preprocessing& p, uint64_t seed, int count) {
    std::vector<GridF> out;
    for (int i = 0; i < count; ++i) {
      Tensor<float> y;
      flow.sample(1, sample_seed(seed, uint64_t(i)), 1.0, y);
      GridF g(kGrid, kBox);
      for (size_t v = 0; v < g.size(); ++v) g.values[v] = float(p.inverse(y.data[v]));
      out.push_back(g);
    }
    return sorted_values(out);
  };
  const double spread = quantile(want, 0.9) - quantile(want, 0.1);
  const std::vector<double> same = mapped_samples(fit.preprocessing, 3, samples);
  const std::vector<double> before = mapped_samples(identity, 3, samples);
  const std::vector<double> other = mapped_samples(fit.preprocessing, 1000, 16);
  double before_error = 0;
  for (double z : fit.score) {
    const double p = 0.5 * std::erfc(-z / std::sqrt(2.0));
    EXPECT_NEAR(quantile(same, p), quantile(want, p), 0.01 * spread) << "z " << z;
    EXPECT_NEAR(quantile(other, p), quantile(want, p), 0.1 * spread) << "z " << z;
    before_error = std::max(before_error, std::abs(quantile(before, p) - quantile(want, p)));
  }
  EXPECT_GT(before_error, 0.3 * spread);  // without the map the samples are far off
  // From a map already in place: the same map.
  const MarginalFit again = fit_marginal_map(flow, fit.preprocessing, fields, 16, samples, 3);
  EXPECT_EQ(again.preprocessing.marginal.t_knots(), fit.preprocessing.marginal.t_knots());
  EXPECT_EQ(again.preprocessing.marginal.y_knots(), fit.preprocessing.marginal.y_knots());
  // The recorded range of y moves with the map: the same fields' values of u.
  TrainingData data{kBox, 0.0};
  data.y_min = -0.4;
  data.y_max = 0.5;
  carry_training_range(identity, fit.preprocessing, data);
  EXPECT_NEAR(data.y_min, fit.preprocessing.marginal.value(-0.4), 1e-12);
  EXPECT_NEAR(data.y_max, fit.preprocessing.marginal.value(0.5), 1e-12);
  carry_training_range(fit.preprocessing, identity, data);
  EXPECT_NEAR(data.y_min, -0.4, 1e-9);
  EXPECT_NEAR(data.y_max, 0.5, 1e-9);
  EXPECT_THROW(fit_marginal_map(flow, identity, fields, 1, samples, 3), Error);
}

// `fieldflow calibrate` with method marginal: the flow's parameters, calibration and optimizer
// state are kept, the preprocessing gets the map (sample and logp go through it), and knots,
// samples and seed each change it.
TEST(MarginalFit, CommandKeysChangeTheResult) {
  const fs::path dir =
      fs::temp_directory_path() / ("ff_marginal_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  MultiScaleFlow<float> flow(gaussian_spec());
  flow.perturb(3, 0.02);
  Adam<float> adam(flow.params(), AdamOptions{});
  for (Param<float>* p : flow.params()) std::fill(p->grad.begin(), p->grad.end(), 0.5f);
  adam.step();
  TrainingData data{kBox, 0.0};
  data.y_min = -1;
  data.y_max = 1;
  save_flow_checkpoint((dir / "trained.h5").string(), flow, Preprocessing{}, data, &adam);
  write_grid_stack((dir / "train.h5").string(), heavy_tailed_fields(4), GridPrecision::float32);
  auto run = [&](const std::string& name, const std::string& extra) {
    const std::string samples = extra.find("samples") == std::string::npos ? "  samples: 4\n" : "";
    const CommandResult r = calibrate_command(dir, name, dir / "trained.h5", dir / "train.h5",
                                              "  method: marginal\n" + samples + extra);
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("knots kept"), std::string::npos) << r.output;
    return load_flow_checkpoint((dir / (name + ".h5")).string());
  };
  FlowCheckpoint mapped = run("mapped", "");
  const MarginalMap& map = mapped.preprocessing.marginal;
  ASSERT_FALSE(map.empty());
  EXPECT_EQ(map.t_knots().size(), 64u);  // the default; no ties in these fields
  EXPECT_EQ(mapped.flow->calibration(), nullptr);
  for (size_t i = 0; i < flow.params().size(); ++i)
    EXPECT_EQ(mapped.flow->params()[i]->value, flow.params()[i]->value);
  ASSERT_TRUE(mapped.has_optimizer);
  EXPECT_EQ(mapped.adam_step, 1);
  EXPECT_NEAR(mapped.data.y_min, map.value(-1), 1e-12);
  EXPECT_NEAR(mapped.data.y_max, map.value(1), 1e-12);
  // sample and logp go through the map.
  FlowCheckpoint plain = load_flow_checkpoint((dir / "trained.h5").string());
  const GridF a = sample_field(plain, 7, 0, 1.0, false), b = sample_field(mapped, 7, 0, 1.0, false);
  for (size_t i = 0; i < a.size(); i += 37)
    EXPECT_NEAR(b.values[i], map.inverse(a.values[i]), 1e-4 * (1 + std::abs(b.values[i])));
  const GridF field = heavy_tailed_fields(1)[0];
  Tensor<float> x(1, kGrid, 1);
  std::copy(field.values.begin(), field.values.end(), x.data.begin());
  const double log_jacobian = mapped.preprocessing.apply(x.data.data(), x.data.size());
  EXPECT_NEAR(field_log_density(mapped, field), flow.log_prob(x)[0] + log_jacobian, 1e-3);
  // Each key changes the map.
  EXPECT_EQ(run("knots", "  knots: 9\n").preprocessing.marginal.t_knots().size(), 9u);
  EXPECT_NE(run("seed", "  seed: 5\n").preprocessing.marginal.y_knots(), map.y_knots());
  EXPECT_NE(run("samples", "  samples: 2\n").preprocessing.marginal.y_knots(), map.y_knots());
  EXPECT_NE(
      run("mean_tolerance", "  mean_tolerance: " + median_mean_delta(dir / "trained.h5") + "\n")
          .preprocessing.marginal.y_knots(),
      map.y_knots());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ff
