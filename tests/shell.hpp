#pragma once
// Test helpers around files and commands: a file's whole text, and a shell command's exit status
// with its standard output and error together.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct CommandResult {
  int status;  // exit status (-1 when killed by a signal)
  std::string output;
};

inline CommandResult run_command(const std::string& command) {
  static int calls = 0;
  const std::filesystem::path log =
      std::filesystem::temp_directory_path() /
      ("ff_test_cmd_" + std::to_string(::getpid()) + "_" + std::to_string(calls++) + ".log");
  const int status = std::system((command + " > " + log.string() + " 2>&1").c_str());
  std::string text = read_text(log);
  std::filesystem::remove(log);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}
