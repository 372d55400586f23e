// The denoise pipeline. See include/fieldflow/recon/denoise.hpp and docs/denoise.md.
#include "fieldflow/recon/denoise.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/flow/base.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/io/csv.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/io/hdf5.hpp"
#include "fieldflow/io/json.hpp"
#include "fieldflow/io/provenance.hpp"
#include "fieldflow/recon/posterior_output.hpp"
#include "fieldflow/recon/tiles.hpp"
#include "fieldflow/recon/wiener.hpp"
#include "fieldflow/sim/cosmology.hpp"
#include "fieldflow/sim/linear_power.hpp"
#include "fieldflow/stats/power_spectrum.hpp"

namespace ff {

namespace {

SettingsTable<MaskSettings> mask_table() {
  using M = MaskSettings;
  return SettingsTable<M>("mask", "The mask: 1 observed, 0 masked (docs/denoise.md).")
      .choice("kind", &M::kind, "cubes", {"cubes", "slab", "sphere", "file", "none"},
              "how the masked region is drawn")
      .number("fraction", &M::fraction, 0.35, Range::between(0, 1).open_above(),
              "masked fraction of the volume (cubes, slab, sphere)")
      .integer("size", &M::size, 4, Range::at_least(1), "side of the masked cubes, voxels")
      .integer("seed", &M::seed, 2, Range::non_negative(), "seed of the mask's positions")
      .text("file", &M::file, "",
            "kind file: HDF5 /mask (or a grid's /delta), 1 observed, 0 masked")
      .check([](const M& m, const Reject& reject) {
        if (m.kind == "file" && m.file.empty()) reject("file", "kind file needs a file");
      });
}

SettingsTable<MapSettings> map_table() {
  using M = MapSettings;
  return SettingsTable<M>("map", "The flow-prior MAP of p(y|d) by L-BFGS.")
      .choice("init", &M::init, "wiener", {"wiener", "data", "zero", "gaussian"},
              "the L-BFGS start; gaussian: the MAP under the correlated base alone (from the WF)")
      .choice("prior", &M::prior, "flow", {"flow", "gaussian"},
              "flow; gaussian: the checkpoint's correlated base alone (a baseline)")
      .flag("whiten", &M::whiten, true,
            "optimise in u, y = S_y^(1/2) u (S_y the correlated base's; same maximum)")
      .choice("precondition", &M::precondition, MapSettings{}.precondition, {"prior", "posterior"},
              "with whiten: prior (y = S_y^(1/2) u) or posterior (the Gaussian approximation of "
              "p(y|d) at the start, Fourier-diagonal and rescaled per voxel)")
      .number("prior_weight", &M::prior_weight, MapSettings{}.prior_weight, Range::positive(),
              "beta: maximise p(d|y) p_prior(y)^beta; 1: the posterior p(y|d)")
      .integer("max_iterations", &M::max_iterations, 500, Range::at_least(1),
               "L-BFGS iterations at most")
      .number("tolerance", &M::tolerance, 1e-8, Range::non_negative(),
              "stop when one iteration changes f by <= tolerance max(1, |f|)")
      .number("gradient_tolerance", &M::gradient_tolerance, 1e-4, Range::non_negative(),
              "stop when the gradient's rms per voxel is <= this")
      .integer("memory", &M::memory, 8, Range::at_least(1), "L-BFGS corrections kept")
      .number("max_step_y", &M::max_step_y, MapSettings{}.max_step_y, Range::non_negative(),
              "no voxel's y moves more than this in one L-BFGS iteration; 0: no bound")
      .choice("range", &M::range, MapSettings{}.range, {"training", "fixed"},
              "the prior's range in y: training (the checkpoint's training fields' range "
              "+- range_margin_y) or fixed (y_min..y_max, also used when the checkpoint records "
              "no range); outside it a steep wall, and a result beyond it is refused")
      .number("range_margin_y", &M::range_margin_y, MapSettings{}.range_margin_y,
              Range::non_negative(), "range training: the margin added on each side")
      .number("y_min", &M::y_min, MapSettings{}.y_min, Range::any(),
              "the prior's fixed range in y, low end")
      .number("y_max", &M::y_max, MapSettings{}.y_max, Range::any(),
              "the prior's fixed range in y, high end")
      .choice("runaway", &M::runaway, MapSettings{}.runaway, {"warn", "refuse"},
              "masked voxels of the MAP beyond the training fields' recorded range of y (no "
              "margin; the prior alone acts there): warn (a warning line, counted in the "
              "outputs) or refuse (one error line, no output)")
      .check([](const M& m, const Reject& reject) {
        if (!(m.y_min < m.y_max)) reject("y_max", "must be above y_min");
      });
}

}  // namespace

const SettingsTable<DenoiseSettings>& denoise_settings_table() {
  using S = DenoiseSettings;
  static const auto table =
      SettingsTable<S>("denoise", "`fieldflow denoise`: WF, flow-prior MAP, combined, posterior.")
          .one_shot()
          .text("checkpoint", &S::checkpoint, required, "flow checkpoint (from fieldflow train)")
          .section("truth",
                   SettingsTable<S>("truth", "A known field: the data are drawn from it.")
                       .text("grid", &S::truth_grid, "", "grid file (or stack) of the truth")
                       .integer("index", &S::truth_index, 0, Range::non_negative(),
                                "member of the stack"))
          .section("data", SettingsTable<S>("data", "Instead of truth: an observation.")
                               .text("grid", &S::data_grid, "", "grid file of the data")
                               .text("mask", &S::data_mask, "",
                                     "its mask file (1 observed, 0 masked); none: all observed")
                               .number("noise_sigma", &S::data_noise_sigma, 1.0, Range::positive(),
                                       "its white noise sigma, units of delta"))
          .section(
              "noise",
              SettingsTable<S>("noise", "The noise drawn onto the truth.")
                  .number("sigma", &S::noise_sigma, 1.0, Range::positive(),
                          "white noise sigma, units of delta")
                  .integer("seed", &S::noise_seed, 1, Range::non_negative(), "seed of the noise")
                  .text("sigma_map", &S::noise_sigma_map, "",
                        "per-voxel sigma (HDF5 /noise_sigma or a grid's /delta), replaces "
                        "sigma"))
          .section("mask", &S::mask, mask_table())
          .choice("prior_power", &S::prior_power, "checkpoint", {"checkpoint", "file", "linear"},
                  "the P(k) of delta that builds the Wiener filter's S")
          .text("prior_power_file", &S::prior_power_file, "",
                "prior_power file: two columns k, P (or a fieldflow pk CSV)")
          .integer("prior_samples", &S::prior_samples, 32, Range::at_least(1),
                   "flow samples for the checkpoint's P(k) of delta when it stores none")
          .integer("prior_seed", &S::prior_seed, 11, Range::non_negative(),
                   "seed of those flow samples")
          .section("wiener", SettingsTable<S>("wiener", "The Wiener filter's PCG.")
                                 .number("tolerance", &S::wiener_tolerance, 1e-6, Range::positive(),
                                         "relative residual to reach")
                                 .integer("max_iterations", &S::wiener_max_iterations, 2000,
                                          Range::at_least(1), "PCG iterations at most"))
          .section("map", &S::map, map_table())
          .choice("large_box", &S::large_box, "whole", {"whole", "tiles"},
                  "a box larger than the flow's grid: the flow on the whole periodic box, or "
                  "overlapping tiles of the flow's grid stitched (WF modes below the tile's "
                  "fundamental)")
          .section("tiles", SettingsTable<S>("tiles", "large_box: tiles.")
                                .integer("overlap", &S::tiles_overlap, 8, Range::non_negative(),
                                         "least overlap of neighbouring tiles, voxels"))
          .section("combined",
                   SettingsTable<S>("combined", "WF modes below k_split, MAP modes above.")
                       .number("k_split_hmpc", &S::k_split_hmpc, 0.0, Range::non_negative(),
                               "the split wavenumber, h/Mpc; 0: chosen on validation fields")
                       .section("validation",
                                SettingsTable<S>("validation", "Fields the split is chosen on.")
                                    .text("grid", &S::validation_grid, "",
                                          "grid file of validation fields (never the test set)")
                                    .integers("indices", &S::validation_indices, {0, 1, 2, 3},
                                              Range::non_negative(), "its members used"))
                       .check([](const S& s, const Reject& reject) {
                         if (s.k_split_hmpc > 0 && !s.validation_grid.empty())
                           reject("validation", "give k_split_hmpc or validation, not both");
                         if (s.k_split_hmpc == 0 && s.validation_grid.empty())
                           reject("k_split_hmpc",
                                  "give a positive split wavenumber or validation fields to choose "
                                  "it on");
                       }))
          .section("posterior", &S::posterior, posterior_settings_table())
          .text("out", &S::out, required, "the HDF5 output; the CSV and JSON go beside it")
          .flag("report", &S::report, true,
                "the reconstruction report into <stem>_report/ (needs a truth)")
          .check([](const S& s, const Reject& reject) {
            if (!s.truth_grid.empty() && !s.data_grid.empty())
              reject("data", "give truth or data, not both");
            if (s.truth_grid.empty() && s.data_grid.empty())
              reject("truth.grid", "required key is missing (or give data.grid)");
            if (s.prior_power == "file" && s.prior_power_file.empty())
              reject("prior_power_file", "prior_power: file needs a two-column (k, P) file");
          });
  return table;
}

DenoiseSettings read_denoise_settings(ConfigNode node) {
  return denoise_settings_table().read(node);
}

std::string denoise_settings_yaml(const DenoiseSettings& s) {
  return denoise_settings_table().dump_text(s, "denoise");
}

namespace {

using clock_type = std::chrono::steady_clock;
double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

// Squared integer norm a^2 + b^2 + c^2 of half-complex mode m.
inline long mode_norm2(size_t m, int n) {
  const int nh = n / 2 + 1;
  const int c = int(m % nh), b = int((m / nh) % n), a = int(m / (size_t(nh) * n));
  const long ka = fft_wavenumber(a, n), kb = fft_wavenumber(b, n);
  return ka * ka + kb * kb + long(c) * c;
}

struct PriorTable {
  std::vector<double> k_hmpc, pk;
  std::string source;
};

// The flow rebuilt for an n^3 grid with the checkpoint's weights: the couplings are periodic
// convolutions, so the same weights define a density on any grid the squeezes divide.
std::unique_ptr<MultiScaleFlow<float>> flow_for_grid(MultiScaleFlow<float>& trained, int n,
                                                     double box_size_mpch,
                                                     const std::string& checkpoint) {
  FlowSpec spec = trained.spec();
  if (spec.grid == n) return nullptr;
  const int factor = 1 << (int(spec.levels.size()) - 1);
  if (n % factor != 0)
    throw Error(checkpoint, "the flow's " + std::to_string(spec.levels.size()) +
                                " levels need a grid divisible by " + std::to_string(factor) +
                                ", the observation has " + std::to_string(n));
  spec.grid = n;
  if (spec.base == BaseKind::correlated_gaussian) spec.base_box_size_mpch = box_size_mpch;
  auto flow = std::make_unique<MultiScaleFlow<float>>(spec);
  flow->copy_state_from(trained);
  return flow;
}

// P(k) of delta for the Wiener filter's S. The training fields' P(k) of delta when the trainer
// stored it (FlowCheckpoint::data.delta_pk). Else: the checkpoint's base P(k) is that of the
// preprocessed field y, not of delta: for identity preprocessing over a correlated base,
// P_delta = std^2 P_y; otherwise (log1p) the spectrum of flow samples mapped back to delta, the
// flow's own two-point function of delta (no test data touched).
PriorTable prior_power(const DenoiseSettings& s, FlowCheckpoint& ckpt, double box_size_mpch,
                       double redshift, double train_box_mpch, std::FILE* log) {
  PriorTable t;
  if (s.prior_power == "file") {
    const std::string& path = s.prior_power_file;
    if (path.size() > 4 && path.substr(path.size() - 4) == ".csv") {
      auto cols = read_csv_columns(path, {"k", "pk"});
      t.k_hmpc = cols[0];
      t.pk = cols[1];
    } else {
      PowerTable p = read_power_table(path);
      t.k_hmpc = p.k_hmpc;
      t.pk = p.p_mpch3;
    }
    t.source = "file " + path;
    return t;
  }
  if (s.prior_power == "linear") {
    const CosmologyParams params;
    const LinearPower linear(params, TransferKind::eh98);
    const Cosmology cosmo(params);
    const double growth = cosmo.growth(1.0 / (1.0 + redshift));
    const double kf = 2 * M_PI / box_size_mpch;
    for (double k = kf / 4; k < 4 * M_PI * 1024 / box_size_mpch; k *= 1.05) {
      t.k_hmpc.push_back(k);
      t.pk.push_back(linear(k) * growth * growth);
    }
    t.source = "linear EH98 (Quijote cosmology) at z = " + format_number(redshift);
    return t;
  }
  if (!ckpt.data.delta_pk.empty()) {
    t.k_hmpc = ckpt.data.delta_pk_k_hmpc;
    t.pk = ckpt.data.delta_pk;
    t.source = "checkpoint data.delta_pk";
    return t;
  }
  MultiScaleFlow<float>& flow = *ckpt.flow;
  const FlowSpec& spec = flow.spec();
  const Preprocessing& pre = ckpt.preprocessing;
  if (pre.transform == PreprocessTransform::identity && pre.marginal.empty() &&
      spec.base == BaseKind::correlated_gaussian) {
    t.k_hmpc = spec.base_k_hmpc;
    t.pk = spec.base_pk;
    for (double& p : t.pk) p *= pre.std * pre.std;
    t.source = "checkpoint base P_y(k) x std^2 (identity preprocessing)";
    return t;
  }
  // Flow samples at temperature 1, mapped back to delta.
  const double box = train_box_mpch;
  const int n = spec.grid;
  Tensor<float> x;
  std::vector<double> sum_pk;
  int used = 0;
  // Every mode of the grid, corners included, as the trainer's tables: S is needed for all of them.
  PowerSpectrumOptions every_mode;
  every_mode.k_max_over_nyquist = std::sqrt(3.0);
  const auto start = clock_type::now();
  for (int i = 0; i < s.prior_samples; ++i) {
    flow.sample(1, s.prior_seed * 1000003 + uint64_t(i), 1.0, x);
    GridF g(n, box);
    std::copy(x.data.begin(), x.data.begin() + long(g.size()), g.values.begin());
    pre.invert(g.values.data(), g.size());
    bool finite = true;
    for (float v : g.values) finite = finite && std::isfinite(v) && std::fabs(v) < 1e6f;
    if (!finite) continue;
    const PowerSpectrum ps = measure_power_spectrum(g, every_mode);
    if (sum_pk.empty()) {
      t.k_hmpc = ps.k;
      sum_pk.assign(ps.pk.size(), 0.0);
    }
    for (size_t b = 0; b < ps.pk.size() && b < sum_pk.size(); ++b) sum_pk[b] += ps.pk[b];
    ++used;
  }
  if (used < std::max(1, s.prior_samples / 2))
    throw Error(s.checkpoint, "only " + std::to_string(used) + " of " +
                                  std::to_string(s.prior_samples) +
                                  " flow samples were finite: cannot estimate P(k) for the Wiener "
                                  "filter (give prior_power: file)");
  t.pk = sum_pk;
  for (double& p : t.pk) p /= used;
  t.source = "checkpoint flow samples (" + std::to_string(used) + " at temperature 1)";
  if (log)
    std::fprintf(log, "denoise: prior P(k) of delta from %d flow samples (%.1f s)\n", used,
                 seconds_since(start));
  return t;
}

struct EstimateMetrics {
  CrossSpectrum cross;
  PowerSpectrum residual;
  double mse_all = 0, mse_observed = 0, mse_masked = 0;
};

EstimateMetrics metrics_of(const std::vector<double>& rec, const Observation& o) {
  EstimateMetrics m;
  Grid a(o.n, o.box_size_mpch, o.redshift), t(o.n, o.box_size_mpch, o.redshift),
      r(o.n, o.box_size_mpch, o.redshift);
  a.values = rec;
  t.values = *o.truth;
  for (size_t i = 0; i < rec.size(); ++i) r.values[i] = rec[i] - t.values[i];
  m.cross = measure_cross_spectrum(a, t);
  m.residual = measure_power_spectrum(r);
  double obs = 0, mas = 0, no = 0, nm = 0;
  for (size_t i = 0; i < rec.size(); ++i) {
    const double e2 = r.values[i] * r.values[i];
    if (o.mask[i] != 0) {
      obs += e2;
      ++no;
    } else {
      mas += e2;
      ++nm;
    }
  }
  m.mse_all = (obs + mas) / double(rec.size());
  m.mse_observed = no > 0 ? obs / no : 0.0;
  m.mse_masked = nm > 0 ? mas / nm : 0.0;
  return m;
}

// Mode-weighted means over the bins with k_lo <= k <= k_hi.
double band_mean(const std::vector<double>& k, const std::vector<double>& v,
                 const std::vector<double>& nmodes, double k_lo, double k_hi) {
  double sum = 0, w = 0;
  for (size_t i = 0; i < k.size(); ++i)
    if (k[i] >= k_lo && k[i] <= k_hi && std::isfinite(v[i])) {
      sum += v[i] * nmodes[i];
      w += nmodes[i];
    }
  return w > 0 ? sum / w : NAN;
}

// The density the MAP maximises (map.prior_weight beta: the prior raised to beta).
std::string map_density(const MapSettings& m) {
  return m.prior_weight == 1.0 ? "p(y|d)" : "p(d|y) p_prior(y)^" + format_number(m.prior_weight);
}

std::string stem_of(const std::string& out) {
  const std::filesystem::path p(out);
  return (p.parent_path() / p.stem()).string();
}

void write_cube(h5::Group& root, const std::string& name, const std::vector<double>& v, int n) {
  const hsize_t N = hsize_t(n);
  h5::Dataset d = root.create_dataset(name, h5::ElementType::float32, {N, N, N});
  d.write(v.data());
}

// One observation's reconstructions.
struct Reconstruction {
  WienerResult wf;
  MapResult map;
  int tiles = 0;  // the MAP's tiles (large_box: tiles); 0: one MAP over the whole box
};

// large_box: tiles applies only to a box larger than the trained flow's grid.
bool map_by_tiles_on(const DenoiseSettings& s, int observed_n, int trained_grid) {
  return s.large_box == "tiles" && observed_n > trained_grid;
}

// The MAP of p(y|d) on the observation's grid, from the start map.init names (wf: the WF's delta).
MapResult map_of(const Observation& o, const std::vector<double>& wf, MultiScaleFlow<float>& flow,
                 const Preprocessing& pre, const DenoiseSettings& s, std::FILE* log) {
  FlowPrior<float> flow_prior(flow);
  const FlowSpec& spec = flow.spec();
  const bool correlated = spec.base == BaseKind::correlated_gaussian;
  if (!correlated && (s.map.prior == "gaussian" || s.map.init == "gaussian"))
    throw Error(s.source, "denoise.map." +
                              std::string(s.map.prior == "gaussian" ? "prior" : "init") +
                              ": gaussian needs a checkpoint with a correlated_gaussian base");
  // The correlated base on the observation's grid, built once: its eigenvalues whiten the MAP,
  // and it is the prior of map.prior/init gaussian.
  std::unique_ptr<GaussianFieldPrior> gaussian;
  std::vector<double> base_eigenvalues;
  if (correlated) {
    CorrelatedGaussian base = CorrelatedGaussian::from_power(
        o.n, spec.base_box_size_mpch, spec.base_k_hmpc, spec.base_pk, spec.base_pk0);
    base_eigenvalues = base.eigenvalues();
    if (s.map.prior == "gaussian" || s.map.init == "gaussian")
      gaussian = std::make_unique<GaussianFieldPrior>(std::move(base));
  }
  const PriorRange range{s.map.y_min, s.map.y_max};
  std::vector<double> start(o.size(), 0.0);
  if (s.map.init == "wiener" || s.map.init == "gaussian") start = delta_to_preprocessed(pre, wf);
  if (s.map.init == "data") start = delta_to_preprocessed(pre, o.data);
  // init gaussian: the MAP under the correlated base alone (converges in double precision in a
  // few hundred cheap iterations), from the WF; the flow's MAP starts there.
  int init_iterations = 0;
  if (s.map.init == "gaussian") {
    PosteriorObjective gaussian_objective(*gaussian, pre, o, range);
    const MapResult g = map_reconstruct(gaussian_objective, start, s.map, nullptr, 10.0,
                                        s.map.whiten ? &base_eigenvalues : nullptr);
    init_iterations = g.iterations;
    if (log)
      std::fprintf(log,
                   "denoise: start: the MAP under the gaussian base, %d L-BFGS iterations, stop "
                   "%s, %.1f s\n",
                   g.iterations, g.stop.c_str(), g.seconds);
    start = g.y;
  }
  FieldPrior& prior = s.map.prior == "gaussian" ? static_cast<FieldPrior&>(*gaussian) : flow_prior;
  PosteriorObjective objective(prior, pre, o, range, s.map.prior_weight);
  std::vector<double> whitening, voxel_scale;
  if (s.map.whiten && correlated) {
    whitening = base_eigenvalues;
    if (s.map.precondition == "posterior") {
      // The HMC's fourier_voxel mass at the start: variance 1/m_k per mode, then D per voxel.
      std::vector<double> y_start = start;  // where map_reconstruct starts: clamped into range
      for (double& y : y_start) y = std::clamp(y, range.low, range.high);
      const YPosterior space(objective, whitening);
      voxel_scale = posterior_mass_voxel_scale(space, pre, o, y_start);
      whitening = posterior_mass_eigenvalues(space, pre, o, y_start);
      for (double& m : whitening) m = 1.0 / m;
    }
  }
  MapResult map =
      map_reconstruct(objective, start, s.map, log, 10.0, whitening.empty() ? nullptr : &whitening,
                      voxel_scale.empty() ? nullptr : &voxel_scale);
  if (log)
    std::fprintf(log,
                 "denoise: MAP of %s (%s prior): %d L-BFGS iterations, %d evaluations, stop %s, "
                 "f %.10g -> %.10g, %d restarts, %d voxels beyond y in [%g, %g], %.1f s\n",
                 map_density(s.map).c_str(), s.map.prior.c_str(), map.iterations, map.evaluations,
                 map.stop.c_str(), map.objective_start, map.objective, map.restarts,
                 map.beyond_range, s.map.y_min, s.map.y_max, map.seconds);
  map.init_iterations = init_iterations;
  return map;
}

// large_box: tiles. One MAP per tile of the flow's grid, each against the data in its tile (and
// started from the whole box's WF cut to it), stitched by TileLayout's window; the modes a tile
// cannot hold (|k| below the tile's fundamental 2 pi / L_tile) come from the WF. The result's
// iterations are the most any tile took, its stop the commonest, its objectives, evaluations,
// restarts, voxels beyond the range and seconds the sums over the tiles.
MapResult map_by_tiles(const Observation& o, const std::vector<double>& wf,
                       MultiScaleFlow<float>& flow, const Preprocessing& pre,
                       const DenoiseSettings& s, std::FILE* log, int& tile_count) {
  const int t = flow.spec().grid;
  std::optional<TileLayout> layout;
  try {
    layout.emplace(o.n, t, s.tiles_overlap);
  } catch (const Error& e) {
    throw Error(s.source, "denoise.tiles.overlap", e.problem());
  }
  tile_count = layout->count();
  if (log)
    std::fprintf(log, "denoise: MAP on %d tiles of %d^3 (%d per side, overlap >= %d voxels)\n",
                 layout->count(), t, layout->per_side(), layout->overlap());
  MapResult total;
  std::vector<std::vector<double>> tiles;
  std::vector<std::pair<std::string, int>> stops;
  for (int tile = 0; tile < layout->count(); ++tile) {
    Observation part;
    part.n = t;
    part.box_size_mpch = o.box_size_mpch * t / o.n;
    part.redshift = o.redshift;
    part.data = layout->cut(o.data, tile);
    part.mask = layout->cut(o.mask, tile);
    part.noise_sigma = layout->cut(o.noise_sigma, tile);
    if (log) std::fprintf(log, "denoise: tile %d of %d\n", tile + 1, layout->count());
    MapResult m = map_of(part, layout->cut(wf, tile), flow, pre, s, log);
    total.iterations = std::max(total.iterations, m.iterations);
    total.evaluations += m.evaluations;
    total.objective += m.objective;
    total.objective_start += m.objective_start;
    total.gradient_rms += m.gradient_rms * m.gradient_rms / layout->count();
    total.seconds += m.seconds;
    total.evaluation_seconds += m.evaluation_seconds;
    total.restarts += m.restarts;
    total.init_iterations = std::max(total.init_iterations, m.init_iterations);
    total.beyond_range += m.beyond_range;
    auto seen = std::find_if(stops.begin(), stops.end(),
                             [&](const auto& stop) { return stop.first == m.stop; });
    if (seen == stops.end())
      stops.push_back({m.stop, 1});
    else
      ++seen->second;
    tiles.push_back(std::move(m.delta));
  }
  total.gradient_rms = std::sqrt(total.gradient_rms);
  total.stop = std::max_element(stops.begin(), stops.end(), [](const auto& a, const auto& b) {
                 return a.second < b.second;
               })->first;
  const double k_tile_hmpc = 2 * M_PI / (o.box_size_mpch * t / o.n);
  total.delta = combine_by_wavenumber(wf, layout->stitch(tiles), o.n, o.box_size_mpch, k_tile_hmpc);
  total.y = delta_to_preprocessed(pre, total.delta);
  return total;
}

// The WF, and the MAP: over the whole box with `flow` (the trained flow, or it rebuilt on the
// observation's grid), or with large_box: tiles on a box larger than the trained flow's grid, by
// tiles of `trained`.
Reconstruction reconstruct(const Observation& o, const std::vector<double>& eigenvalues,
                           MultiScaleFlow<float>& flow, MultiScaleFlow<float>& trained,
                           const Preprocessing& pre, const DenoiseSettings& s, std::FILE* log) {
  Reconstruction r;
  WienerFilter wf(o.n, eigenvalues, o.inverse_noise());
  r.wf = wf.solve(o.data, s.wiener_tolerance, s.wiener_max_iterations);
  if (log)
    std::fprintf(log, "denoise: Wiener filter %s, %d iterations, residual %.3g, %.3f s\n",
                 r.wf.closed_form ? "closed form" : "PCG", r.wf.iterations, r.wf.relative_residual,
                 r.wf.seconds);
  if (!r.wf.closed_form && r.wf.relative_residual > s.wiener_tolerance * 10)
    throw Error(s.source, "denoise.wiener.max_iterations: PCG stopped at residual " +
                              format_number(r.wf.relative_residual) + " after " +
                              std::to_string(r.wf.iterations) + " iterations, above tolerance " +
                              format_number(s.wiener_tolerance));
  if (map_by_tiles_on(s, o.n, trained.spec().grid))
    r.map = map_by_tiles(o, r.wf.x, trained, pre, s, log, r.tiles);
  else
    r.map = map_of(o, r.wf.x, flow, pre, s, log);
  return r;
}

// Whether the checkpoint recorded the training fields' range of y.
bool records_range(const TrainingData& data) {
  return std::isfinite(data.y_min) && std::isfinite(data.y_max);
}
// Masked voxels (no data: the prior alone acts) of y outside the training fields' range.
long masked_beyond_training(const std::vector<double>& y, const Observation& o,
                            const TrainingData& data) {
  const PriorRange trained{data.y_min, data.y_max};
  long count = 0;
  for (size_t i = 0; i < y.size(); ++i) count += o.mask[i] <= 0 && !trained.contains(y[i]);
  return count;
}

// Masked voxels of a MAP whose y lies outside the training fields' range: counted (-1 when the
// checkpoint records no range), then warned about or, with map.runaway refuse, refused. `which`
// names the field in messages ("" for the observation).
long check_runaway(const std::vector<double>& y, const Observation& o, const TrainingData& data,
                   const DenoiseSettings& s, const std::string& which, std::FILE* log) {
  if (!records_range(data)) return -1;
  const long count = masked_beyond_training(y, o, data);
  if (count == 0) return 0;
  const std::string what = which + std::to_string(count) +
                           " masked voxel(s) of the MAP beyond the training fields' range y in [" +
                           format_number(data.y_min) + ", " + format_number(data.y_max) +
                           "]: the prior's density runs away where no data constrain it "
                           "(docs/denoise.md, \"Runaway\")";
  if (s.map.runaway == "refuse") throw Error(s.source, "denoise.map.runaway: refuse: " + what);
  if (log) std::fprintf(log, "denoise: warning: %s\n", what.c_str());
  return count;
}

// The same count on the posterior's kept draws (delta, mapped back to y): a warning only, since
// a posterior draw may rightly exceed the training fields' extremes where a MAP's spike may not.
void check_runaway_draws(PosteriorResult& post, const Observation& o, const FlowCheckpoint& ckpt,
                         std::FILE* log) {
  if (!records_range(ckpt.data)) return;
  post.kept_beyond_training = post.most_masked_beyond_training = 0;
  const Preprocessing& pre = ckpt.preprocessing;
  std::vector<double> y(o.size());
  for (const std::vector<float>& draw : post.kept) {
    for (size_t i = 0; i < y.size(); ++i) {
      // float rounding may put a draw's emptiest voxel at log1p's pole: beyond any range.
      const double delta = draw[i];
      y[i] = pre.transform == PreprocessTransform::log1p && !(delta > -1 - pre.eps)
                 ? -std::numeric_limits<double>::infinity()
                 : pre.forward(delta);
    }
    const long count = masked_beyond_training(y, o, ckpt.data);
    post.kept_beyond_training += count > 0;
    post.most_masked_beyond_training = std::max(post.most_masked_beyond_training, count);
  }
  if (log && post.kept_beyond_training > 0)
    std::fprintf(log,
                 "denoise: warning: %ld of %zu kept posterior draws have masked voxels beyond the "
                 "training fields' range y in [%s, %s] (at most %ld in one draw; docs/denoise.md, "
                 "\"Runaway\")\n",
                 post.kept_beyond_training, post.kept.size(),
                 format_number(ckpt.data.y_min).c_str(), format_number(ckpt.data.y_max).c_str(),
                 post.most_masked_beyond_training);
}

// Everything before the posterior sampling, the same on every process: the checks, the
// observation, the prior's P(k), the split, the WF, the MAP and their combination.
struct Prepared {
  FlowCheckpoint ckpt;
  std::unique_ptr<MultiScaleFlow<float>> rebuilt;  // the flow on the observation's grid
  MultiScaleFlow<float>* flow = nullptr;           // rebuilt, or the checkpoint's
  Observation obs;
  DenoiseSettings resolved;  // the settings with the prior's range in y resolved
  std::string range_source;
  long masked_beyond_training = -1;  // the MAP's, check_runaway()
  PriorTable prior;
  double k_split = 0.0;
  std::string k_split_source;
  Reconstruction rec;
  std::vector<double> combined;
};

Prepared prepare(const DenoiseSettings& s, const DenoiseSummary& summary, std::FILE* log) {
  // Settings made in code get the checks of a config file's.
  denoise_settings_table().validate(s, s.source.empty() ? "denoise" : s.source);
  const std::vector<std::string> inputs = {s.checkpoint,       s.truth_grid,      s.data_grid,
                                           s.data_mask,        s.noise_sigma_map, s.mask.file,
                                           s.prior_power_file, s.validation_grid};
  for (const std::string& out : {s.out, summary.metrics_path, summary.summary_path})
    refuse_output_that_is_input(out, inputs);

  Prepared p;
  FlowCheckpoint& ckpt = p.ckpt;
  ckpt = load_flow_checkpoint(s.checkpoint);
  const FlowSpec& trained = ckpt.flow->spec();
  // The prior's range in y: the reconstructions below use `resolved`.
  DenoiseSettings& resolved = p.resolved;
  resolved = s;
  const bool recorded = std::isfinite(ckpt.data.y_min) && std::isfinite(ckpt.data.y_max);
  if (s.map.range == "training" && recorded) {
    resolved.map.y_min = ckpt.data.y_min - s.map.range_margin_y;
    resolved.map.y_max = ckpt.data.y_max + s.map.range_margin_y;
    p.range_source = "the training fields' range";
  } else {
    p.range_source = s.map.range == "training"
                         ? "map.y_min/y_max (the checkpoint records no training range)"
                         : "map.y_min/y_max";
  }
  if (log)
    std::fprintf(log, "denoise: the prior's range y in [%.4g, %.4g], from %s\n", resolved.map.y_min,
                 resolved.map.y_max, p.range_source.c_str());

  // The observation.
  Observation& obs = p.obs;
  if (!s.truth_grid.empty()) {
    const GridFileInfo info = inspect_grid_file(s.truth_grid);
    if (s.truth_index >= info.count)
      throw Error(s.source, "denoise.truth.index: " + std::to_string(s.truth_index) +
                                " is out of range, " + s.truth_grid + " holds " +
                                std::to_string(info.count) + " field(s)");
    const Grid truth = read_grid(s.truth_grid, s.truth_index);
    MaskSettings ms = s.mask;
    std::vector<double> mask = make_mask(truth.n, ms);
    std::vector<double> sigma = s.noise_sigma_map.empty()
                                    ? std::vector<double>(truth.size(), s.noise_sigma)
                                    : read_noise_sigma_map(s.noise_sigma_map, truth.n);
    obs = observe(truth, std::move(mask), std::move(sigma), s.noise_seed);
  } else {
    const Grid data = read_grid(s.data_grid);
    obs.n = data.n;
    obs.box_size_mpch = data.box_size_mpch;
    obs.redshift = data.redshift;
    MaskSettings ms;
    ms.kind = s.data_mask.empty() ? "none" : "file";
    ms.file = s.data_mask;
    obs.mask = make_mask(data.n, ms);
    obs.noise_sigma = s.noise_sigma_map.empty()
                          ? std::vector<double>(data.size(), s.data_noise_sigma)
                          : read_noise_sigma_map(s.noise_sigma_map, data.n);
    obs.data = data.values;
    for (size_t i = 0; i < obs.data.size(); ++i) obs.data[i] *= obs.mask[i];
  }
  // The flow must have been trained at this cell size (the checkpoint's training data box; loading
  // refused a checkpoint without a positive one).
  const double train_box = ckpt.data.box_size_mpch;
  const double cell = obs.box_size_mpch / obs.n, train_cell = train_box / trained.grid;
  if (std::fabs(cell - train_cell) > 1e-6 * train_cell)
    throw Error(s.checkpoint, "flow trained on " + std::to_string(trained.grid) + "^3 cells of " +
                                  format_number(train_cell) + " Mpc/h (box " +
                                  format_number(train_box) + "), the observation has " +
                                  std::to_string(obs.n) + "^3 cells of " + format_number(cell) +
                                  " Mpc/h");
  p.rebuilt = flow_for_grid(*ckpt.flow, obs.n, obs.box_size_mpch, s.checkpoint);
  MultiScaleFlow<float>& flow = p.rebuilt ? *p.rebuilt : *ckpt.flow;
  p.flow = &flow;
  if (log)
    std::fprintf(log, "denoise: %d^3 field, box %g Mpc/h, %.1f%% observed, noise sigma %g%s\n",
                 obs.n, obs.box_size_mpch, 100 * obs.observed_fraction(), obs.noise_sigma[0],
                 !p.rebuilt ? ""
                 : map_by_tiles_on(s, obs.n, trained.grid)
                     ? " (MAP by tiles of the flow's grid)"
                     : " (flow applied to the whole periodic box)");

  p.prior = prior_power(s, ckpt, obs.box_size_mpch, obs.redshift, train_box, log);
  const std::vector<double> lambda =
      CorrelatedGaussian::from_power(obs.n, obs.box_size_mpch, p.prior.k_hmpc, p.prior.pk, 0.0)
          .eigenvalues();

  // The split, chosen on validation fields when not given.
  double& k_split = p.k_split;
  k_split = s.k_split_hmpc;
  p.k_split_source = "config";
  if (k_split <= 0) {
    std::vector<std::vector<double>> vw, vm, vt;
    for (long index : s.validation_indices) {
      const Grid truth = read_grid(s.validation_grid, int(index));
      if (truth.n != obs.n)
        throw Error(s.validation_grid, "validation fields must match the observation's grid");
      MaskSettings ms = s.mask;
      ms.seed = s.mask.seed + 7919 * uint64_t(index + 1);  // masks and noise unlike the test's
      std::vector<double> sigma = s.noise_sigma_map.empty()
                                      ? std::vector<double>(truth.size(), s.noise_sigma)
                                      : read_noise_sigma_map(s.noise_sigma_map, truth.n);
      const Observation vo = observe(truth, make_mask(truth.n, ms), std::move(sigma),
                                     s.noise_seed + 7919 * uint64_t(index + 1));
      if (log) std::fprintf(log, "denoise: validation field %ld\n", index);
      Reconstruction vr =
          reconstruct(vo, lambda, flow, *ckpt.flow, ckpt.preprocessing, resolved, log);
      check_runaway(vr.map.y, vo, ckpt.data, s, "validation field " + std::to_string(index) + ": ",
                    log);
      vw.push_back(std::move(vr.wf.x));
      vm.push_back(std::move(vr.map.delta));
      vt.push_back(truth.values);
    }
    k_split = choose_k_split(vw, vm, vt, obs.n, obs.box_size_mpch);
    p.k_split_source = "validation " + s.validation_grid;
    if (log)
      std::fprintf(log, "denoise: k_split = %.4g h/Mpc chosen on %zu validation fields\n", k_split,
                   vw.size());
  }

  p.rec = reconstruct(obs, lambda, flow, *ckpt.flow, ckpt.preprocessing, resolved, log);
  p.masked_beyond_training = check_runaway(p.rec.map.y, obs, ckpt.data, s, "", log);
  p.combined =
      combine_by_wavenumber(p.rec.wf.x, p.rec.map.delta, obs.n, obs.box_size_mpch, k_split);
  return p;
}

}  // namespace

std::vector<double> combine_by_wavenumber(const std::vector<double>& low,
                                          const std::vector<double>& high, int n,
                                          double box_size_mpch, double k_split_hmpc) {
  RealFft3d<double> a(n, 1), b(n, 1);
  std::copy(low.begin(), low.end(), a.real());
  std::copy(high.begin(), high.end(), b.real());
  a.forward();
  b.forward();
  const double kf = 2 * M_PI / box_size_mpch;
  for (size_t m = 0; m < a.complex_size(); ++m)
    if (!(kf * std::sqrt(double(mode_norm2(m, n))) < k_split_hmpc)) a.complex()[m] = b.complex()[m];
  a.inverse();
  std::vector<double> out(low.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = a.real()[i] / double(out.size());
  return out;
}

double choose_k_split(const std::vector<std::vector<double>>& wf,
                      const std::vector<std::vector<double>>& map,
                      const std::vector<std::vector<double>>& truth, int n, double box_size_mpch) {
  const int bins = int(std::ceil(std::sqrt(3.0) * (n / 2))) + 2;
  std::vector<double> err_wf(size_t(bins), 0.0), err_map(size_t(bins), 0.0);
  RealFft3d<double> fa(n, 1), fb(n, 1);
  const int nh = n / 2 + 1;
  for (size_t f = 0; f < wf.size(); ++f) {
    for (size_t i = 0; i < truth[f].size(); ++i) {
      fa.real()[i] = wf[f][i] - truth[f][i];
      fb.real()[i] = map[f][i] - truth[f][i];
    }
    fa.forward();
    fb.forward();
    for (size_t m = 0; m < fa.complex_size(); ++m) {
      const int bin = int(std::floor(std::sqrt(double(mode_norm2(m, n)))));
      const double w = half_complex_weight(int(m % nh), n);
      err_wf[size_t(bin)] += w * std::norm(fa.complex()[m]);
      err_map[size_t(bin)] += w * std::norm(fb.complex()[m]);
    }
  }
  // Split at edge j: bins below j from the WF, the rest from the MAP.
  double best = INFINITY;
  int best_j = 0;
  for (int j = 0; j <= bins; ++j) {
    double cost = 0;
    for (int i = 0; i < bins; ++i) cost += i < j ? err_wf[size_t(i)] : err_map[size_t(i)];
    if (cost < best) {
      best = cost;
      best_j = j;
    }
  }
  return best_j * 2 * M_PI / box_size_mpch;
}

DenoiseSummary run_denoise(const DenoiseSettings& s, std::FILE* log, const ChainSharing& sharing) {
  if (sharing.rank != 0) log = nullptr;
  const auto start = clock_type::now();
  DenoiseSummary summary;
  const std::string stem = stem_of(s.out);
  summary.metrics_path = stem + "_metrics.csv";
  summary.summary_path = stem + "_summary.json";
  // A failure before the sampling stops every process (each would meet it: one reports).
  std::optional<Prepared> prepared;
  const auto prepare_all = [&] { prepared.emplace(prepare(s, summary, log)); };
  if (sharing.guarded)
    sharing.guarded(prepare_all);
  else
    prepare_all();
  FlowCheckpoint& ckpt = prepared->ckpt;
  MultiScaleFlow<float>& flow = *prepared->flow;
  const Observation& obs = prepared->obs;
  const PriorTable& prior = prepared->prior;
  const double k_split = prepared->k_split;
  const std::string& k_split_source = prepared->k_split_source;
  const Reconstruction& rec = prepared->rec;
  const std::vector<double>& combined = prepared->combined;

  summary.wiener_iterations = rec.wf.iterations;
  summary.wiener_residual = rec.wf.relative_residual;
  summary.wiener_seconds = rec.wf.seconds;
  summary.map_iterations = rec.map.iterations;
  summary.map_seconds = rec.map.seconds;
  summary.map_stop = rec.map.stop;
  summary.map_masked_beyond_training = prepared->masked_beyond_training;
  summary.k_split_hmpc = k_split;

  // Posterior samples, the chains shared over the ranks, from the MAP.
  std::optional<PosteriorResult> post;
  if (s.posterior.samples > 0) {
    post =
        sample_flow_posterior(flow, ckpt.preprocessing, obs, rec.map.y, s.posterior, sharing, log);
    check_runaway_draws(*post, obs, ckpt, log);
    summary.posterior = true;
    summary.posterior_acceptance = post->acceptance_rate;
    summary.posterior_divergences = post->divergences;
    summary.posterior_seconds = post->seconds;
    if (log)
      std::fprintf(log,
                   "denoise: posterior in %s space: %d chains x %d samples, acceptance %.3f, "
                   "%ld divergences, max split R-hat of P(k) %.3f, %.1f s\n",
                   post->space.c_str(), s.posterior.chains, s.posterior.samples,
                   post->acceptance_rate, post->divergences,
                   *std::max_element(post->pk_rhat.begin(), post->pk_rhat.end()), post->seconds);
  }
  if (sharing.rank != 0) return summary;  // rank 0 writes

  // HDF5.
  {
    AtomicFile file(s.out);
    h5::File f = h5::File::create(file);  // errors name s.out, not the temporary
    h5::Group& root = f.root();
    root.write_attribute("box_size", obs.box_size_mpch);
    root.write_attribute("redshift", obs.redshift);
    write_provenance(root, provenance(denoise_settings_yaml(s)));
    root.write_attribute_string("checkpoint", s.checkpoint);
    root.write_attribute_string(
        "map_density", map_density(s.map) + ": y the flow's preprocessed field, delta = g(y)");
    if (obs.truth) write_cube(root, "truth", *obs.truth, obs.n);
    write_cube(root, "data", obs.data, obs.n);
    write_cube(root, "mask", obs.mask, obs.n);
    write_cube(root, "noise_sigma", obs.noise_sigma, obs.n);
    write_cube(root, "wf", rec.wf.x, obs.n);
    write_cube(root, "map", rec.map.delta, obs.n);
    write_cube(root, "map_y", rec.map.y, obs.n);
    write_cube(root, "combined", combined, obs.n);
    h5::Dataset c = root.open_dataset("combined");
    c.write_attribute("k_split_hmpc", k_split);
    c.write_attribute_string("k_split_source", k_split_source);
    h5::Dataset wfd = root.open_dataset("wf");
    wfd.write_attribute("iterations", int64_t(rec.wf.iterations));
    wfd.write_attribute("relative_residual", rec.wf.relative_residual);
    h5::Dataset md = root.open_dataset("map");
    md.write_attribute("iterations", int64_t(rec.map.iterations));
    md.write_attribute_string("stop", rec.map.stop);
    if (prepared->masked_beyond_training >= 0)
      md.write_attribute("masked_voxels_beyond_training",
                         int64_t(prepared->masked_beyond_training));
    std::vector<double> table;
    for (size_t i = 0; i < prior.k_hmpc.size(); ++i) {
      table.push_back(prior.k_hmpc[i]);
      table.push_back(prior.pk[i]);
    }
    h5::Dataset pk = root.create_dataset("prior_pk", h5::ElementType::float64,
                                         {hsize_t(prior.k_hmpc.size()), 2});
    pk.write(table.data());
    pk.write_attribute_string("columns", "k_hmpc, pk_mpch3");
    pk.write_attribute_string("source", prior.source);
    if (post) write_posterior_datasets(root, *post, s.posterior);
    f.close();
    file.commit();
  }

  // Metrics per k bin and the summary.
  std::ostringstream json;
  json << "{\n  \"n\": " << obs.n << ",\n  \"box_size_mpch\": " << json_number(obs.box_size_mpch)
       << ",\n  \"redshift\": " << json_number(obs.redshift)
       << ",\n  \"observed_fraction\": " << json_number(obs.observed_fraction())
       << ",\n  \"prior_power\": " << json_string(prior.source)
       << ",\n  \"wiener\": {\"iterations\": " << rec.wf.iterations
       << ", \"relative_residual\": " << json_number(rec.wf.relative_residual)
       << ", \"closed_form\": " << (rec.wf.closed_form ? "true" : "false")
       << ", \"seconds\": " << json_number(rec.wf.seconds) << "},\n  \"map\": {\"density\": "
       << json_string(map_density(s.map) + ", y = preprocessed field")
       << ", \"prior\": " << json_string(s.map.prior) << ", \"init\": " << json_string(s.map.init)
       << ", \"tiles\": " << rec.tiles << ", \"init_iterations\": " << rec.map.init_iterations
       << ", \"precondition\": " << json_string(s.map.whiten ? s.map.precondition : "none")
       << ", \"iterations\": " << rec.map.iterations << ", \"evaluations\": " << rec.map.evaluations
       << ", \"stop\": " << json_string(rec.map.stop)
       << ", \"objective_start\": " << json_number(rec.map.objective_start)
       << ", \"objective\": " << json_number(rec.map.objective)
       << ", \"gradient_rms\": " << json_number(rec.map.gradient_rms)
       << ", \"restarts\": " << rec.map.restarts
       << ", \"voxels_beyond_range\": " << rec.map.beyond_range
       << ", \"masked_voxels_beyond_training\": "
       << (prepared->masked_beyond_training >= 0 ? std::to_string(prepared->masked_beyond_training)
                                                 : "null")
       << ", \"range_y\": [" << json_number(prepared->resolved.map.y_min) << ", "
       << json_number(prepared->resolved.map.y_max)
       << "], \"range_source\": " << json_string(prepared->range_source)
       << ", \"seconds\": " << json_number(rec.map.seconds)
       << ", \"seconds_in_objective\": " << json_number(rec.map.evaluation_seconds)
       << "},\n  \"combined\": {\"k_split_hmpc\": " << json_number(k_split)
       << ", \"chosen_on\": " << json_string(k_split_source) << "}";
  if (post) json << ",\n  \"posterior\": " << posterior_json(*post, s.posterior);
  const PosteriorColumns post_cols = post ? posterior_columns(*post) : PosteriorColumns{};
  if (obs.truth) {
    std::vector<std::pair<std::string, const std::vector<double>*>> estimates = {
        {"wf", &rec.wf.x}, {"map", &rec.map.delta}, {"combined", &combined}};
    if (post) estimates.push_back({"posterior_mean", &post->mean});
    const size_t E = estimates.size();
    std::vector<EstimateMetrics> m;
    for (const auto& e : estimates) m.push_back(metrics_of(*e.second, obs));
    Grid data(obs.n, obs.box_size_mpch, obs.redshift);
    data.values = obs.data;
    const PowerSpectrum data_pk = measure_power_spectrum(data);
    std::vector<std::vector<double>> transfer(E);
    std::vector<CsvColumn> cols = {{"k", &m[0].cross.k},
                                   {"nmodes", &m[0].cross.nmodes},
                                   {"pk_truth", &m[0].cross.pk2},
                                   {"pk_data", &data_pk.pk}};
    for (size_t e = 0; e < E; ++e) {
      for (size_t b = 0; b < m[e].cross.k.size(); ++b)
        transfer[e].push_back(std::sqrt(m[e].cross.pk1[b] / m[e].cross.pk2[b]));
    }
    std::vector<std::string> names;
    for (size_t e = 0; e < E; ++e)
      for (const char* what : {"_pk", "_r", "_transfer", "_residual_pk"})
        names.push_back(estimates[e].first + what);
    for (size_t e = 0; e < E; ++e) {
      cols.push_back({names[4 * e + 0], &m[e].cross.pk1});
      cols.push_back({names[4 * e + 1], &m[e].cross.r});
      cols.push_back({names[4 * e + 2], &transfer[e]});
      cols.push_back({names[4 * e + 3], &m[e].residual.pk});
    }
    post_cols.append_to(cols);
    write_csv(summary.metrics_path, cols);
    const double kn = M_PI * obs.n / obs.box_size_mpch;
    json << ",\n  \"mse\": {";
    for (size_t e = 0; e < E; ++e)
      json << (e ? ", " : "") << json_string(estimates[e].first)
           << ": {\"all\": " << json_number(m[e].mse_all)
           << ", \"observed\": " << json_number(m[e].mse_observed)
           << ", \"masked\": " << json_number(m[e].mse_masked) << "}";
    json << "},\n  \"headline\": {\"band_hmpc\": [" << json_number(kn / 2) << ", "
         << json_number(kn) << "]";
    double res_wf = 0;
    for (size_t e = 0; e < E; ++e) {
      const auto& c = m[e].cross;
      const double r = band_mean(c.k, c.r, c.nmodes, kn / 2, kn);
      const double res =
          band_mean(m[e].residual.k, m[e].residual.pk, m[e].residual.nmodes, kn / 2, kn);
      if (e == 0) res_wf = res;
      json << ", \"" << estimates[e].first << "_r\": " << json_number(r) << ", \""
           << estimates[e].first << "_residual_pk\": " << json_number(res);
      if (e > 0)
        json << ", \"" << estimates[e].first << "_residual_vs_wf\": " << json_number(res / res_wf);
    }
    json << "}";
  } else {
    Grid g(obs.n, obs.box_size_mpch, obs.redshift);
    std::vector<PowerSpectrum> ps;
    for (const std::vector<double>* v :
         std::vector<const std::vector<double>*>{&obs.data, &rec.wf.x, &rec.map.delta, &combined}) {
      g.values = *v;
      ps.push_back(measure_power_spectrum(g));
    }
    std::vector<CsvColumn> cols = {{"k", &ps[0].k},        {"nmodes", &ps[0].nmodes},
                                   {"pk_data", &ps[0].pk}, {"wf_pk", &ps[1].pk},
                                   {"map_pk", &ps[2].pk},  {"combined_pk", &ps[3].pk}};
    if (post) cols.push_back({"posterior_mean_pk", &post->pk_of_mean});
    post_cols.append_to(cols);
    write_csv(summary.metrics_path, cols);
  }
  json << ",\n  \"seconds\": " << json_number(seconds_since(start)) << "\n}\n";
  atomic_write_text(summary.summary_path, json.str());
  return summary;
}

}  // namespace ff
