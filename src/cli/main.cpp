// fieldflow: learn the density of 3D matter fields with normalizing flows and use it to
// reconstruct masked, noisy observations. See README.md.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <string>

#include "commands.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/simd.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/train/communicator.hpp"

namespace ff::cli {

namespace {
std::optional<double> parse_number(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) return std::nullopt;
  return v;
}
}  // namespace

CLI::Validator whole_number(long lo, long hi) {
  const std::string range = std::to_string(lo) + " to " + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        const auto v = parse_number(text);
        if (!v || *v != std::floor(*v) || *v < double(lo) || *v > double(hi))
          return "expected a whole number from " + range + ", got " + text;
        return "";
      },
      "INT in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

CLI::Validator positive_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto v = parse_number(text);
        return v && *v > 0 ? "" : "expected a positive finite number, got " + text;
      },
      "NUMBER > 0");
}

CLI::Validator non_negative_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto v = parse_number(text);
        return v && *v >= 0 ? "" : "expected a finite number >= 0, got " + text;
      },
      "NUMBER >= 0");
}

void run_about(const std::string& input, const std::function<void()>& work) {
  try {
    work();
  } catch (const std::bad_alloc&) {
    throw Error(input, "out of memory while processing it (the machine cannot give what it needs)");
  }
}

void add_config_args(CLI::App* sub, ConfigArgs& args) {
  sub->add_option("config", args.path, "YAML configuration file")->required();
  sub->add_option("--set", args.overrides,
                  "Override a config key, e.g. --set train.lr=1e-3 (repeatable)")
      ->type_name("KEY=VALUE")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            const auto eq = text.find('=');
            if (eq == std::string::npos || eq == 0)
              return "expected KEY=VALUE, got \"" + text + "\"";
            return "";
          },
          "KEY=VALUE"));
}

}  // namespace ff::cli

namespace {

void print_error(const std::string& message) {
  if (!ff::prints_errors().load()) return;
  std::fprintf(stderr, "fieldflow: %s\n", ff::printable(message).c_str());
}

// The subcommand the command line names, for the --help hint ("" when none).
std::string subcommand_named(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    for (const CLI::App* sub : app.get_subcommands({}))
      if (sub->check_name(argv[i])) return sub->get_name();
  return "";
}

// Standard output is checked once at the end: data lost on a full disk or a closed pipe is an
// error, not a success.
int finish_stdout(int status) {
  errno = 0;
  const bool failed = std::fflush(stdout) != 0 || std::ferror(stdout);
  if (failed && status == 0) {
    const int err = errno;
    print_error(std::string("standard output: cannot write: ") +
                (err ? std::strerror(err) : "write error"));
    return 1;
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  ff::remove_temporaries_on_signal();
  CLI::App app{
      "fieldflow: normalizing-flow priors for 3D cosmological density fields.\n"
      "Simulate, paint snapshots, measure power spectra, sample and score fields with trained "
      "flows, and denoise observations."};
  app.require_subcommand(1);
  // The SIMD target is chosen at run time (core/simd.hpp): say which one this CPU gets.
  app.set_version_flag(
      "--version", [] { return "fieldflow 0.1.0 (SIMD target " + ff::simd_target_name() + ")"; });
  ff::cli::add_paint_command(app);
  ff::cli::add_pk_command(app);
  ff::cli::add_bk_command(app);
  ff::cli::add_simulate_command(app);
  ff::cli::add_sample_command(app);
  ff::cli::add_logp_command(app);
  ff::cli::add_train_command(app);
  ff::cli::add_calibrate_command(app);
  ff::cli::add_denoise_command(app);
  ff::cli::add_report_command(app);
  const std::string sub = subcommand_named(app, argc, argv);
  const std::string hint = " (fieldflow " + (sub.empty() ? "" : sub + " ") + "--help)";
  if (argc > 1 && argv[1][0] != '-' && sub != argv[1]) {
    print_error(std::string(argv[1]) + ": unknown subcommand (fieldflow --help lists them)");
    return 2;
  }
  int status = 0;
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return finish_stdout(app.exit(e));
  } catch (const CLI::CallForAllHelp& e) {
    return finish_stdout(app.exit(e));
  } catch (const CLI::CallForVersion& e) {
    return finish_stdout(app.exit(e));
  } catch (const CLI::ParseError& e) {
    print_error(e.what() + hint);
    status = 2;
  } catch (const ff::cli::UsageError& e) {
    print_error(e.what() + hint);
    status = 2;
  } catch (const ff::OtherRankFailed&) {
    status = 1;  // under MPI the failing rank printed the one line
  } catch (const ff::Error& e) {
    print_error(e.what());
    status = 1;
  } catch (const std::bad_alloc&) {
    print_error((sub.empty() ? std::string("fieldflow") : sub) + ": out of memory");
    status = 1;
  } catch (const std::exception& e) {
    print_error(e.what());
    status = 1;
  }
  return finish_stdout(status);
}
