#pragma once
// The `data:` and `train:` sections of a training config, declared once each (core/settings.hpp):
// read, dump, the resume check and the key tables of docs/train.md come from the declarations.
// Each key is marked must_match (a resume refuses a change) or may_change.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fieldflow/core/settings.hpp"
#include "fieldflow/flow/config.hpp"
#include "fieldflow/flow/flow.hpp"

namespace ff {

struct DataSettings {
  std::vector<std::string> train;       // grid files, stacks, snapshots, or globs of them
  std::vector<std::string> validation;  // empty: hold out validation_fraction of train
  double validation_fraction = 0.1;
  std::string preprocess = "log1p";  // identity | log1p
  double log1p_floor = 1e-3;         // epsilon in log(1 + delta + epsilon)
  std::string mas = "cic";           // snapshots are painted with this mass assignment
  std::string length_unit = "auto";  // snapshot positions: auto | kpc/h | mpc/h
  bool shifts = true;                // augment.shifts: random periodic shifts
  bool symmetries = true;            // augment.symmetries: the 48 symmetries of the cube
};
const SettingsTable<DataSettings>& data_settings_table();

struct TrainSettings {
  std::string run_dir = "runs/train";
  long steps = 4000;
  int batch = 8;  // global, split over the ranks
  uint64_t seed = 0;
  double lr = 1e-3;
  std::string schedule = "cosine";  // constant | cosine (to min_lr_ratio * lr at `steps`)
  double min_lr_ratio = 0.05;
  long warmup_steps = 100;
  double clip_grad_norm = 100.0;  // 0 = off
  long checkpoint_every = 200;
  long validate_every = 100;
  long check_every = 50;            // compare a checksum of the parameters across ranks
  int max_skips = 5;                // consecutive non-finite steps before a rollback
  double rollback_lr_factor = 0.5;  // lr multiplier at each rollback
  double print_every_s = 5.0;       // progress lines on standard output
  double time_limit_minutes = 0.0;  // stop with a checkpoint after this wall time; 0 = none
  bool report = true;               // the training report in run_dir/report at the end
  long refit_base_every = 0;        // steps between refits of the correlated base; 0 = never
};
const SettingsTable<TrainSettings>& train_settings_table();

struct TrainConfig {
  FlowSettings flow_settings;  // flow: as given (power: measured stays so)
  FlowSpec flow;               // built from them
  DataSettings data;
  TrainSettings train;
  std::string source;  // the config file
  // The settings as YAML (flow, data, train), as settings.yaml and the checkpoint store them.
  std::string yaml() const;
};

// Reads flow:, data: and train: and rejects unknown keys (Config::finish()).
TrainConfig read_train_config(Config& config);

// The first must_match key that differs between a stored run and this one, with both values
// ("train.batch: 8 in the run folder, 12 now"); nullopt when they may continue.
std::optional<std::string> first_resume_difference(const TrainConfig& stored,
                                                   const TrainConfig& requested);

}  // namespace ff
