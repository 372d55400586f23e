// fieldflow calibrate CONFIG.yaml [--set key=value ...]: a trained flow with a spectral
// calibration in front fitted on the training fields, with its correlated base refitted to their
// latents (method base), or with the marginal map of its preprocessing fitted (method marginal)
// (train module, docs/train.md "Calibration after training").
//   calibrate: {checkpoint, fields, out, bins, method, iterations, samples, seed, match,
//               k_max_hmpc, knots}
#include "fieldflow/train/calibrate.hpp"

#include <cmath>
#include <cstdio>

#include "commands.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/flow/fields.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/io/grid_file.hpp"

namespace ff::cli {

namespace {

// The checkpoint's optimizer state on `flow`'s parameters, or null when it has none.
std::unique_ptr<Adam<float>> restored_optimizer(FlowCheckpoint& loaded,
                                                MultiScaleFlow<float>& flow) {
  if (!loaded.has_optimizer) return nullptr;
  auto adam = std::make_unique<Adam<float>>(flow.params(), loaded.adam_options);
  loaded.restore(*adam);
  return adam;
}

void run_calibrate(const ConfigArgs& args) {
  Config config = args.load();
  const CalibrateSettings s = read_calibrate_settings(config);
  std::vector<std::string> inputs = s.fields;
  inputs.push_back(s.checkpoint);
  inputs.push_back(args.path);
  refuse_output_that_is_input(s.out, inputs);
  FlowCheckpoint loaded = load_flow_checkpoint(s.checkpoint);
  loaded.require_initialized();
  const int n = loaded.flow->spec().grid;
  std::vector<GridF> fields;
  for (const std::string& path : s.fields) {
    const GridFileInfo info = inspect_grid_for_flow(path, loaded);
    for (int i = 0; i < info.count; ++i) fields.push_back(read_grid_as<float>(path, i));
  }
  const int bins = s.bins > 0 ? s.bins : n / 2;
  CalibrationOptions options;
  options.method = parse_calibration_method(s.method);
  if (options.method == CalibrationMethod::marginal) {
    std::printf("calibrate (marginal): %zu field(s), %d sample(s), %d knots\n", fields.size(),
                s.samples, s.knots);
    std::fflush(stdout);
    MarginalFit fit;
    about_input(s.checkpoint, {"calibrate", "preprocessing", "flow"}, [&] {
      fit = fit_marginal_map(*loaded.flow, loaded.preprocessing, fields, s.knots, s.samples, s.seed,
                             s.mean_tolerance);
    });
    const MarginalMap& map = fit.preprocessing.marginal;
    std::printf("  %zu knots kept, normal scores %.3f to %.3f; NLL %.6f -> %.6f bits/voxel\n",
                map.t_knots().size(), fit.score.front(), fit.score.back(), fit.nll_before,
                fit.nll_after);
    std::printf("  the map y = h(u) at the fields' quantiles (normal score: u, y):");
    for (size_t j = 0; j < fit.score.size(); j += std::max<size_t>(1, fit.score.size() / 8))
      std::printf(" %.2f: %.3f, %.3f;", fit.score[j], map.t_knots()[j], map.y_knots()[j]);
    std::printf("\n");
    carry_training_range(loaded.preprocessing, fit.preprocessing, loaded.data);
    // The parameters are unchanged: a trainer's checkpoint keeps its optimizer state, as base.
    const std::unique_ptr<Adam<float>> adam = restored_optimizer(loaded, *loaded.flow);
    save_flow_checkpoint(s.out, *loaded.flow, fit.preprocessing, loaded.data, adam.get(),
                         &loaded.extras, calibrate_settings_yaml(s));
    std::printf("wrote %s\n", printable(s.out).c_str());
    return;
  }
  if (s.k_max_hmpc > 0) {
    const double nyquist_hmpc = M_PI * n / loaded.data.box_size_mpch;
    options.k_max_over_nyquist = s.k_max_hmpc / nyquist_hmpc;
  }
  std::unique_ptr<MultiScaleFlow<float>> flow;
  if (options.method == CalibrationMethod::base)
    flow = std::move(loaded.flow);  // the base is refitted; a calibration it has stays
  else
    about_input(s.checkpoint, {"calibrate", "flow"},
                [&] { flow = with_spectral_calibration(*loaded.flow, bins); });
  options.iterations = s.iterations;
  options.match_delta = s.match == "delta";
  options.zero_mean = s.zero_mean;
  options.mean_tolerance = s.mean_tolerance;
  options.samples = s.samples;
  options.seed = s.seed;
  if (options.method == CalibrationMethod::base)
    std::printf("calibrate (base): %zu field(s), the base's P(k) refitted to their latents\n",
                fields.size());
  else
    std::printf("calibrate (%s): %zu field(s), %d bins per k_N (%zu scales), %d iteration(s)\n",
                s.method.c_str(), fields.size(), bins, flow->calibration()->log_scale.size(),
                s.iterations);
  std::fflush(stdout);
  const char* ratio = options.method == CalibrationMethod::power
                          ? (options.match_delta ? "samples' P(k) of delta (ranked) / fields'"
                                                 : "samples' P(k) of y / fields'")
                      : options.method == CalibrationMethod::base ? "latents' P(k) / the base's"
                                                                  : "-<g, y_b> / n_b";
  about_input(s.checkpoint, {"calibrate", "preprocessing", "flow"}, [&] {
    fit_spectral_calibration(
        *flow, loaded.preprocessing, fields, options, [&](int it, const CalibrationPass& p) {
          std::printf(
              "  pass %d: NLL %.6f bits/voxel%s; largest log-scale step %.3g, %d bin(s) "
              "kept\n    %s per bin:",
              it, p.nll_bits_per_voxel, p.rejected ? " (rose: back, half step)" : "",
              p.largest_step, p.bins_kept, ratio);
          for (double r : p.bin_ratio) std::printf(" %.3f", r);
          std::printf("\n");
          std::fflush(stdout);
        });
  });
  if (options.method != CalibrationMethod::base) {
    std::printf("  scales:");
    for (float v : flow->calibration()->log_scale.value) std::printf(" %.4f", std::exp(double(v)));
    std::printf("\n");
  }
  // base leaves the parameters as they are, so a trainer's checkpoint keeps its optimizer state
  // (and its extras): training can continue from the refitted base (docs/train.md).
  std::unique_ptr<Adam<float>> adam;
  if (options.method == CalibrationMethod::base) adam = restored_optimizer(loaded, *flow);
  save_flow_checkpoint(s.out, *flow, loaded.preprocessing, loaded.data, adam.get(), &loaded.extras,
                       calibrate_settings_yaml(s));
  std::printf("wrote %s\n", printable(s.out).c_str());
}

}  // namespace

void add_calibrate_command(CLI::App& app) {
  auto args = std::make_shared<ConfigArgs>();
  CLI::App* sub = app.add_subcommand(
      "calibrate",
      "Fit a spectral calibration (one scale per |k| bin), the correlated base's P(k) or a "
      "marginal map of the preprocessing to a trained flow on its training fields; writes a new "
      "checkpoint");
  add_config_args(sub, *args);
  sub->callback([args] { run_about(args->path, [&] { run_calibrate(*args); }); });
}

}  // namespace ff::cli
