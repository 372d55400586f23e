// fieldflow: learn the density of 3D matter fields with normalizing flows and use it to
// reconstruct masked, noisy observations. See README.md.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <new>
#include <string>

#include "commands.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/nn/simd.hpp"

namespace ff::cli {

void add_config_args(CLI::App* sub, ConfigArgs& args) {
  sub->add_option("config", args.path, "YAML configuration file")->required();
  sub->add_option("--set", args.overrides,
                  "Override a config key, e.g. --set train.optimizer.lr=1e-3 (repeatable)")
      ->type_name("KEY=VALUE")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

}  // namespace ff::cli

int main(int argc, char** argv) {
  CLI::App app{
      "fieldflow: normalizing-flow priors for 3D cosmological density fields.\n"
      "Paint snapshots, measure power spectra, simulate, train, sample and denoise."};
  app.require_subcommand(1);
  // One line per error, like every other fieldflow error (CLI11 adds a second line by default).
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("fieldflow: ") + e.what() + "\n";
  });
  // The SIMD target is chosen at run time (nn/simd.hpp): say which one this CPU gets.
  app.set_version_flag(
      "--version", [] { return "fieldflow 0.1.0 (SIMD target " + ff::simd_target_name() + ")"; });
  ff::cli::add_paint_command(app);
  ff::cli::add_pk_command(app);
  ff::cli::add_bk_command(app);
  ff::cli::add_simulate_command(app);
  ff::cli::add_sample_command(app);
  ff::cli::add_logp_command(app);
  ff::cli::add_denoise_command(app);
  ff::cli::add_report_command(app);
  const auto is_subcommand = [&app](const std::string& name) {
    for (const CLI::App* sub : app.get_subcommands({}))
      if (sub->check_name(name)) return true;
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !is_subcommand(argv[1])) {
    std::fprintf(stderr, "fieldflow: %s: unknown subcommand (fieldflow --help lists them)\n",
                 argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Help and version exit 0; a malformed command line exits 2, as documented in the README.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const ff::Error& e) {
    std::fprintf(stderr, "fieldflow: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "fieldflow: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fieldflow: %s\n", e.what());
    return 1;
  }
  return 0;
}
