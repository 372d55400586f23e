#pragma once
// fieldflow's one error type: every failure names the input it concerns and the problem,
// so the command line can print a single line "fieldflow: <input>: <problem>".
#include <stdexcept>
#include <string>

namespace ff {

class Error : public std::runtime_error {
 public:
  Error(std::string input, std::string problem)
      : std::runtime_error(input.empty() ? problem : input + ": " + problem),
        input_(std::move(input)),
        problem_(std::move(problem)) {}

  const std::string& input() const { return input_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string input_;
  std::string problem_;
};

}  // namespace ff
