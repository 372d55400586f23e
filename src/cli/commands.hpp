#pragma once
// The subcommands of the fieldflow executable. Each lives in its own file, parses its arguments
// (and config, if any), calls the library and reports; main.cpp only registers them.
//
// Exit status (README "Errors"), one rule for every command:
//   0  success (and --help, --version);
//   1  an input is refused or the work failed: a file, a config key (in the file or given with
//      --set), the data, the disk, memory;
//   2  the command line itself is wrong, judged from the arguments alone: an unknown subcommand or
//      option, a missing argument, a value that is not of the option's type or outside the range
//      or set it allows, options that exclude each other, a --set without KEY=VALUE. The line ends
//      with the hint "(fieldflow SUB --help)";
//   128 + N  stopped by signal N (130 SIGINT, 143 SIGTERM): unfinished outputs are removed.
// Every failure prints exactly one line on stderr, `fieldflow: <input>: <problem>`.
//
// A command that writes calls ff::refuse_output_that_is_input (io/atomic_file.hpp) with all its
// outputs and inputs before starting work, and prints progress on stdout (stderr holds only the
// error line).
#include <CLI/CLI.hpp>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"

namespace ff::cli {

void add_paint_command(CLI::App& app);
void add_pk_command(CLI::App& app);
void add_bk_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_simulate_command(CLI::App& app);
void add_sample_command(CLI::App& app);
void add_logp_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_calibrate_command(CLI::App& app);
void add_denoise_command(CLI::App& app);

// A command-line mistake found after parsing (e.g. two options that do not go together): exit 2.
class UsageError : public Error {
 public:
  using Error::Error;
};

// Option checks with the house wording (CLI11 prefixes the option name): exit status 2.
// A whole number in [lo, hi]: "expected a whole number from 2 to 4096, got 8.5".
CLI::Validator whole_number(long lo, long hi);
// A finite number > 0 (or >= 0).
CLI::Validator positive_number();
CLI::Validator non_negative_number();

// Runs a command's work: std::bad_alloc becomes an Error naming `input` (what was being
// processed), so memory exhaustion still gives the one house line.
void run_about(const std::string& input, const std::function<void()>& work);

// Runs work; an Error a library routine threw about itself (its context is one of `routines`, e.g.
// "paint", "preprocessing") is re-said about the user's input: "snap.hdf5: paint: <problem>".
template <class Work>
void about_input(const std::string& input, std::initializer_list<const char*> routines,
                 Work&& work) {
  try {
    work();
  } catch (const Error& e) {
    for (const char* routine : routines)
      if (e.context() == routine) throw e.in(input);
    throw;
  }
}

// The arguments every config-driven subcommand takes: CONFIG.yaml [--set key=value ...].
struct ConfigArgs {
  std::string path;
  std::vector<std::string> overrides;
  Config load() const { return Config::load(path, overrides); }
};
void add_config_args(CLI::App* sub, ConfigArgs& args);

}  // namespace ff::cli
