#pragma once
// The YAML of the flow module, declared once (core/settings.hpp): the `flow:` section (an
// architecture, as configs and checkpoints hold it) and the `sample:` section of `fieldflow
// sample`. docs/flow.md's key tables come from these declarations.
#include <cstdint>
#include <string>
#include <vector>

#include "fieldflow/flow/flow.hpp"
#include "fieldflow/io/grid_file.hpp"

namespace ff {

class Config;
template <class S>
class SettingsTable;

// The `flow:` section as written; read_flow_spec() turns it into the FlowSpec a flow is built
// from (per-level lists into levels, activation into negative_slope, power_csv into the lists).
struct FlowSettings {
  int grid = 32;
  int channels = 1;
  int kernel = 3;
  struct Levels {
    std::vector<int> checkerboard_couplings{2, 2, 4};
    std::vector<int> channel_couplings{2, 2, 0};
    std::vector<int> hidden_checkerboard{16, 32, 64};
    std::vector<int> hidden_channel{32, 64, 0};
  } levels;
  MixingKind mixing = MixingKind::none;
  std::string mixing_init = "rotation";
  bool actnorm = false;
  bool global_context = false;
  ScaleBound scale_bound = ScaleBound::tanh;
  double clamp = 2.0;
  std::string activation = "relu";
  double leaky_slope = 0.01;
  uint64_t seed = 0;
  int calibration_bins = 0;
  struct Base {
    BaseKind kind = BaseKind::standard_normal;
    bool power_measured = false;  // power: measured (fieldflow train measures P(k))
    double box_size_mpch = 0.0;
    std::string power_csv;
    std::vector<double> k_hmpc, pk;
    double pk0 = 0.0;
  } base;
};
const SettingsTable<FlowSettings>& flow_settings_table();

// `fieldflow sample`'s section.
struct SampleSettings {
  std::string checkpoint;
  int count = 1;
  uint64_t seed = 0;
  double temperature = 1.0;
  bool zero_mean = true;        // each sample's delta taken against its own mean density
  double mean_tolerance = 0.0;  // > 0: only draws with |mean delta| <= this are kept
  std::string out;
  GridPrecision precision = GridPrecision::float32;
};
const SettingsTable<SampleSettings>& sample_settings_table();
// The `sample:` section of config (unknown keys refused).
SampleSettings read_sample_settings(Config& config);
// As YAML under `sample:` (the provenance of the samples).
std::string sample_settings_yaml(const SampleSettings& s);

}  // namespace ff
