#include "fieldflow/core/config.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fieldflow/core/error.hpp"

namespace ff {
namespace {

std::string describe(const YAML::Node& node) {
  if (node.IsScalar()) return "\"" + node.Scalar() + "\"";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing";
}

std::vector<std::string> split_path(const std::string& dotted) {
  std::vector<std::string> parts;
  std::stringstream ss(dotted);
  std::string part;
  while (std::getline(ss, part, '.')) parts.push_back(part);
  return parts;
}

void apply_override(YAML::Node& root, const std::string& source, const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(source, "--set expects key=value, got \"" + text + "\"");
  const std::string key = text.substr(0, eq);
  const std::string value_text = text.substr(eq + 1);
  if (value_text.find_first_not_of(" \t") == std::string::npos)
    throw Error(source, "--set " + key + "=: empty value (leave the key out to use its default)");
  YAML::Node value;
  try {
    value = YAML::Load(value_text);
  } catch (const YAML::Exception& e) {
    throw Error(source, "--set " + key + ": value is not valid YAML: " + e.msg);
  }
  const auto parts = split_path(key);
  for (const auto& p : parts)
    if (p.empty()) throw Error(source, "--set: malformed key \"" + key + "\"");
  // yaml-cpp nodes are handles: walk down by reassigning copies of child handles.
  std::vector<YAML::Node> chain{root};
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    YAML::Node child = chain.back()[parts[i]];
    if (child.IsDefined() && !child.IsMap() && !child.IsNull())
      throw Error(source, "--set " + key + ": " + parts[i] + " is not a mapping");
    if (!child.IsDefined() || child.IsNull()) {
      chain.back()[parts[i]] = YAML::Node(YAML::NodeType::Map);
      child = chain.back()[parts[i]];
    }
    chain.push_back(child);
  }
  chain.back()[parts.back()] = value;
}

// yaml-cpp keeps every entry of a mapping but lookups see the first: refuse repeated keys.
void check_unique_keys(const YAML::Node& node, const std::string& path, const std::string& source) {
  if (node.IsSequence())
    for (const auto& item : node) check_unique_keys(item, path, source);
  if (!node.IsMap()) return;
  std::set<std::string> seen;
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const std::string full = path.empty() ? key : path + "." + key;
    if (!seen.insert(key).second)
      throw Error(source, full + ": key given twice (again at line " +
                              std::to_string(kv.first.Mark().line + 1) + ")");
    check_unique_keys(kv.second, full, source);
  }
}

void check_used(const YAML::Node& node, const std::string& path, const std::set<std::string>& used,
                const std::string& source) {
  if (!node.IsMap()) return;
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const std::string full = path.empty() ? key : path + "." + key;
    if (!used.count(full)) throw Error(source, full + ": unknown key");
    check_used(kv.second, full, used, source);
  }
}

}  // namespace

