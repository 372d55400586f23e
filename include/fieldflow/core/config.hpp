#pragma once
// A small typed layer over yaml-cpp. Subcommands read their YAML once into plain structs through
// ConfigNode; every key read is recorded, and Config::finish() rejects the keys nobody asked for.
// Errors name the file and the key's full path:
//   run.yaml: train.optimizer.lr: expected a positive number, got "fast"
#include <yaml-cpp/yaml.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ff {

class ConfigNode;

class Config {
 public:
  // Loads a YAML file (a missing or malformed file, or a path that is not a regular file, is an
  // Error naming it), then applies overrides "dotted.key=value" (value parsed as YAML, never
  // empty) in order. Duplicate keys in a mapping are refused with their line.
  static Config load(const std::string& path, const std::vector<std::string>& overrides = {});
  // The same from text; source names it in errors.
  static Config parse(const std::string& yaml_text, const std::string& source,
                      const std::vector<std::string>& overrides = {});

  ConfigNode root();
  // Throws an Error naming the first key present in the YAML that no ConfigNode read.
  void finish() const;
  const std::string& source() const { return state_->source; }

  struct State {
    std::string source;
    YAML::Node yaml;
    std::set<std::string> used;  // full dotted paths that were read
  };

 private:
  std::shared_ptr<State> state_;
};

class ConfigNode {
 public:
  ConfigNode(std::shared_ptr<Config::State> state, YAML::Node node, std::string path);

  bool has(const std::string& key) const;
  // The value of key, marked as read; nullopt when absent. A key given without a value
  // (`key:` or `key: ~`) is an error: leaving the key out is how to ask for its default.
  std::optional<YAML::Node> find(const std::string& key);
  // A nested mapping; a missing key gives an empty section (so its keys take their defaults).
  ConfigNode section(const std::string& key);

  double number(const std::string& key, std::optional<double> fallback = std::nullopt);
  double positive(const std::string& key, std::optional<double> fallback = std::nullopt);
  double non_negative(const std::string& key, std::optional<double> fallback = std::nullopt);
  long integer(const std::string& key, std::optional<long> fallback = std::nullopt);
  long positive_integer(const std::string& key, std::optional<long> fallback = std::nullopt);
  bool flag(const std::string& key, std::optional<bool> fallback = std::nullopt);
  std::string text(const std::string& key, std::optional<std::string> fallback = std::nullopt);
  // One of the listed words.
  std::string choice(const std::string& key, const std::vector<std::string>& options,
                     std::optional<std::string> fallback = std::nullopt);
  std::vector<double> numbers(const std::string& key,
                              std::optional<std::vector<double>> fallback = std::nullopt);
  std::vector<long> integers(const std::string& key,
                             std::optional<std::vector<long>> fallback = std::nullopt);
  std::vector<std::string> texts(const std::string& key,
                                 std::optional<std::vector<std::string>> fallback = std::nullopt);

  // Error about this key, in the house format.
  [[noreturn]] void fail(const std::string& key, const std::string& problem) const;
  std::string path_of(const std::string& key) const;

 private:
  // The scalar node for key, or nullopt when absent (marks the key as used).
  std::optional<YAML::Node> lookup(const std::string& key, bool required);

  std::shared_ptr<Config::State> state_;
  YAML::Node node_;
  std::string path_;
};

}  // namespace ff
