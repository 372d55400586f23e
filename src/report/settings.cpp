// The `report:` section (docs/report.md). A plain struct and this one read function until the
// settings declaration table lands.
#include "fieldflow/core/config.hpp"
#include "fieldflow/report/report.hpp"

namespace ff::report {

namespace {

StatsSettings read_stats(ConfigNode node) {
  StatsSettings s;
  s.mas = parse_mass_assignment(node.choice("mas", {"none", "ngp", "cic", "tsc"}, "none"));
  s.kbin = node.positive("kbin", 1.0);
  s.pdf_bins = int(node.positive_integer("pdf_bins", 40));
  s.slice = int(node.integer("slice", -1));
  if (s.slice < -1) node.fail("slice", "expected -1 (the middle) or an index >= 0");
  return s;
}

}  // namespace

ReportSettings read_report_settings(ConfigNode node) {
  ReportSettings r;
  r.kind = node.choice("kind", {"training", "reconstruction"});
  const std::string out = node.text("out");
  const bool plot = node.flag("plot", true);
  const StatsSettings stats = read_stats(node.section("stats"));
  ConfigNode inputs = node.section("inputs");
  if (r.kind == "training") {
    TrainingReport& t = r.training;
    t.run_dir = inputs.text("run_dir");
    t.checkpoint = inputs.text("checkpoint", "");
    t.fields = inputs.texts("fields");
    if (t.fields.empty()) inputs.fail("fields", "expected at least one grid file");
    t.max_fields = int(inputs.positive_integer("max_fields", 16));
    t.gaussian_fields = inputs.text("gaussian_fields", "");
    t.linear_pk = inputs.text("linear_pk", "");
    ConfigNode samples = node.section("samples");
    t.samples.count = int(samples.positive_integer("count", 8));
    t.samples.temperature = samples.positive("temperature", 1.0);
    t.samples.seed = uint64_t(samples.integer("seed", 0));
    t.stats = stats;
    t.out = out;
    t.plot = plot;
  } else {
    ReconstructionReport& c = r.reconstruction;
    c.results = inputs.texts("results");
    if (c.results.empty()) inputs.fail("results", "expected at least one denoise result file");
    c.stats = stats;
    c.out = out;
    c.plot = plot;
  }
  return r;
}

void write_report(const ReportSettings& settings) {
  if (settings.kind == "training")
    write_training_report(settings.training);
  else
    write_reconstruction_report(settings.reconstruction);
}

}  // namespace ff::report