Config Config::parse(const std::string& yaml_text, const std::string& source,
                     const std::vector<std::string>& overrides) {
  Config c;
  c.state_ = std::make_shared<State>();
  c.state_->source = source;
  try {
    c.state_->yaml = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw Error(source, "malformed YAML at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  if (c.state_->yaml.IsNull()) c.state_->yaml = YAML::Node(YAML::NodeType::Map);
  if (!c.state_->yaml.IsMap()) throw Error(source, "expected a mapping of keys at the top level");
  check_unique_keys(c.state_->yaml, "", source);
  for (const auto& o : overrides) apply_override(c.state_->yaml, source, o);
  return c;
}

Config Config::load(const std::string& path, const std::vector<std::string>& overrides) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (fs::is_directory(status)) throw Error(path, "is a directory, expected a YAML config file");
  if (fs::exists(status) && !fs::is_regular_file(status))
    throw Error(path, "not a regular file, expected a YAML config file");
  std::ifstream in(path);
  if (!in) throw Error(path, "cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path, overrides);
}

ConfigNode Config::root() {
  return ConfigNode(state_, state_->yaml, "");
}

void Config::finish() const {
  check_used(state_->yaml, "", state_->used, state_->source);
}

ConfigNode::ConfigNode(std::shared_ptr<Config::State> state, YAML::Node node, std::string path)
    : state_(std::move(state)), node_(std::move(node)), path_(std::move(path)) {}

std::string ConfigNode::path_of(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

void ConfigNode::fail(const std::string& key, const std::string& problem) const {
  throw Error(state_->source, path_of(key), problem);
}

bool ConfigNode::has(const std::string& key) const {
  return node_.IsMap() && node_[key].IsDefined() && !node_[key].IsNull();
}

ConfigNode ConfigNode::section(const std::string& key) {
  state_->used.insert(path_of(key));
  if (!has(key)) return ConfigNode(state_, YAML::Node(YAML::NodeType::Map), path_of(key));
  YAML::Node child = node_[key];
  if (!child.IsMap()) fail(key, "expected a mapping, got " + describe(child));
  return ConfigNode(state_, child, path_of(key));
}

std::optional<YAML::Node> ConfigNode::find(const std::string& key) {
  state_->used.insert(path_of(key));
  if (!node_.IsMap() || !node_[key].IsDefined()) return std::nullopt;
  const YAML::Node value = node_[key];
  if (value.IsNull()) fail(key, "no value given (leave the key out to use its default)");
  return value;
}

std::optional<YAML::Node> ConfigNode::lookup(const std::string& key, bool required) {
  auto value = find(key);
  if (!value && required) fail(key, "required key is missing");
  return value;
}

namespace {
std::optional<double> as_number(const YAML::Node& n) {
  if (!n.IsScalar()) return std::nullopt;
  try {
    const double v = n.as<double>();
    if (!std::isfinite(v)) return std::nullopt;
    return v;
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
}
std::optional<long> as_integer(const YAML::Node& n) {
  if (!n.IsScalar()) return std::nullopt;
  try {
    return n.as<long>();
  } catch (const YAML::Exception&) {
    return std::nullopt;
  }
}
}  // namespace

double ConfigNode::number(const std::string& key, std::optional<double> fallback) {
  auto n = lookup(key, !fallback);
  if (!n) return *fallback;
  auto v = as_number(*n);
  if (!v) fail(key, "expected a number, got " + describe(*n));
  return *v;
}

double ConfigNode::positive(const std::string& key, std::optional<double> fallback) {
  auto n = lookup(key, !fallback);
  if (!n) return *fallback;
  auto v = as_number(*n);
  if (!v || *v <= 0) fail(key, "expected a positive number, got " + describe(*n));
  return *v;
}

double ConfigNode::non_negative(const std::string& key, std::optional<double> fallback) {
  auto n = lookup(key, !fallback);
  if (!n) return *fallback;
  auto v = as_number(*n);
  if (!v || *v < 0) fail(key, "expected a non-negative number, got " + describe(*n));
  return *v;
}

long ConfigNode::integer(const std::string& key, std::optional<long> fallback) {
  auto n = lookup(key, !fallback);
  if (!n) return *fallback;
  auto v = as_integer(*n);
  if (!v) fail(key, "expected an integer, got " + describe(*n));
  return *v;
}

long ConfigNode::positive_integer(const std::string& key, std::optional<long> fallback) {
  auto n = lookup(key, !fallback);
  if (!n) return *fallback;
  auto v = as_integer(*n);
  if (!v || *v <= 0) fail(key, "expected a positive integer, got " + describe(*n));
  return *v;
}

bool ConfigNode::flag(const std::string& key, std::optional<bool> fallback) {
  auto n = lookup(key, !fallback);
  if (!n) return *fallback;
  try {
    if (n->IsScalar()) return n->as<bool>();
  } catch (const YAML::Exception&) {
  }
  fail(key, "expected true or false, got " + describe(*n));
}

std::string ConfigNode::text(const std::string& key, std::optional<std::string> fallback) {
  auto n = lookup(key, !fallback);
  if (!n) return *fallback;
  if (!n->IsScalar()) fail(key, "expected a string, got " + describe(*n));
  return n->Scalar();
}

std::string ConfigNode::choice(const std::string& key, const std::vector<std::string>& options,
                               std::optional<std::string> fallback) {
  const std::string v = text(key, fallback);
  for (const auto& o : options)
    if (o == v) return v;
  std::string list;
  for (const auto& o : options) list += (list.empty() ? "" : ", ") + o;
  fail(key, "expected one of " + list + ", got \"" + v + "\"");
}

std::vector<double> ConfigNode::numbers(const std::string& key,
                                        std::optional<std::vector<double>> fallback) {
  auto n = lookup(key, !fallback);
  if (!n) return *fallback;
  if (!n->IsSequence()) fail(key, "expected a list of numbers, got " + describe(*n));
  std::vector<double> out;
  for (const auto& item : *n) {
    auto v = as_number(item);
    if (!v) fail(key, "expected a list of numbers, got element " + describe(item));
    out.push_back(*v);
  }
  return out;
}

std::vector<long> ConfigNode::integers(const std::string& key,
                                       std::optional<std::vector<long>> fallback) {
  auto n = lookup(key, !fallback);
  if (!n) return *fallback;
  if (!n->IsSequence()) fail(key, "expected a list of integers, got " + describe(*n));
  std::vector<long> out;
  for (const auto& item : *n) {
    auto v = as_integer(item);
    if (!v) fail(key, "expected a list of integers, got element " + describe(item));
    out.push_back(*v);
  }
  return out;
}

std::vector<std::string> ConfigNode::texts(const std::string& key,
                                           std::optional<std::vector<std::string>> fallback) {
  auto n = lookup(key, !fallback);
  if (!n) return *fallback;
  if (n->IsScalar()) return {n->Scalar()};
  if (!n->IsSequence()) fail(key, "expected a list of strings, got " + describe(*n));
  std::vector<std::string> out;
  for (const auto& item : *n) {
    if (!item.IsScalar()) fail(key, "expected a list of strings, got element " + describe(item));
    out.push_back(item.Scalar());
  }
  return out;
}

}  // namespace ff
