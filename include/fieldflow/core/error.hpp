#pragma once
// fieldflow's one error type: every failure names the input it concerns and the problem, so the
// command line prints a single line
//   fieldflow: <context>: [<key>: ]<problem>
// context: what the user gave (a file, a flag such as --kbin, a config file, "standard output");
// key:     optional, a place inside it (a config key path "train.optimizer.lr", an HDF5 object
//          "/PartType1/Coordinates", "line 7"); empty when the context says it all;
// problem: what is wrong, in words.
// A library routine that does not know the user's name for its input throws with its own
// context (e.g. "power spectrum"); the caller that does re-throws e.in(path), which keeps the
// routine's context as the key: "grid.h5: power spectrum: <problem>".
#include <atomic>
#include <stdexcept>
#include <string>

namespace ff {

class Error : public std::runtime_error {
 public:
  Error(std::string context, std::string problem)
      : Error(std::move(context), {}, std::move(problem)) {}
  Error(std::string context, std::string key, std::string problem)
      : std::runtime_error(compose(context, key, problem)),
        context_(std::move(context)),
        key_(std::move(key)),
        problem_(std::move(problem)) {}

  const std::string& context() const { return context_; }
  const std::string& key() const { return key_; }
  const std::string& problem() const { return problem_; }
  // Older name of context().
  const std::string& input() const { return context_; }

  // The same problem about the user's input: the old context (and key) become the key.
  Error in(const std::string& context) const {
    if (context == context_) return *this;
    std::string key = context_;
    if (!key_.empty()) key += key.empty() ? key_ : ": " + key_;
    return Error(context, key, problem_);
  }

 private:
  static std::string compose(const std::string& context, const std::string& key,
                             const std::string& problem) {
    std::string out = context;
    for (const std::string* part : {&key, &problem}) {
      if (part->empty()) continue;
      if (!out.empty()) out += ": ";
      out += *part;
    }
    return out;
  }

  std::string context_;
  std::string key_;
  std::string problem_;
};

// Whether this process prints a failure. Under MPI every rank stops but only one prints: the
// Communicator (train) and simulate's MPI session clear it on the ranks that stay silent.
inline std::atomic<bool>& prints_errors() {
  static std::atomic<bool> flag{true};
  return flag;
}

}  // namespace ff
