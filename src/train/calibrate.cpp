// The post-training spectral calibration. See include/fieldflow/train/calibrate.hpp.
#include "fieldflow/train/calibrate.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/flow/fields.hpp"

namespace ff {

const SettingsTable<CalibrateSettings>& calibrate_settings_table() {
  using S = CalibrateSettings;
  static const auto table =
      SettingsTable<S>("calibrate",
                       "`fieldflow calibrate`: a spectral calibration, the base's P(k) or the "
                       "marginal map fitted to a trained flow.")
          .one_shot()
          .text("checkpoint", &S::checkpoint, required, "the trained flow (checkpoint file)")
          .texts("fields", &S::fields, required,
                 "grid files or stacks of the training fields (never the test set)")
          .text("out", &S::out, required, "the calibrated checkpoint written")
          .integer("bins", &S::bins, 0, Range::between(0, 4096),
                   "bins per k_N; 0: grid / 2 (each one fundamental wide, as P(k)'s)")
          .choice("method", &S::method, "power", {"power", "likelihood", "base", "marginal"},
                  "power: scales that give samples at temperature 1 the fields' P(k) of y; "
                  "likelihood: maximum likelihood of the fields, the rest of the flow frozen; "
                  "base: no scales, the correlated base's P(k) refitted to the fields' latents; "
                  "marginal: no scales, the preprocessing's monotone map that gives samples at "
                  "temperature 1 the fields' one-point distribution")
          .integer("iterations", &S::iterations, 5, Range::between(0, 1000),
                   "updates of the scales (0: the identity calibration; base: 0 measures "
                   "only, one update is exact; not marginal, exact in one update)")
          .integer("samples", &S::samples, 256, Range::between(1, 100000),
                   "power, marginal: flow samples drawn (once) to measure their P(k) or their "
                   "one-point distribution")
          .integer("seed", &S::seed, 0, Range::non_negative(),
                   "power, marginal: sample i is the one `fieldflow sample` draws with this seed")
          .choice("match", &S::match, "y", {"y", "delta"},
                  "power: the P(k) matched, of y or of delta (the samples' values put onto the "
                  "fields' one-point distribution by rank first, as method marginal does after)")
          .flag("zero_mean", &S::zero_mean, true,
                "power with match delta: each ranked sample's delta taken against its own mean "
                "density, as `fieldflow sample` gives it by default (false: as drawn)")
          .number("mean_tolerance", &S::mean_tolerance, 0, Range::non_negative(),
                  "power, marginal: > 0: only draws whose mean delta (under the checkpoint's "
                  "preprocessing as it stands) lies within +-this are kept, as `fieldflow "
                  "sample` with the same sample.mean_tolerance keeps them; 0: every draw")
          .number("k_max_hmpc", &S::k_max_hmpc, 0, Range::non_negative(),
                  "power, likelihood: only the bins that start below this k [h/Mpc] are fitted, "
                  "the others keep their scale (0: every bin)")
          .integer("knots", &S::knots, 64, Range::between(2, 10000),
                   "marginal: knots of the map (quantiles at normal scores evenly spaced)")
          .check([](const S& c, const Reject& reject) {
            // A key the method does not use is refused, not silently ignored.
            const S d;
            if (c.method == "base" && c.bins != d.bins)
              reject("bins", "method base has no calibration bins (it refits the base's table)");
            if (c.method == "marginal" && c.bins != d.bins)
              reject("bins", "method marginal has no calibration bins (it fits a map of values)");
            const bool draws = c.method == "power" || c.method == "marginal";
            if (!draws && c.samples != d.samples)
              reject("samples", "only methods power and marginal draw samples");
            if (!draws && c.seed != d.seed)
              reject("seed", "only methods power and marginal draw samples");
            if (!draws && c.mean_tolerance != d.mean_tolerance)
              reject("mean_tolerance", "only methods power and marginal draw samples");
            const bool scales = c.method == "power" || c.method == "likelihood";
            if (!scales && c.k_max_hmpc != d.k_max_hmpc)
              reject("k_max_hmpc", "only methods power and likelihood fit scales per k bin");
            if (c.method != "marginal" && c.knots != d.knots)
              reject("knots", "only method marginal fits a map with knots");
            if (c.method != "power" && c.match != d.match)
              reject("match", "only method power matches a P(k)");
            if (!(c.method == "power" && c.match == "delta") && c.zero_mean != d.zero_mean)
              reject("zero_mean", "only method power with match delta takes the samples' delta");
            if (c.method == "marginal" && c.iterations != d.iterations)
              reject("iterations", "method marginal fits its map in one update");
          });
  return table;
}

CalibrateSettings read_calibrate_settings(Config& config) {
  CalibrateSettings s = calibrate_settings_table().read(config.root().section("calibrate"));
  config.finish();
  return s;
}

std::string calibrate_settings_yaml(const CalibrateSettings& s) {
  return calibrate_settings_table().dump_text(s, "calibrate");
}

std::unique_ptr<MultiScaleFlow<float>> with_spectral_calibration(MultiScaleFlow<float>& trained,
                                                                 int bins) {
  FlowSpec spec = trained.spec();
  if (spec.calibration_bins > 0 && spec.calibration_bins != bins)
    throw Error("calibrate", "the flow already has a calibration of " +
                                 std::to_string(spec.calibration_bins) + " bins per k_N, not " +
                                 std::to_string(bins));
  spec.calibration_bins = bins;
  auto flow = std::make_unique<MultiScaleFlow<float>>(spec);
  flow->copy_state_from(trained);
  return flow;
}

namespace {

constexpr int kBatch = 4;  // fields per pass of the flow: memory only

// Whether bin b (of width k_N / bins_per_nyquist, starting at b / bins_per_nyquist k_N) is fitted:
// never k = 0 (the field's mean is a one-point property the couplings model).
bool bin_fitted(size_t b, int bins_per_nyquist, double k_max_over_nyquist) {
  return b > 0 && (k_max_over_nyquist <= 0 || double(b) / bins_per_nyquist < k_max_over_nyquist);
}

// `count` samples (y) at temperature 1: sample i is the one `fieldflow sample` draws with `seed`
// and mean_tolerance (> 0: only draws whose delta under `preprocessing` has a mean within
// +-mean_tolerance are kept).
Tensor<float> draw_samples(MultiScaleFlow<float>& flow, const Preprocessing& preprocessing,
                           int count, uint64_t seed, double mean_tolerance) {
  const int n = flow.spec().grid;
  Tensor<float> y(count, n, 1), one;
  MeanDeltaFilter filter(mean_tolerance, count, "calibrate", "calibrate.mean_tolerance");
  std::vector<float> delta;
  int kept = 0;
  for (uint64_t i = 0; kept < count; ++i) {
    flow.sample(1, sample_seed(seed, i), 1.0, one);
    if (mean_tolerance > 0) {
      delta.assign(one.data.begin(), one.data.end());
      preprocessing.invert(delta.data(), delta.size());
      if (!filter.keep(delta)) continue;
    }
    std::copy(one.data.begin(), one.data.end(), y.field(kept++));
  }
  return y;
}

// Refuses a field that is not a grid of n^3.
void require_grid(const GridF& field, int n) {
  if (field.n != n) throw Error("calibrate", "fields must be grids of " + std::to_string(n) + "^3");
}

// Every voxel value of the fields under `preprocessing`, in double precision, sorted.
std::vector<double> sorted_values(const std::vector<GridF>& fields,
                                  const Preprocessing& preprocessing, int n) {
  std::vector<double> out;
  out.reserve(fields.size() * size_t(n) * n * n);
  for (const GridF& field : fields) {
    require_grid(field, n);
    std::vector<double> values(field.values.begin(), field.values.end());
    preprocessing.apply(values.data(), values.size());
    out.insert(out.end(), values.begin(), values.end());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The fields (delta) preprocessed into the batch x; returns the preprocessing's log-Jacobian.
double load_batch(const std::vector<GridF>& fields, size_t first, int count,
                  const Preprocessing& preprocessing, int n, Tensor<float>& x) {
  x.resize(count, n, 1);
  double log_jacobian = 0.0;
  for (int f = 0; f < count; ++f) {
    const GridF& field = fields[first + size_t(f)];
    require_grid(field, n);
    std::copy(field.values.begin(), field.values.end(), x.field(f));
    log_jacobian += preprocessing.apply(x.field(f), field.size());
  }
  return log_jacobian;
}

// Mean NLL over delta (bits/voxel) of the fields; with minus_inner, also -<g, y_b> summed over
// the fields (g = d log p / dy at the calibrated flow's input: the same inner product as at the
// calibration's output, the map being symmetric).
double mean_nll(MultiScaleFlow<float>& flow, const Preprocessing& preprocessing,
                const std::vector<GridF>& fields, std::vector<double>* minus_inner) {
  const int n = flow.spec().grid;
  if (minus_inner) minus_inner->assign(flow.calibration()->log_scale.size(), 0.0);
  double logp_sum = 0.0;
  Tensor<float> x, dx;
  for (size_t first = 0; first < fields.size(); first += kBatch) {
    const int count = int(std::min(fields.size() - first, size_t(kBatch)));
    logp_sum += load_batch(fields, first, count, preprocessing, n, x);
    const std::vector<double> logp =
        minus_inner ? flow.log_prob_input_grad(x, dx) : flow.log_prob(x);
    for (double l : logp) logp_sum += l;
    if (minus_inner) {
      const std::vector<double> inner = flow.calibration()->bin_inner_products(x, dx);
      for (size_t b = 0; b < inner.size(); ++b) (*minus_inner)[b] -= inner[b];
    }
  }
  const double nll = nll_bits_per_voxel(logp_sum / double(fields.size()), size_t(n) * n * n);
  if (!std::isfinite(nll)) throw Error("calibrate", "the log density of the fields is not finite");
  return nll;
}

std::vector<CalibrationPass> fit_likelihood(
    MultiScaleFlow<float>& flow, const Preprocessing& preprocessing,
    const std::vector<GridF>& fields, int iterations, double k_max_over_nyquist,
    const std::function<void(int, const CalibrationPass&)>& progress) {
  SpectralCalibration<float>& calibration = *flow.calibration();
  const int n = flow.spec().grid;
  const std::vector<double> modes = calibration.bin_mode_counts(n);
  const size_t B = modes.size();
  std::vector<float> best = calibration.log_scale.value;
  std::vector<double> step(B, 0.0), minus_inner;
  double best_nll = std::numeric_limits<double>::infinity(), multiplier = 1.0;
  std::vector<CalibrationPass> passes;
  for (int it = 0; it <= iterations; ++it) {
    CalibrationPass pass;
    pass.nll_bits_per_voxel = mean_nll(flow, preprocessing, fields, &minus_inner);
    for (size_t b = 0; b < B; ++b)
      pass.bin_ratio.push_back(modes[b] > 0 ? minus_inner[b] / (modes[b] * double(fields.size()))
                                            : 1.0);
    if (pass.nll_bits_per_voxel <= best_nll) {
      best = calibration.log_scale.value;
      best_nll = pass.nll_bits_per_voxel;
      // The Gaussian step of every fitted bin.
      for (size_t b = 0; b < B; ++b)
        step[b] = bin_fitted(b, calibration.bins_per_nyquist(), k_max_over_nyquist) &&
                          pass.bin_ratio[b] > 0
                      ? -0.5 * std::log(pass.bin_ratio[b])
                      : 0.0;
    } else {
      pass.rejected = true;  // back to the best point, half the step
      multiplier *= 0.5;
    }
    if (it < iterations) {
      for (size_t b = 0; b < B; ++b) {
        calibration.log_scale.value[b] = best[b] + float(multiplier * step[b]);
        pass.largest_step = std::max(pass.largest_step, std::abs(multiplier * step[b]));
      }
    }
    passes.push_back(pass);
    if (progress) progress(it, pass);
  }
  calibration.log_scale.value = best;
  return passes;
}

std::vector<CalibrationPass> fit_power(
    MultiScaleFlow<float>& flow, const Preprocessing& preprocessing,
    const std::vector<GridF>& fields, const CalibrationOptions& options,
    const std::function<void(int, const CalibrationPass&)>& progress) {
  SpectralCalibration<float>& calibration = *flow.calibration();
  const int n = flow.spec().grid;
  const size_t B = calibration.log_scale.size();
  // P(k) per bin, summed: of the fields and of the samples; of y (one update is exact: y is
  // linear in the scales) or of delta. delta's P(k) is set by the few densest voxels: scaling y
  // alone to match it diverged on the built-in data (docs/train.md), so the samples' values are
  // first put onto the fields' one-point distribution by rank, as method marginal then does for
  // every sample; what is left converges in a few updates.
  auto bin_power = [&](const Tensor<float>& y) { return calibration.bin_inner_products(y, y); };
  const Preprocessing matched = options.match_delta ? Preprocessing{} : preprocessing;  // delta
  std::vector<double> target(B, 0.0);
  Tensor<float> x;
  for (size_t first = 0; first < fields.size(); first += kBatch) {
    const int count = int(std::min(fields.size() - first, size_t(kBatch)));
    load_batch(fields, first, count, matched, n, x);
    const std::vector<double> p = bin_power(x);
    for (size_t b = 0; b < B; ++b) target[b] += p[b] / double(fields.size());
  }
  const double total = std::accumulate(target.begin(), target.end(), 0.0);
  const std::vector<double> field_values =
      options.match_delta ? sorted_values(fields, matched, n) : std::vector<double>();
  // Each sample value takes the field value of its rank.
  std::vector<size_t> order;
  auto rank_mapped = [&](Tensor<float>& y) {
    order.resize(y.data.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return y.data[a] < y.data[b]; });
    const double last = double(field_values.size() - 1), scale = last / double(order.size() - 1);
    for (size_t r = 0; r < order.size(); ++r)
      y.data[order[r]] = float(field_values[size_t(std::llround(double(r) * scale))]);
  };
  // Samples at temperature 1 drawn once, at the scales t0 of now; at scales t they are
  // F^-1(exp(t0 - t) F y0) (the rest of the flow is fixed), so each update costs FFTs only.
  // Sample i uses the seed `fieldflow sample` gives it.
  const std::vector<float> t0 = calibration.log_scale.value;
  const Tensor<float> y0 =
      draw_samples(flow, preprocessing, options.samples, options.seed, options.mean_tolerance);
  SpectralCalibration<float> change("change", calibration.bins_per_nyquist());
  std::vector<CalibrationPass> passes;
  Tensor<float> y;
  std::vector<float> logdet(size_t(options.samples), 0.f);
  for (int it = 0; it <= options.iterations; ++it) {
    for (size_t b = 0; b < B; ++b)
      change.log_scale.value[b] = t0[b] - calibration.log_scale.value[b];
    change.forward(y0, y, logdet.data());
    if (options.match_delta) {
      rank_mapped(y);
      if (options.zero_mean)
        for (int i = 0; i < options.samples; ++i)
          set_mean_delta_zero(std::span<float>(y.field(i), y.field_size()), preprocessing.eps);
    }
    const std::vector<double> p = bin_power(y);
    CalibrationPass pass;
    // The NLL costs a pass of the flow over the fields: first and last pass only.
    pass.nll_bits_per_voxel = it == 0 || it == options.iterations
                                  ? mean_nll(flow, preprocessing, fields, nullptr)
                                  : std::numeric_limits<double>::quiet_NaN();
    for (size_t b = 0; b < B; ++b)
      // NaN where the fields have no power to speak of: k = 0 of delta, whose mean is 0.
      pass.bin_ratio.push_back(target[b] > 1e-9 * total ? p[b] / double(options.samples) / target[b]
                                                        : std::numeric_limits<double>::quiet_NaN());
    if (it < options.iterations)
      for (size_t b = 0; b < B; ++b) {
        if (!bin_fitted(b, calibration.bins_per_nyquist(), options.k_max_over_nyquist)) continue;
        if (!(target[b] > 0) || !(pass.bin_ratio[b] > 0) || !std::isfinite(pass.bin_ratio[b])) {
          ++pass.bins_kept;
          continue;
        }
        const double step = 0.5 * std::log(pass.bin_ratio[b]);
        calibration.log_scale.value[b] += float(step);
        pass.largest_step = std::max(pass.largest_step, std::abs(step));
      }
    passes.push_back(pass);
    if (progress) progress(it, pass);
  }
  return passes;
}

// The correlated base refitted with every other parameter frozen: the latents do not depend on
// the base, so the maximum-likelihood P(k), constant per bin, is the latents' mean P(k) in it,
// reached in one update (tabulated at the bins' mean k, as the trainer's measured table).
std::vector<CalibrationPass> fit_base(
    MultiScaleFlow<float>& flow, const Preprocessing& preprocessing,
    const std::vector<GridF>& fields, int iterations,
    const std::function<void(int, const CalibrationPass&)>& progress) {
  PowerSpectrum binning;
  std::vector<double> rows;
  for (const GridF& field : fields) {
    const LatentPower p = latent_power_spectrum(flow, preprocessing, field);
    if (rows.empty()) binning = p.pk;  // the same bins for every field
    rows.insert(rows.end(), p.pk.pk.begin(), p.pk.pk.end());
    rows.push_back(p.pk0);
  }
  const LatentPower latent = mean_latent_power(binning, rows);
  std::vector<CalibrationPass> passes;
  const int updates = std::min(iterations, 1);
  for (int it = 0; it <= updates; ++it) {
    CalibrationPass pass;
    pass.nll_bits_per_voxel = mean_nll(flow, preprocessing, fields, nullptr);
    if (it < updates) {
      pass.bin_ratio = set_base_to_latent_power(flow, latent, fields.size());
      for (double r : pass.bin_ratio) {
        if (r > 0 && std::isfinite(r))
          pass.largest_step = std::max(pass.largest_step, std::abs(std::log(r)));
        else
          ++pass.bins_kept;
      }
    } else {
      const FlowSpec& spec = flow.spec();
      for (size_t b = 0; b < latent.pk.k.size(); ++b)
        pass.bin_ratio.push_back(latent.pk.pk[b] /
                                 tabulated_power(spec.base_k_hmpc, spec.base_pk, latent.pk.k[b]));
    }
    passes.push_back(pass);
    if (progress) progress(it, pass);
  }
  return passes;
}

}  // namespace

LatentPower latent_power_spectrum(MultiScaleFlow<float>& flow, const Preprocessing& preprocessing,
                                  const GridF& field) {
  const int n = flow.spec().grid;
  if (field.n != n)
    throw Error("latent P(k)", "fields must be grids of " + std::to_string(n) + "^3");
  Tensor<float> x(1, n, 1), u;
  std::copy(field.values.begin(), field.values.end(), x.field(0));
  preprocessing.apply(x.field(0), field.size());
  std::vector<float> logdet;
  flow.forward(x, logdet);
  flow.latents_to_grid(flow.latents(), u);
  GridF g(n, flow.spec().base_box_size_mpch);
  std::copy(u.field(0), u.field(0) + g.values.size(), g.values.begin());
  PowerSpectrumOptions options;
  options.k_max_over_nyquist = std::sqrt(3.0);
  const double mean = g.mean();
  return {measure_power_spectrum(g, options), std::pow(g.box_size_mpch, 3) * mean * mean};
}

LatentPower mean_latent_power(const PowerSpectrum& binning, const std::vector<double>& rows) {
  const size_t bins = binning.k.size(), fields = rows.size() / (bins + 1);
  LatentPower mean{binning};
  std::fill(mean.pk.pk.begin(), mean.pk.pk.end(), 0.0);
  for (size_t i = 0; i < fields; ++i) {
    const double* row = rows.data() + i * (bins + 1);
    for (size_t b = 0; b < bins; ++b) mean.pk.pk[b] += row[b] / double(fields);
    mean.pk0 += row[bins] / double(fields);
  }
  return mean;
}

std::vector<double> set_base_to_latent_power(MultiScaleFlow<float>& flow, const LatentPower& latent,
                                             size_t fields) {
  const FlowSpec& spec = flow.spec();
  const PowerSpectrum& p = latent.pk;
  std::vector<double> pk(p.k.size()), ratio(p.k.size());
  for (size_t b = 0; b < p.k.size(); ++b) {
    const double model = tabulated_power(spec.base_k_hmpc, spec.base_pk, p.k[b]);
    ratio[b] = p.pk[b] / model;
    pk[b] = p.pk[b] > 0 && std::isfinite(p.pk[b]) ? p.pk[b] : model;
  }
  const double pk0 = fields > 1 && std::isfinite(latent.pk0) && !pk.empty()
                         ? floored_pk0(latent.pk0, pk.front())
                         : spec.base_pk0;
  flow.set_base_power(p.k, pk, pk0);
  return ratio;
}

namespace {

// The standard normal's quantile function, by bisection of its distribution function.
double normal_score(double p) {
  double lo = -40, hi = 40;
  for (int it = 0; it < 200 && hi - lo > 1e-13; ++it) {
    const double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// The quantile at probability p of sorted values, interpolated between order statistics.
double quantile_of_sorted(const std::vector<double>& sorted, double p) {
  const double h = p * double(sorted.size() - 1);
  const size_t i = std::min(size_t(h), sorted.size() - 1);
  if (i + 1 >= sorted.size()) return sorted.back();
  return sorted[i] + (h - double(i)) * (sorted[i + 1] - sorted[i]);
}

}  // namespace

MarginalFit fit_marginal_map(MultiScaleFlow<float>& flow, const Preprocessing& preprocessing,
                             const std::vector<GridF>& fields, int knots, int samples,
                             uint64_t seed, double mean_tolerance) {
  if (fields.empty()) throw Error("calibrate", "no fields");
  if (flow.spec().channels != 1) throw Error("calibrate", "the flow must be single-channel");
  if (knots < 2) throw Error("calibrate", "the marginal map needs at least 2 knots");
  if (samples < 1) throw Error("calibrate", "marginal needs at least one sample");
  const int n = flow.spec().grid;
  Preprocessing standard = preprocessing;
  standard.marginal = MarginalMap();
  const std::vector<double> u = sorted_values(fields, standard, n);  // standardised values
  const Tensor<float> drawn = draw_samples(flow, preprocessing, samples, seed, mean_tolerance);
  std::vector<double> y(drawn.data.begin(), drawn.data.end());
  for (double v : y)
    if (!std::isfinite(v)) throw Error("calibrate", "a flow sample is not finite");
  std::sort(y.begin(), y.end());
  const double fewer = double(std::min(u.size(), y.size()));
  const double z_max = std::min(5.0, -normal_score(10.0 / fewer));
  if (!(z_max > 0))
    throw Error("calibrate", "too few values for a marginal map (" + std::to_string(u.size()) +
                                 " field voxels, " + std::to_string(y.size()) + " sample voxels)");
  const double u_tol = 1e-9 * (u.back() - u.front()), y_tol = 1e-9 * (y.back() - y.front());
  std::vector<double> t_knots, y_knots;
  MarginalFit fit;
  for (int j = 0; j < knots; ++j) {
    const double z = -z_max + 2 * z_max * j / double(knots - 1);
    const double p = 0.5 * std::erfc(-z / std::sqrt(2.0));
    const double tu = quantile_of_sorted(u, p), ty = quantile_of_sorted(y, p);
    if (!t_knots.empty() && !(tu > t_knots.back() + u_tol && ty > y_knots.back() + y_tol))
      continue;  // ties (e.g. the empty cells' floor): one knot
    t_knots.push_back(tu);
    y_knots.push_back(ty);
    fit.score.push_back(z);
  }
  if (t_knots.size() < 2)
    throw Error("calibrate", "the fields' or the samples' values are all equal: no marginal map");
  fit.preprocessing = preprocessing;
  fit.preprocessing.marginal = MarginalMap(std::move(t_knots), std::move(y_knots));
  fit.nll_before = mean_nll(flow, preprocessing, fields, nullptr);
  fit.nll_after = mean_nll(flow, fit.preprocessing, fields, nullptr);
  return fit;
}

void carry_training_range(const Preprocessing& from, const Preprocessing& to, TrainingData& data) {
  if (!std::isfinite(data.y_min) || !std::isfinite(data.y_max)) return;
  data.y_min = to.marginal.value(from.marginal.inverse(data.y_min));
  data.y_max = to.marginal.value(from.marginal.inverse(data.y_max));
}

CalibrationMethod parse_calibration_method(const std::string& text) {
  if (text == "likelihood") return CalibrationMethod::likelihood;
  if (text == "power") return CalibrationMethod::power;
  if (text == "base") return CalibrationMethod::base;
  if (text == "marginal") return CalibrationMethod::marginal;
  throw Error("calibrate.method", "expected likelihood, power, base or marginal, got " + text);
}

std::vector<CalibrationPass> fit_spectral_calibration(
    MultiScaleFlow<float>& flow, const Preprocessing& preprocessing,
    const std::vector<GridF>& fields, const CalibrationOptions& options,
    const std::function<void(int iteration, const CalibrationPass&)>& progress) {
  if (fields.empty()) throw Error("calibrate", "no fields");
  if (flow.spec().channels != 1) throw Error("calibrate", "the flow must be single-channel");
  if (options.method == CalibrationMethod::marginal)
    throw Error("calibrate", "method marginal fits the preprocessing (fit_marginal_map)");
  if (options.method == CalibrationMethod::base) {
    if (flow.spec().base != BaseKind::correlated_gaussian)
      throw Error("calibrate", "method base needs a flow with a correlated_gaussian base");
    return fit_base(flow, preprocessing, fields, options.iterations, progress);
  }
  if (!flow.calibration()) throw Error("calibrate", "the flow has no spectral calibration");
  if (options.method == CalibrationMethod::likelihood)
    return fit_likelihood(flow, preprocessing, fields, options.iterations,
                          options.k_max_over_nyquist, progress);
  if (options.samples < 1) throw Error("calibrate", "power needs at least one sample");
  return fit_power(flow, preprocessing, fields, options, progress);
}

}  // namespace ff
