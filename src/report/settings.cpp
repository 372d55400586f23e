// The `report:` section (docs/report.md): one declaration per key.
#include "fieldflow/core/settings.hpp"

#include "fieldflow/report/report.hpp"

namespace ff::report {

namespace {

const SettingsTable<StatsSettings>& stats_table() {
  using S = StatsSettings;
  static const auto table =
      SettingsTable<S>("stats", "How the statistics are measured.")
          .choice("mas", &S::mas, MassAssignment::none,
                  {{"none", MassAssignment::none},
                   {"ngp", MassAssignment::ngp},
                   {"cic", MassAssignment::cic},
                   {"tsc", MassAssignment::tsc}},
                  "window divided out of P(k) and B(k) (`none` for flow samples and "
                  "reconstructions, which are not painted)")
          .number("kbin", &S::kbin, 1.0, Range::positive(),
                  "bin width of P(k) and spacing/half-width of the bispectrum shells, in k_F")
          .integer("pdf_bins", &S::pdf_bins, 40, Range::between(1, 100000),
                   "bins of the one-point PDFs")
          .integer("slice", &S::slice, -1, Range::at_least(-1),
                   "x index of the slices shown (-1: the middle plane)");
  return table;
}

const SettingsTable<SampleSettings>& samples_table() {
  using S = SampleSettings;
  static const auto table =
      SettingsTable<S>("samples", "Flow samples of the training report.")
          .integer("count", &S::count, 8, Range::between(1, 100000), "flow samples drawn")
          .number("temperature", &S::temperature, 1.0, Range::positive(),
                  "of the base distribution")
          .integer("seed", &S::seed, 0, Range::non_negative(),
                   "sample i is a pure function of (seed, i), as `fieldflow sample`")
          .number("mean_tolerance", &S::mean_tolerance, 0.0, Range::non_negative(),
                  "> 0: only draws whose mean delta lies within +-this, as `fieldflow sample` "
                  "with this sample.mean_tolerance (docs/flow.md)");
  return table;
}

const SettingsTable<ReportInputs>& inputs_table() {
  using S = ReportInputs;
  static const auto table =
      SettingsTable<S>("inputs", "What the report judges (the keys of its kind only).")
          .text("run_dir", &S::run_dir, "",
                "training (required): train's run folder: `log.csv` for the loss curves, the "
                "checkpoint")
          .text("checkpoint", &S::checkpoint, "",
                "training: the flow to judge (empty: `run_dir/best.h5`, else "
                "`run_dir/checkpoint.h5`)")
          .texts("fields", &S::fields, std::vector<std::string>{},
                 "training (required): grid files (or stacks) of real fields: the test or "
                 "validation set, never training fields")
          .integer("max_fields", &S::max_fields, 16, Range::between(1, 1000000),
                   "training: at most this many of them")
          .text("gaussian_fields", &S::gaussian_fields, "",
                "training: grid file whose preprocessed P(k) defines the Gaussian baseline of "
                "the NLL table (use the training set; empty: the fields above, optimistic)")
          .text("linear_pk", &S::linear_pk, "",
                "training: CSV with columns `k,pk` (h/Mpc, (Mpc/h)^3) drawn on the P(k) figure")
          .texts("results", &S::results, std::vector<std::string>{},
                 "reconstruction (required): files written by `fieldflow denoise`, one per "
                 "field; `<stem>_summary.json` beside each is read when present");
  return table;
}

}  // namespace

const SettingsTable<ReportSettings>& report_settings_table() {
  using S = ReportSettings;
  static const auto table =
      SettingsTable<S>("report", "`fieldflow report`: a validation report folder.")
          .one_shot()
          .choice("kind", &S::kind, "training", {"training", "reconstruction"},
                  "which report: of a training run or of reconstructions")
          .text("out", &S::out, required, "report folder (created)")
          .flag("plot", &S::plot, true,
                "run the plotting script (false: the numbers and the page only)")
          .section("inputs", &S::inputs, inputs_table())
          .section("samples", &S::samples, samples_table())
          .section("stats", &S::stats, stats_table())
          .check([](const S& s, const Reject& reject) {
            const ReportInputs& in = s.inputs;
            if (s.kind == "training") {
              if (in.run_dir.empty()) reject("inputs.run_dir", "required when kind is training");
              if (in.fields.empty()) reject("inputs.fields", "required when kind is training");
              if (!in.results.empty()) reject("inputs.results", "only for kind: reconstruction");
            } else {
              if (in.results.empty())
                reject("inputs.results", "required when kind is reconstruction");
              // Every input but results is a training key: all must keep their defaults.
              ReportInputs training_keys = in;
              training_keys.results.clear();
              if (inputs_table().first_difference(training_keys, inputs_table().defaults()))
                reject("inputs",
                       "run_dir, checkpoint, fields, max_fields, gaussian_fields and "
                       "linear_pk are only for kind: training");
              if (samples_table().first_difference(s.samples, samples_table().defaults()))
                reject("samples", "only for kind: training");
            }
          });
  return table;
}

ReportSettings read_report_settings(ConfigNode node) {
  return report_settings_table().read(node);
}

TrainingReport training_report(const ReportSettings& s) {
  TrainingReport t;
  t.run_dir = s.inputs.run_dir;
  t.checkpoint = s.inputs.checkpoint;
  t.fields = s.inputs.fields;
  t.max_fields = s.inputs.max_fields;
  t.gaussian_fields = s.inputs.gaussian_fields;
  t.linear_pk = s.inputs.linear_pk;
  t.samples = s.samples;
  t.stats = s.stats;
  t.out = s.out;
  t.plot = s.plot;
  t.settings_yaml = report_settings_table().dump_text(s, "report");
  return t;
}

ReconstructionReport reconstruction_report(const ReportSettings& s) {
  ReconstructionReport c;
  c.results = s.inputs.results;
  c.stats = s.stats;
  c.out = s.out;
  c.plot = s.plot;
  c.settings_yaml = report_settings_table().dump_text(s, "report");
  return c;
}

void write_report(const ReportSettings& settings) {
  if (settings.kind == "training")
    write_training_report(training_report(settings));
  else
    write_reconstruction_report(reconstruction_report(settings));
}

}  // namespace ff::report
