#pragma once
// `fieldflow denoise`: one observation reconstructed by the Wiener filter, the flow-prior MAP and
// their combination (WF modes below k_split, MAP modes above), with the outputs of docs/denoise.md:
// one HDF5 file, a metrics CSV per k bin and a JSON summary.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "fieldflow/core/settings.hpp"
#include "fieldflow/recon/map.hpp"
#include "fieldflow/recon/observation.hpp"
#include "fieldflow/recon/posterior.hpp"

namespace ff {

// The `denoise:` section (docs/denoise.md; the key table is denoise_settings_table()'s).
struct DenoiseSettings {
  std::string checkpoint;
  // A known field (truth.grid non-empty): data are drawn from it ...
  std::string truth_grid;
  int truth_index = 0;
  // ... or real data with no truth.
  std::string data_grid, data_mask;
  double data_noise_sigma = 1.0;

  double noise_sigma = 1.0;  // white noise, units of delta
  uint64_t noise_seed = 1;
  std::string noise_sigma_map;  // per-voxel sigma (HDF5), replaces noise_sigma
  MaskSettings mask;

  std::string prior_power = "checkpoint";  // checkpoint | file | linear
  std::string prior_power_file;            // prior_power: file
  int prior_samples = 32;                  // checkpoint without a delta-space P(k): flow samples
  uint64_t prior_seed = 11;

  double wiener_tolerance = 1e-6;
  int wiener_max_iterations = 2000;
  MapSettings map;
  // A box larger than the flow's training grid (same cell size): the flow on the whole periodic
  // box, or overlapping tiles of the training grid (recon/tiles.hpp) stitched, with the WF's modes
  // below the tile's fundamental wavenumber.
  std::string large_box = "whole";  // whole | tiles
  int tiles_overlap = 8;            // least overlap of neighbouring tiles, voxels
  double k_split_hmpc = 0.0;        // combined estimate: WF below, MAP above
  std::string validation_grid;      // or choose k_split on these fields (never the test set)
  std::vector<long> validation_indices = {0, 1, 2, 3};

  PosteriorSettings posterior;  // posterior samples (docs/posterior.md); samples 0 = none

  std::string out;
  bool report = true;  // the reconstruction report beside out (the command line writes it)

  std::string source;  // not a key: the config file, for messages
};

// Every key of `denoise:` declared once (core/settings.hpp): read, checks, dump, docs table.
const SettingsTable<DenoiseSettings>& denoise_settings_table();
// Reads the `denoise:` section (Config::finish() then refuses unknown keys).
DenoiseSettings read_denoise_settings(ConfigNode node);
// The settings used, as YAML under `denoise:` (provenance of the outputs).
std::string denoise_settings_yaml(const DenoiseSettings& s);

// The combined estimate: Fourier modes of `low` with |k| < k_split, of `high` above.
std::vector<double> combine_by_wavenumber(const std::vector<double>& low,
                                          const std::vector<double>& high, int n,
                                          double box_size_mpch, double k_split_hmpc);

// The split that minimises the summed squared error of the combination over fields: for each field
// (wf, map, truth), candidates are the bin edges k = i k_F.
double choose_k_split(const std::vector<std::vector<double>>& wf,
                      const std::vector<std::vector<double>>& map,
                      const std::vector<std::vector<double>>& truth, int n, double box_size_mpch);

struct DenoiseSummary {
  int wiener_iterations = 0;
  double wiener_residual = 0.0, wiener_seconds = 0.0;
  int map_iterations = 0;
  double map_seconds = 0.0;
  std::string map_stop;
  // Masked voxels of the MAP beyond the training fields' range of y (map.runaway); -1: the
  // checkpoint records no range.
  long map_masked_beyond_training = -1;
  double k_split_hmpc = 0.0;
  std::string metrics_path, summary_path;
  bool posterior = false;  // sampled
  double posterior_acceptance = 0.0, posterior_seconds = 0.0;
  long posterior_divergences = 0;
};

// Runs everything and writes settings.out, its metrics CSV (<stem>_metrics.csv) and summary
// (<stem>_summary.json). Progress lines go to log. Posterior chains are shared over the processes
// of `sharing` (every process reconstructs the WF and MAP; only rank 0 writes).
DenoiseSummary run_denoise(const DenoiseSettings& settings, std::FILE* log,
                           const ChainSharing& sharing = {});

}  // namespace ff
