// fieldflow report CONFIG.yaml [--set key=value ...]: a validation report folder (index.html,
// PNGs, the numbers behind them) of a training run or of reconstructions (docs/report.md).
#include "fieldflow/report/report.hpp"

#include "commands.hpp"

namespace ff::cli {

namespace {
void run_report(const ConfigArgs& args) {
  Config config = args.load();
  const report::ReportSettings settings =
      report::read_report_settings(config.root().section("report"));
  config.finish();
  report::write_report(settings);
}
}  // namespace

void add_report_command(CLI::App& app) {
  auto args = std::make_shared<ConfigArgs>();
  CLI::App* sub = app.add_subcommand(
      "report", "Validation report (HTML, PNG figures, CSV) of a training run or reconstructions");
  add_config_args(sub, *args);
  sub->footer(
      "report: {kind: training | reconstruction, inputs: {...}, out: DIR}; see docs/report.md.");
  sub->callback([args] { run_report(*args); });
}

}  // namespace ff::cli
