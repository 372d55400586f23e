#include "fieldflow/core/settings.hpp"

#include <charconv>
#include <cstdio>

namespace ff {

bool Range::contains(double x) const {
  if (lo_open ? !(x > lo) : !(x >= lo)) return false;
  if (hi_open ? !(x < hi) : !(x <= hi)) return false;
  return true;
}

std::string Range::describe() const {
  auto bound = [](double x) { return settings_detail::exact(x); };
  std::string out;
  if (std::isfinite(lo)) out = (lo_open ? "> " : ">= ") + bound(lo);
  if (std::isfinite(hi))
    out += (out.empty() ? "" : " and ") + std::string(hi_open ? "< " : "<= ") + bound(hi);
  return out;
}

namespace settings_detail {

std::string exact(double x) {
  char buffer[64];
  // Whole numbers in plain digits (100000, not the shortest form 1e+05), exact below 2^53.
  if (x == std::floor(x) && std::fabs(x) < 9007199254740992.0) {
    std::snprintf(buffer, sizeof buffer, "%.0f", x);
    return buffer;
  }
  const auto r = std::to_chars(buffer, buffer + sizeof buffer, x);
  return std::string(buffer, r.ptr);
}

std::optional<ParsedInteger> parse_integer(const YAML::Node& value) {
  if (!value.IsScalar()) return std::nullopt;
  const std::string& text = value.Scalar();
  ParsedInteger p;
  size_t i = 0;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) p.negative = text[i++] == '-';
  if (i == text.size()) return std::nullopt;
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return std::nullopt;
    const unsigned long long digit = c - '0';
    if (p.magnitude > (~0ull - digit) / 10) p.too_large = true;
    if (!p.too_large) p.magnitude = p.magnitude * 10 + digit;
  }
  return p;
}

double read_number(ConfigNode& node, const std::string& key, const YAML::Node& value) {
  if (value.IsScalar()) {
    try {
      const double v = value.as<double>();
      if (std::isfinite(v)) return v;
    } catch (const YAML::Exception&) {
    }
  }
  node.fail(key, "expected a finite number, got " + yaml_text(value));
}

namespace {
std::string with_bounds(std::string kind, const Range& range) {
  const std::string bounds = range.describe();
  return bounds.empty() ? kind : kind + " " + bounds;
}
}  // namespace

std::string a_number(const Range& range, bool plural) {
  return with_bounds(plural ? "numbers" : "a number", range);
}

std::string an_integer(const Range& range, bool plural) {
  std::string kind;
  if (range.multiple_of == 2)
    kind = plural ? "even integers" : "an even integer";
  else if (range.multiple_of > 2)
    kind = (plural ? "multiples of " : "a multiple of ") + std::to_string(range.multiple_of);
  else
    kind = plural ? "integers" : "an integer";
  return with_bounds(kind, range);
}

namespace {
std::string escaped(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}
}  // namespace

std::string markdown(const std::vector<SettingsRow>& rows, bool resumable) {
  std::string out =
      resumable ? "| key | default | allowed | on resume | meaning |\n|---|---|---|---|---|\n"
                : "| key | default | allowed | meaning |\n|---|---|---|---|\n";
  for (const auto& r : rows) {
    out += "| `";
    out += r.key;
    out += "` | ";
    if (r.required) {
      out += "required";
    } else {
      out += '`';
      out += escaped(r.fallback);
      out += '`';
    }
    out += " | ";
    out += escaped(r.allowed);
    out += " | ";
    if (resumable) {
      out += r.resume;
      out += " | ";
    }
    out += escaped(r.doc);
    out += " |\n";
  }
  return out;
}

std::string yaml_text(const YAML::Node& node) {
  if (!node.IsDefined() || node.IsNull()) return "nothing";
  YAML::Emitter out;
  out.SetMapFormat(YAML::Flow);
  out.SetSeqFormat(YAML::Flow);
  out << node;
  return out.c_str();
}

YAML::Node flow_list(YAML::Node list) {
  list.SetStyle(YAML::EmitterStyle::Flow);
  return list;
}

}  // namespace settings_detail
}  // namespace ff
