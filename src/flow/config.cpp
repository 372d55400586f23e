// The `flow:` and `sample:` sections, declared once (flow/config.hpp), and FlowSettings <->
// FlowSpec. See docs/flow.md.
#include "fieldflow/flow/config.hpp"

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/settings.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/io/csv.hpp"

namespace ff {

namespace {

using F = FlowSettings;

SettingsTable<F::Levels> levels_table() {
  using L = F::Levels;
  return SettingsTable<L>("levels",
                          "One entry per level; the last level has no squeeze. The defaults are "
                          "bench-32's three levels: with another count give every list.")
      .integers("checkerboard_couplings", &L::checkerboard_couplings, {2, 2, 4},
                Range::between(0, 64), "checkerboard couplings per level (the count of levels)")
      .integers("channel_couplings", &L::channel_couplings, {2, 2, 0}, Range::between(0, 64),
                "channel couplings after each squeeze (the last level's entry is 0 or left out)")
      .integers("hidden_checkerboard", &L::hidden_checkerboard, {16, 32, 64},
                Range::between(0, 4096), "hidden channels of the checkerboard coupling nets")
      .integers("hidden_channel", &L::hidden_channel, {32, 64, 0}, Range::between(0, 4096),
                "hidden channels of the channel coupling nets (the last entry is 0 or left out)")
      .check([](const L& l, const Reject& reject) {
        const size_t count = l.checkerboard_couplings.size();
        auto per_level = [&](const char* key, const std::vector<int>& v, bool last_optional) {
          if (v.size() == count || (last_optional && v.size() + 1 == count)) return;
          reject(key, "expected " + std::to_string(count) + " entries (one per level), got " +
                          std::to_string(v.size()));
        };
        per_level("hidden_checkerboard", l.hidden_checkerboard, false);
        per_level("channel_couplings", l.channel_couplings, true);
        per_level("hidden_channel", l.hidden_channel, true);
        for (size_t i = 0; i < count; ++i) {
          if (l.checkerboard_couplings[i] > 0 && l.hidden_checkerboard[i] < 1)
            reject("hidden_checkerboard",
                   "must be positive where a level has checkerboard couplings");
          if (i + 1 < count && l.channel_couplings[i] > 0 && l.hidden_channel[i] < 1)
            reject("hidden_channel", "must be positive where a level has channel couplings");
        }
      });
}

SettingsTable<F::Base> base_table() {
  using B = F::Base;
  return SettingsTable<B>("base", "The base distribution of the latent.")
      .choice("kind", &B::kind, BaseKind::standard_normal,
              {{"standard_normal", BaseKind::standard_normal},
               {"correlated_gaussian", BaseKind::correlated_gaussian}},
              "standard normal, or a Gaussian random field with the P(k) below")
      .choice("power", &B::power_measured, false, {{"table", false}, {"measured", true}},
              "correlated_gaussian: P(k) from the keys below (table), or measured by `fieldflow "
              "train` on its preprocessed training fields, with their box (measured)")
      .number("box_size_mpch", &B::box_size_mpch, 0.0, Range::non_negative(),
              "correlated_gaussian: box side of the fields in Mpc/h (required there)")
      .text("power_csv", &B::power_csv, "",
            "correlated_gaussian: CSV with columns k, pk (as `fieldflow pk` writes)")
      .numbers("k_hmpc", &B::k_hmpc, {}, Range::positive(),
               "correlated_gaussian: k in h/Mpc of an inline P(k), instead of power_csv")
      .numbers("pk", &B::pk, {}, Range::positive(),
               "correlated_gaussian: P(k) in (Mpc/h)^3 of the preprocessed field at k_hmpc")
      .number("pk0", &B::pk0, 0.0, Range::non_negative(),
              "correlated_gaussian: P at k = 0 in (Mpc/h)^3, the box volume times the variance "
              "of a field's mean; 0: P at the smallest k of the table (measured: from the data)")
      .check([](const B& b, const Reject& reject) {
        if (b.kind != BaseKind::correlated_gaussian) return;
        if (b.power_measured) {
          // `fieldflow train` measures P(k) and takes the box from its preprocessed fields.
          if (b.box_size_mpch > 0)
            reject("box_size_mpch", "power: measured takes P(k) and the box from the data");
          if (!b.power_csv.empty() || !b.k_hmpc.empty() || !b.pk.empty() || b.pk0 > 0)
            reject("power",
                   "power: measured takes P(k) and the box from the data (drop "
                   "power_csv, k_hmpc, pk and pk0)");
          return;
        }
        if (!(b.box_size_mpch > 0))
          reject("box_size_mpch", "correlated_gaussian needs a positive box_size_mpch");
        if (!b.power_csv.empty() && (!b.k_hmpc.empty() || !b.pk.empty()))
          reject("power_csv", "give either power_csv or the k_hmpc and pk lists, not both");
        if (b.power_csv.empty() && (b.k_hmpc.size() != b.pk.size() || b.k_hmpc.size() < 2))
          reject("pk", "k_hmpc and pk need the same length, at least 2");
      });
}

}  // namespace

const SettingsTable<FlowSettings>& flow_settings_table() {
  static const auto table =
      SettingsTable<F>("flow", "The architecture of the multi-scale flow.")
          .integer("grid", &F::grid, 32, Range::between(1, 4096), "points per side of the field")
          .integer("channels", &F::channels, 1, Range::between(1, 64), "channels of the field")
          .choice("kernel", &F::kernel, 3, {{"1", 1}, {"3", 3}},
                  "kernel of the first and last conv of each coupling net")
          .section("levels", &F::levels, levels_table())
          .choice("mixing", &F::mixing, MixingKind::none,
                  {{"none", MixingKind::none},
                   {"permutation", MixingKind::permutation},
                   {"orthogonal", MixingKind::orthogonal},
                   {"lu", MixingKind::lu}},
                  "1x1x1 channel mixing before each coupling")
          .choice("mixing_init", &F::mixing_init, "rotation", {"rotation", "identity"},
                  "lu's start: rotation (Glow: the LU of a random rotation) or identity (W = I: "
                  "the flow starts as the identity, over a correlated base as the Gaussian)")
          .flag("actnorm", &F::actnorm, false, "an actnorm before each coupling")
          .flag("global_context", &F::global_context, false,
                "each coupling's net also sees the box mean of its hidden features (a learned "
                "linear map, zero at start): box-wide statistics such as the abundance of dense "
                "cells, which its convolutions cannot see")
          .choice("scale_bound", &F::scale_bound, ScaleBound::tanh,
                  {{"tanh", ScaleBound::tanh},
                   {"tanh_scale", ScaleBound::tanh_scale},
                   {"softclamp", ScaleBound::softclamp}},
                  "bound on the couplings' log-scale")
          .number("clamp", &F::clamp, 2.0, Range::positive(), "softclamp bound c")
          .choice("activation", &F::activation, "relu", {"relu", "leaky_relu"},
                  "activation of the coupling nets")
          .number("leaky_slope", &F::leaky_slope, 0.01,
                  Range::between(0, 1).open_below().open_above(),
                  "leaky_relu only: y = max(x, slope x)")
          .integer("seed", &F::seed, 0, Range::non_negative(), "initial weights and fixed mixings")
          .integer("calibration_bins", &F::calibration_bins, 0, Range::between(0, 4096),
                   "0: none; K > 0: a spectral calibration before the couplings, one scale per "
                   "|k| bin of width k_N/K (fitted by `fieldflow calibrate`)")
          .section("base", &F::base, base_table());
  return table;
}

FlowSpec read_flow_spec(ConfigNode node) {
  const FlowSettings f = flow_settings_table().read(node);
  FlowSpec spec;
  spec.grid = f.grid;
  spec.channels = f.channels;
  spec.kernel = f.kernel;
  const size_t count = f.levels.checkerboard_couplings.size();
  auto entry = [](const std::vector<int>& v, size_t l) { return l < v.size() ? v[l] : 0; };
  for (size_t l = 0; l < count; ++l) {
    FlowLevelSpec ls;
    ls.checkerboard_couplings = f.levels.checkerboard_couplings[l];
    ls.channel_couplings = l + 1 < count ? entry(f.levels.channel_couplings, l) : 0;
    ls.hidden_checkerboard = f.levels.hidden_checkerboard[l];
    ls.hidden_channel = entry(f.levels.hidden_channel, l);
    spec.levels.push_back(ls);
  }
  spec.mixing = f.mixing;
  spec.mixing_identity = f.mixing_init == "identity";
  spec.actnorm = f.actnorm;
  spec.global_context = f.global_context;
  spec.scale_bound = f.scale_bound;
  spec.clamp = f.clamp;
  spec.negative_slope = f.activation == "leaky_relu" ? f.leaky_slope : 0.0;
  spec.seed = f.seed;
  spec.calibration_bins = f.calibration_bins;
  spec.base = f.base.kind;
  if (spec.base == BaseKind::correlated_gaussian) {
    spec.base_box_size_mpch = f.base.box_size_mpch;
    spec.base_power_measured = f.base.power_measured;
    spec.base_pk0 = f.base.pk0;
    if (f.base.power_measured) {
      // `fieldflow train` fills the P(k) and the box from its preprocessed training fields.
    } else if (!f.base.power_csv.empty()) {
      // Columns k and pk, as `fieldflow pk` writes them.
      auto columns = read_csv_columns(f.base.power_csv, {"k", "pk"});
      spec.base_k_hmpc = std::move(columns[0]);
      spec.base_pk = std::move(columns[1]);
      if (spec.base_k_hmpc.size() < 2)
        node.fail("base.power_csv", "needs at least 2 rows of k, pk");
    } else {
      spec.base_k_hmpc = f.base.k_hmpc;
      spec.base_pk = f.base.pk;
    }
  }
  try {
    validate(spec);
  } catch (const Error& e) {
    // validate names "flow.<key>"; the node knows the real path.
    node.fail(e.input().empty() ? "levels" : e.input().substr(e.input().find('.') + 1),
              e.problem());
  }
  return spec;
}

std::string flow_spec_yaml(const FlowSpec& spec) {
  FlowSettings f = flow_settings_table().defaults();
  f.grid = spec.grid;
  f.channels = spec.channels;
  f.kernel = spec.kernel;
  f.levels.checkerboard_couplings.clear();
  f.levels.channel_couplings.clear();
  f.levels.hidden_checkerboard.clear();
  f.levels.hidden_channel.clear();
  for (const FlowLevelSpec& l : spec.levels) {
    f.levels.checkerboard_couplings.push_back(l.checkerboard_couplings);
    f.levels.channel_couplings.push_back(l.channel_couplings);
    f.levels.hidden_checkerboard.push_back(l.hidden_checkerboard);
    f.levels.hidden_channel.push_back(l.hidden_channel);
  }
  f.mixing = spec.mixing;
  f.mixing_init = spec.mixing_identity ? "identity" : "rotation";
  f.actnorm = spec.actnorm;
  f.global_context = spec.global_context;
  f.scale_bound = spec.scale_bound;
  f.clamp = spec.clamp;
  f.activation = spec.negative_slope > 0 ? "leaky_relu" : "relu";
  if (spec.negative_slope > 0) f.leaky_slope = spec.negative_slope;
  f.seed = spec.seed;
  f.calibration_bins = spec.calibration_bins;
  f.base.kind = spec.base;
  // Once measured, the P(k) is written out: the YAML then describes this very flow.
  if (spec.base == BaseKind::correlated_gaussian && spec.base_power_measured &&
      spec.base_pk.empty()) {
    f.base.power_measured = true;
  } else if (spec.base == BaseKind::correlated_gaussian) {
    f.base.box_size_mpch = spec.base_box_size_mpch;
    f.base.k_hmpc = spec.base_k_hmpc;
    f.base.pk = spec.base_pk;
    f.base.pk0 = spec.base_pk0;
  }
  return flow_settings_table().dump_text(f, "flow");
}

const SettingsTable<SampleSettings>& sample_settings_table() {
  using S = SampleSettings;
  static const auto table =
      SettingsTable<S>("sample", "`fieldflow sample`: fields drawn from a trained flow.")
          .one_shot()
          .text("checkpoint", &S::checkpoint, required, "the trained flow (checkpoint file)")
          .integer("count", &S::count, 1, Range::between(1, 1000000), "fields to draw")
          .integer("seed", &S::seed, 0, Range::non_negative(),
                   "field i is a pure function of (seed, i)")
          .number("temperature", &S::temperature, 1.0, Range::positive(),
                  "scales the base draw (< 1 keeps samples where the flow saw data)")
          .flag("zero_mean", &S::zero_mean, true,
                "each sample's delta taken against its own mean density, so its mean is 0 as "
                "in painted fields (false: as drawn; for sub-volumes, whose mean varies)")
          .number("mean_tolerance", &S::mean_tolerance, 0.0, Range::non_negative(),
                  "> 0: only draws whose mean delta lies within +-this are kept (the flow "
                  "conditioned on the box's mean density, which painting fixes at delta = 0; "
                  "docs/flow.md); 0: every draw")
          .text("out", &S::out, required, "the stacked grid file written")
          .choice("precision", &S::precision, GridPrecision::float32,
                  {{"float32", GridPrecision::float32}, {"float64", GridPrecision::float64}},
                  "floating-point type of the grid file");
  return table;
}

SampleSettings read_sample_settings(Config& config) {
  SampleSettings s = sample_settings_table().read(config.root().section("sample"));
  config.finish();
  return s;
}

std::string sample_settings_yaml(const SampleSettings& s) {
  return sample_settings_table().dump_text(s, "sample");
}

}  // namespace ff
