#pragma once
// The subcommands of the fieldflow executable. Each lives in its own file, parses its arguments
// (and config, if any), calls the library and reports; main.cpp only registers them.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "fieldflow/core/config.hpp"

namespace ff::cli {

void add_paint_command(CLI::App& app);
void add_pk_command(CLI::App& app);
void add_bk_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_simulate_command(CLI::App& app);
void add_sample_command(CLI::App& app);
void add_logp_command(CLI::App& app);
void add_denoise_command(CLI::App& app);

// The arguments every config-driven subcommand takes: CONFIG.yaml [--set key=value ...].
struct ConfigArgs {
  std::string path;
  std::vector<std::string> overrides;
  Config load() const { return Config::load(path, overrides); }
};
void add_config_args(CLI::App* sub, ConfigArgs& args);

}  // namespace ff::cli
