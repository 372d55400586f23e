#pragma once
// Validation reports (docs/report.md): a folder with index.html, one PNG per figure and the CSV
// or JSON behind each figure. Every number is computed here, with the stats module; the PNGs are
// drawn by share/fieldflow/plot_report.py from those files only.
//
//   training:       is the flow any good? P(k), one-point PDF and Q(k) of flow samples against
//                   real fields, slices, loss curves, a table of test NLLs.
//   reconstruction: did the flow beat the Wiener filter? slices, P(k) of every field, r(k),
//                   transfer, residual power, PDFs, a summary table; mean and scatter over fields.
#include <cstdint>
#include <string>
#include <vector>

#include "fieldflow/stats/paint.hpp"
#include "fieldflow/train/dataset.hpp"
#include "fieldflow/train/trainer.hpp"

namespace ff {
class ConfigNode;
template <class S>
class SettingsTable;
}  // namespace ff

namespace ff::report {

// How the statistics are measured (shared by both kinds).
struct StatsSettings {
  MassAssignment mas = MassAssignment::none;  // window divided out of P(k) and B(k)
  double kbin = 1.0;                          // bin width in k_F (P(k) and Q(k) shells)
  int pdf_bins = 40;                          // one-point PDF bins
  int slice = -1;                             // x index of the slices shown (-1: the middle)
};

struct SampleSettings {
  int count = 8;             // flow samples drawn for the training report
  double temperature = 1.0;  // of the base distribution
  uint64_t seed = 0;
  double mean_tolerance = 0.0;  // > 0: as `fieldflow sample`'s (the flow conditioned on mean delta)
};

struct TrainingReport {
  std::string run_dir;              // train.run_dir: log.csv, best.h5 / checkpoint.h5
  std::string checkpoint;           // "" = run_dir/best.h5, else run_dir/checkpoint.h5
  std::vector<std::string> fields;  // grid files (stacks) of real fields: test or validation
  int max_fields = 16;              // at most this many of them are used
  std::string gaussian_fields;      // P(k) of the Gaussian baseline ("" = the fields above)
  // Single members of grid files instead of whole files (train's end-of-run report: its
  // validation fields, and its training fields for the Gaussian), used when the above are empty.
  std::vector<FieldRef> field_members, gaussian_members;
  std::string fields_name = "real fields";  // what the fields are, in captions (e.g. "validation")
  std::string linear_pk;                    // optional CSV with columns k, pk: linear theory
  SampleSettings samples;
  StatsSettings stats;
  std::string out;
  bool plot = true;           // run the plotting script (false: numbers and page only)
  std::string settings_yaml;  // recorded in report.json ("" when made in code without settings)
};

struct ReconstructionReport {
  std::vector<std::string> results;  // HDF5 files of fieldflow denoise, one per field
  StatsSettings stats;
  std::string out;
  bool plot = true;
  std::string settings_yaml;
};

// The `report:` section as written in YAML (report_settings_table(), keys in docs/report.md);
// the inputs of both kinds share one section, and a key of the other kind is refused.
struct ReportInputs {
  std::string run_dir;               // training: train.run_dir
  std::string checkpoint;            // training: "" = run_dir/best.h5, else checkpoint.h5
  std::vector<std::string> fields;   // training: grid files of real fields
  int max_fields = 16;               // training
  std::string gaussian_fields;       // training
  std::string linear_pk;             // training
  std::vector<std::string> results;  // reconstruction: fieldflow denoise result files
};

struct ReportSettings {
  std::string kind;  // training | reconstruction
  std::string out;
  bool plot = true;
  ReportInputs inputs;
  SampleSettings samples;  // training only
  StatsSettings stats;
};

const SettingsTable<ReportSettings>& report_settings_table();

// Reads and checks the `report:` section; the caller's Config::finish() refuses unknown keys.
ReportSettings read_report_settings(ConfigNode node);

// The job of each kind that the settings describe.
TrainingReport training_report(const ReportSettings& settings);
ReconstructionReport reconstruction_report(const ReportSettings& settings);

// Each writes the whole folder (and prints progress); an Error on any bad or mismatched input.
void write_training_report(const TrainingReport& report);
void write_reconstruction_report(const ReconstructionReport& report);
void write_report(const ReportSettings& settings);

// The end of `fieldflow train` (train.report): the training report of a finished run into
// run_dir/report, samples against the validation fields; skipped for a stopped run, for a run
// without validation fields, and when a rerun did no new step and the report exists. Returns
// whether it wrote one.
bool write_report_after_training(const TrainConfig& config, const TrainSummary& summary);

}  // namespace ff::report
