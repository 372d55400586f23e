// The data: and train: sections. See include/fieldflow/train/settings.hpp and docs/train.md.
#include "fieldflow/train/settings.hpp"

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"

namespace ff {

namespace {
constexpr Resume may_change = Resume::may_change;
}  // namespace

const SettingsTable<DataSettings>& data_settings_table() {
  using D = DataSettings;
  static const auto table =
      SettingsTable<D>("data", "The training fields, the validation split and preprocessing.")
          .texts("train", &D::train, required,
                 "grid files, stacks [M,N,N,N], Gadget/Quijote snapshot base names, or globs "
                 "of them")
          .texts("validation", &D::validation, std::vector<std::string>{},
                 "the validation fields (same forms); none: hold out validation_fraction")
          .number("validation_fraction", &D::validation_fraction, 0.1,
                  Range::between(0, 1).open_above(),
                  "share of the training fields held out for validation (chosen by train.seed)")
          .choice("preprocess", &D::preprocess, "log1p", {"identity", "log1p"},
                  "t(delta) before standardisation: delta, or log(1 + delta + log1p_floor)")
          .number("log1p_floor", &D::log1p_floor, 1e-3, Range::positive(),
                  "log1p: the floor epsilon that keeps empty cells (delta = -1) finite")
          .choice("mas", &D::mas, "cic", {"ngp", "cic", "tsc"},
                  "mass assignment that paints snapshots to flow.grid")
          .choice("length_unit", &D::length_unit, "auto", {"auto", "kpc/h", "mpc/h"},
                  "snapshot positions' unit (auto: from the header's box)")
          .section("augment", SettingsTable<D>("augment", "Augmentation of the training fields.")
                                  .flag("shifts", &D::shifts, true, "random periodic shifts")
                                  .flag("symmetries", &D::symmetries, true,
                                        "random members of the 48 symmetries of the cube"));
  return table;
}

const SettingsTable<TrainSettings>& train_settings_table() {
  using T = TrainSettings;
  static const auto table =
      SettingsTable<T>("train", "The optimisation, checkpoints and monitoring.")
          .text("run_dir", &T::run_dir, "runs/train",
                "folder of checkpoint.h5, best.h5, log.csv, settings.yaml", may_change)
          .integer("steps", &T::steps, 4000, Range::non_negative(),
                   "optimizer steps in all (a resume may extend them; cosine follows)", may_change)
          .integer("batch", &T::batch, 8, Range::between(1, 1 << 20),
                   "global batch, split over the ranks (each rank needs at least one field)")
          .integer("seed", &T::seed, 0, Range::non_negative(),
                   "validation split, data order and augmentation")
          .number("lr", &T::lr, 1e-3, Range::positive(), "Adam's peak learning rate")
          .choice("schedule", &T::schedule, "cosine", {"constant", "cosine"},
                  "after warm-up: constant, or cosine decay to min_lr_ratio * lr at `steps`")
          .number("min_lr_ratio", &T::min_lr_ratio, 0.05, Range::between(0, 1),
                  "cosine: final learning rate over lr")
          .integer("warmup_steps", &T::warmup_steps, 100, Range::non_negative(),
                   "linear warm-up of the learning rate")
          .number("clip_grad_norm", &T::clip_grad_norm, 100.0, Range::non_negative(),
                  "clip the global gradient norm to this (0: off)")
          .integer("checkpoint_every", &T::checkpoint_every, 200, Range::at_least(1),
                   "steps between checkpoints (also written at the end and on a signal)",
                   may_change)
          .integer("validate_every", &T::validate_every, 100, Range::at_least(1),
                   "steps between validation losses (and best.h5 updates)", may_change)
          .integer("check_every", &T::check_every, 50, Range::at_least(1),
                   "steps between cross-rank checksums of the parameters", may_change)
          .integer("max_skips", &T::max_skips, 5, Range::at_least(1),
                   "consecutive non-finite steps before a rollback to the checkpoint", may_change)
          .number("rollback_lr_factor", &T::rollback_lr_factor, 0.5,
                  Range::between(0, 1).open_below().open_above(),
                  "learning-rate factor at each rollback", may_change)
          .number("print_every_s", &T::print_every_s, 5.0, Range::non_negative(),
                  "seconds between progress lines", may_change)
          .number("time_limit_minutes", &T::time_limit_minutes, 0.0, Range::non_negative(),
                  "stop with a checkpoint after this wall time (0: none)", may_change)
          .flag("report", &T::report, true,
                "at the end, the training report (docs/report.md) in run_dir/report: samples "
                "against the validation fields",
                may_change)
          .integer("refit_base_every", &T::refit_base_every, 0, Range::non_negative(),
                   "steps between refits of the correlated base's P(k) to the training fields' "
                   "latents, as `calibrate` method base (0: never)");
  return table;
}

TrainConfig read_train_config(Config& config) {
  TrainConfig c;
  c.source = config.source();
  ConfigNode root = config.root();
  c.flow_settings = flow_settings_table().read(root.section("flow"));
  c.flow = read_flow_spec(root.section("flow"));
  c.data = data_settings_table().read(root.section("data"));
  c.train = train_settings_table().read(root.section("train"));
  config.finish();
  return c;
}

std::string TrainConfig::yaml() const {
  return flow_settings_table().dump_text(flow_settings, "flow") +
         data_settings_table().dump_text(data, "data") +
         train_settings_table().dump_text(train, "train");
}

std::optional<std::string> first_resume_difference(const TrainConfig& stored,
                                                   const TrainConfig& requested) {
  std::string section = "flow";
  std::optional<SettingDifference> d =
      flow_settings_table().first_resume_difference(stored.flow_settings, requested.flow_settings);
  if (!d) {
    section = "data";
    d = data_settings_table().first_resume_difference(stored.data, requested.data);
  }
  if (!d) {
    section = "train";
    d = train_settings_table().first_resume_difference(stored.train, requested.train);
  }
  if (!d) return std::nullopt;
  return section + "." + d->key + ": " + d->stored + " in the run folder, " + d->requested + " now";
}

}  // namespace ff
