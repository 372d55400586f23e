#pragma once
// Settings declared once (Gadget-4's parameter table, in C++). A settings struct S gets one
// SettingsTable<S> listing every field once: YAML key, member, default, allowed values, a one-line
// doc and whether it may change when a run is resumed. That declaration drives
//   read(node)                  YAML -> S, refusing wrong types and values with the key's path
//   validate(s, source)         the same checks on a struct made in code
//   dump(s) / dump_text(s)      the settings actually used, as YAML (read() gives them back
//   exactly) first_resume_difference()   the first must_match key on which two settings differ
//   markdown_table()            the key table of docs/*.md (tests/test_settings_docs.cpp)
//
//   struct Cosmo { double omega_m; int steps; std::string out; Mode mode; };
//   const SettingsTable<Cosmo>& cosmo_table() {
//     static const auto t = SettingsTable<Cosmo>("cosmo", "The background cosmology.")
//       .number("omega_m", &Cosmo::omega_m, 0.3175, Range::between(0, 1).open_below(),
//               "matter density today")
//       .integer("steps", &Cosmo::steps, 20, Range::at_least(1), "KDK steps")
//       .text("out", &Cosmo::out, "out/cosmo", "output folder", Resume::may_change)
//       .choice("mode", &Cosmo::mode, Mode::fast, {{"fast", Mode::fast}, {"exact", Mode::exact}},
//               "how to integrate")
//       .check([](const Cosmo& c, const Reject& reject) {   // rules between keys
//         if (c.steps > 10 && c.mode == Mode::exact) reject("steps", "at most 10 when exact");
//       });
//     return t;
//   }
//   Cosmo c = cosmo_table().read(config.root().section("cosmo"));  config.finish();
//
// Members: a data member pointer (&S::m), or ff::nested(&S::sub, &Sub::m) for a field of a
// member struct that the YAML keeps at this level. section(key, &S::sub, table) nests a table of a
// member struct under `key`; section(key, table) groups fields of S itself under `key` in the YAML.
//
// Rules, once for every key:
// - integers are read exactly (digits only: 8.5 and 1e3 are "expected an integer"), then checked
//   against the declared range and the member's type (4294967299 never wraps to 3);
// - numbers must be finite; a key given without a value (`steps:` or --set steps=) is refused;
// - an empty text ("") or empty list is accepted only where it is the default (meaning "none");
// - unknown keys are refused by Config::finish() (every declared key is marked as read).
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"

namespace ff {

// Whether a key may differ between the settings stored with a run and those of its resumption.
enum class Resume { may_change, must_match };

// Allowed values of a number or integer: bounds (inclusive unless opened) and, for integers, a
// step (multiple_of 2: even).
struct Range {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false, hi_open = false;
  long multiple_of = 1;

  static Range any() { return {}; }
  static Range positive() { return Range{0.0}.open_below(); }  // > 0
  static Range non_negative() { return Range{0.0}; }           // >= 0
  static Range at_least(double lo) { return Range{lo}; }
  static Range between(double lo, double hi) { return Range{lo, hi}; }  // [lo, hi]
  Range open_below() const {
    return with([](Range& r) { r.lo_open = true; });
  }
  Range open_above() const {
    return with([](Range& r) { r.hi_open = true; });
  }
  Range at_most(double x) const {
    return with([x](Range& r) { r.hi = x, r.hi_open = false; });
  }
  Range below(double x) const {
    return with([x](Range& r) { r.hi = x, r.hi_open = true; });
  }
  Range even() const {
    return with([](Range& r) { r.multiple_of = 2; });
  }

  bool contains(double x) const;
  // "> 0", ">= 4 and <= 4096", "even, >= 4"; "" when anything goes.
  std::string describe() const;

 private:
  template <class F>
  Range with(F f) const {
    Range r = *this;
    f(r);
    return r;
  }
};

// In place of a default: the key must be given (text(key, &S::path, required, doc)).
struct Required {};
inline constexpr Required required{};

// A key on which two settings differ, with both values as YAML text.
struct SettingDifference {
  std::string key;  // full dotted path, e.g. "simulation.steps"
  std::string stored, requested;
};

// Raised from a check(): names a key of the table the check belongs to.
using Reject = std::function<void(const std::string& key, const std::string& problem)>;

// A field of a member struct, as a member of the outer struct: nested(&S::pm, &PmOptions::steps).
template <class S, class Sub, class T>
auto nested(Sub S::*outer, T Sub::*inner) {
  return [outer, inner](S& s) -> T& { return (s.*outer).*inner; };
}

// One row of a docs table.
struct SettingsRow {
  std::string key, fallback, allowed, resume, doc;
  bool required = false;  // no default
};

namespace settings_detail {
// Exact, shortest text of a number that reads back to the same double ("0.3175", "1e-05").
std::string exact(double x);
// A YAML scalar that spells an integer: digits with an optional sign (not 8.5, not 1e3).
struct ParsedInteger {
  bool negative = false;
  unsigned long long magnitude = 0;
  bool too_large = false;  // more than 64 bits of magnitude
};
std::optional<ParsedInteger> parse_integer(const YAML::Node& value);
// A finite number, or fails through node.fail.
double read_number(ConfigNode& node, const std::string& key, const YAML::Node& value);
// "a number > 0", "an even integer >= 4 and <= 2147483647"; plural: "numbers > 0".
std::string a_number(const Range& range, bool plural = false);
std::string an_integer(const Range& range, bool plural = false);
// resumable: with the "on resume" column (must match / may change).
std::string markdown(const std::vector<SettingsRow>& rows, bool resumable);
std::string yaml_text(const YAML::Node& node);  // one-line YAML of a scalar or flow list
YAML::Node flow_list(YAML::Node list);

// The range narrowed to what T can hold (a bound beyond 2^53, which a double cannot show
// exactly, is left to read_integer).
template <class T>
Range effective(const Range& r) {
  constexpr double exact_limit = 9007199254740992.0;
  const double lowest = double(std::numeric_limits<T>::lowest());
  const double highest = double(std::numeric_limits<T>::max());
  Range e = r;
  if (lowest >= -exact_limit && lowest > e.lo) e.lo = lowest, e.lo_open = false;
  if (highest <= exact_limit && highest < e.hi) e.hi = highest, e.hi_open = false;
  return e;
}

template <class T>
bool integer_allowed(T v, const Range& r) {
  return r.contains(double(v)) && v % T(r.multiple_of) == 0;
}

// The integer a scalar spells, exactly, when T holds it; else fails naming the allowed range.
template <class T>
T read_integer(ConfigNode& node, const std::string& key, const YAML::Node& value,
               const Range& range) {
  const auto p = parse_integer(value);
  if (!p) node.fail(key, "expected an integer, got " + yaml_text(value));
  using U = unsigned long long;
  const U max_magnitude = p->negative
                              ? (std::is_signed_v<T> ? U(std::numeric_limits<T>::max()) + 1 : 0)
                              : U(std::numeric_limits<T>::max());
  if (p->too_large || p->magnitude > max_magnitude)
    node.fail(key, "expected " + an_integer(effective<T>(range)) + ", got " + yaml_text(value));
  if (!p->negative) return T(p->magnitude);
  if constexpr (std::is_signed_v<T>) return p->magnitude == 0 ? T(0) : T(-T(p->magnitude - 1) - 1);
  return T(0);
}
}  // namespace settings_detail

template <class S>
class SettingsTable {
 public:
  SettingsTable(std::string name, std::string doc) : name_(std::move(name)), doc_(std::move(doc)) {}
  const std::string& name() const { return name_; }
  const std::string& doc() const { return doc_; }
  // A command that runs once and has no resume (sample, calibrate, denoise, report): its
  // markdown_table() has no "on resume" column.
  SettingsTable& one_shot() {
    resumable_ = false;
    return *this;
  }

  // A finite floating-point number in range.
  template <class M>
  SettingsTable& number(std::string key, M member, double fallback, Range range, std::string doc,
                        Resume resume = Resume::must_match);
  // An integer (int, long, uint64_t, ...) in range and in the member type's limits.
  template <class M>
  SettingsTable& integer(std::string key, M member, long long fallback, Range range,
                         std::string doc, Resume resume = Resume::must_match);
  template <class M>
  SettingsTable& flag(std::string key, M member, bool fallback, std::string doc,
                      Resume resume = Resume::must_match);
  template <class M>
  SettingsTable& text(std::string key, M member, std::string fallback, std::string doc,
                      Resume resume = Resume::must_match);
  // A non-empty text without a default.
  template <class M>
  SettingsTable& text(std::string key, M member, Required, std::string doc,
                      Resume resume = Resume::must_match);
  // One of the listed words, stored as the word.
  template <class M>
  SettingsTable& choice(std::string key, M member, std::string fallback,
                        std::vector<std::string> options, std::string doc,
                        Resume resume = Resume::must_match);
  // One of the listed words, stored as the value paired with it (an enum, a bool, ...).
  template <class M, class T>
  requires(!std::is_convertible_v<T, std::string>) SettingsTable& choice(
      std::string key, M member, T fallback, std::vector<std::pair<std::string, T>> options,
      std::string doc, Resume resume = Resume::must_match);
  // A list of numbers, each in range (a std::vector<double> member).
  template <class M>
  SettingsTable& numbers(std::string key, M member, std::vector<double> fallback, Range range,
                         std::string doc, Resume resume = Resume::must_match);
  // A list of integers, each in range (a std::vector of an integer type).
  template <class M>
  SettingsTable& integers(std::string key, M member, std::vector<long long> fallback, Range range,
                          std::string doc, Resume resume = Resume::must_match);
  // A list of non-empty texts (a std::vector<std::string>); a single text reads as a list of one.
  // Without a default (Required) at least one is needed.
  template <class M>
  SettingsTable& texts(std::string key, M member, std::vector<std::string> fallback,
                       std::string doc, Resume resume = Resume::must_match);
  template <class M>
  SettingsTable& texts(std::string key, M member, Required, std::string doc,
                       Resume resume = Resume::must_match);
  // The table of a member struct, under `key`.
  template <class Sub>
  SettingsTable& section(std::string key, Sub S::*member, const SettingsTable<Sub>& table) {
    return section_at(
        std::move(key), [member](S& s) -> Sub& { return s.*member; }, table);
  }
  // Fields of S itself, grouped under `key` in the YAML.
  SettingsTable& section(std::string key, const SettingsTable<S>& table) {
    return section_at(
        std::move(key), [](S& s) -> S& { return s; }, table);
  }
  // A rule between keys, run by read() and validate() after every field passed its own checks;
  // reject(key, problem) names a key of this table.
  SettingsTable& check(std::function<void(const S&, const Reject&)> rule) {
    checks_.push_back(std::move(rule));
    return *this;
  }

  // Reads every declared key below node (absent keys take their defaults) and checks them.
  // Call Config::finish() afterwards to refuse unknown keys.
  S read(ConfigNode node) const {
    S s{};
    read_into(node, s);
    return s;
  }
  // Every key at its default (members not declared keep their initialisers).
  S defaults() const {
    S s{};
    set_defaults(s);
    return s;
  }
  // The checks of read() on settings made in code; errors read "<source>: <key path>: <problem>".
  void validate(const S& s, const std::string& source) const { validate_at(s, source, ""); }

  // The settings as a YAML mapping, keys in declaration order; read() gives them back exactly.
  YAML::Node dump(const S& s) const {
    YAML::Node out(YAML::NodeType::Map);
    for (const auto& f : fields_) out[f.key] = f.dump(s);
    return out;
  }
  // dump() as block YAML text, nested under `key` when one is given.
  std::string dump_text(const S& s, const std::string& key = "") const;

  // The first must_match key (declaration order) whose values differ; nullopt when they agree.
  std::optional<SettingDifference> first_resume_difference(const S& stored,
                                                           const S& requested) const {
    return difference_at(stored, requested, "", true);
  }
  // The same over every key.
  std::optional<SettingDifference> first_difference(const S& a, const S& b) const {
    return difference_at(a, b, "", false);
  }

  // | key | default | allowed | on resume | meaning |: one row per key, dotted paths (without the
  // "on resume" column for a one_shot() table).
  std::string markdown_table() const;

 private:
  template <class>
  friend class SettingsTable;

  // One type-erased record per declaration.
  struct Field {
    std::string key;
    std::function<void(ConfigNode&, S&)> read;
    std::function<void(S&)> set_default;
    std::function<YAML::Node(const S&)> dump;
    std::function<void(const S&, const std::string& source, const std::string& path)> validate;
    std::function<std::optional<SettingDifference>(const S&, const S&, const std::string& path,
                                                   bool must_match_only)>
        difference;
    std::function<void(const std::string& prefix, std::vector<SettingsRow>&)> rows;
  };

  template <class M>
  using Value = std::remove_cvref_t<std::invoke_result_t<M, S&>>;
  // The member's storage in s (a member pointer or an accessor); const objects are only read.
  template <class M>
  static decltype(auto) ref(const M& member, const S& s) {
    return std::invoke(member, const_cast<S&>(s));
  }
  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  // A leaf: parse reads a present value's node; problem says why a value is not allowed.
  template <class M, class T>
  SettingsTable& leaf(std::string key, M member, std::optional<T> fallback, std::string allowed,
                      std::string doc, Resume resume,
                      std::function<T(ConfigNode&, const std::string&, const YAML::Node&)> parse,
                      std::function<std::optional<std::string>(const T&)> problem,
                      std::function<YAML::Node(const T&)> show);
  template <class Sub, class Get>
  SettingsTable& section_at(std::string key, Get get, const SettingsTable<Sub>& table);
  template <class M>
  SettingsTable& texts_leaf(std::string key, M member,
                            std::optional<std::vector<std::string>> fallback, std::string doc,
                            Resume resume);

  void read_into(ConfigNode& node, S& s) const {
    for (const auto& f : fields_) f.read(node, s);
    for (const auto& rule : checks_)
      rule(s, [&node](const std::string& key, const std::string& problem) {
        node.fail(key, problem);
      });
  }
  void set_defaults(S& s) const {
    for (const auto& f : fields_) f.set_default(s);
  }
  void validate_at(const S& s, const std::string& source, const std::string& path) const {
    for (const auto& f : fields_) f.validate(s, source, path);
    for (const auto& rule : checks_)
      rule(s, [&](const std::string& key, const std::string& problem) {
        throw Error(source, join(path, key) + ": " + problem);
      });
  }
  std::optional<SettingDifference> difference_at(const S& a, const S& b, const std::string& path,
                                                 bool must_match_only) const {
    for (const auto& f : fields_)
      if (auto d = f.difference(a, b, path, must_match_only)) return d;
    return std::nullopt;
  }
  void rows_at(const std::string& prefix, std::vector<SettingsRow>& rows) const {
    for (const auto& f : fields_) f.rows(prefix, rows);
  }

  std::string name_, doc_;
  bool resumable_ = true;
  std::vector<Field> fields_;
  std::vector<std::function<void(const S&, const Reject&)>> checks_;
};

// ---- implementation ----

template <class S>
template <class M, class T>
SettingsTable<S>& SettingsTable<S>::leaf(
    std::string key, M member, std::optional<T> fallback, std::string allowed, std::string doc,
    Resume resume, std::function<T(ConfigNode&, const std::string&, const YAML::Node&)> parse,
    std::function<std::optional<std::string>(const T&)> problem,
    std::function<YAML::Node(const T&)> show) {
  static_assert(std::is_same_v<Value<M>, T>, "the member's type does not match the declaration");
  using settings_detail::yaml_text;
  if (fallback)
    if (auto p = problem(*fallback))
      throw Error(name_, key + ": the declared default is not allowed: " + *p);
  Field f;
  f.key = key;
  f.read = [=](ConfigNode& node, S& s) {
    const auto value = node.find(key);
    if (!value) {
      if (!fallback) node.fail(key, "required key is missing");
      ref(member, s) = *fallback;
      return;
    }
    T v = parse(node, key, *value);
    if (auto p = problem(v)) node.fail(key, *p + ", got " + yaml_text(*value));
    ref(member, s) = std::move(v);
  };
  f.set_default = [=](S& s) {
    if (fallback) ref(member, s) = *fallback;
  };
  f.dump = [=](const S& s) { return show(ref(member, s)); };
  f.validate = [=](const S& s, const std::string& source, const std::string& path) {
    if (auto p = problem(ref(member, s)))
      throw Error(source, join(path, key) + ": " + *p + ", got " + yaml_text(show(ref(member, s))));
  };
  f.difference = [=](const S& a, const S& b, const std::string& path,
                     bool must_match_only) -> std::optional<SettingDifference> {
    if (must_match_only && resume == Resume::may_change) return std::nullopt;
    std::string ta = yaml_text(show(ref(member, a))), tb = yaml_text(show(ref(member, b)));
    if (ta == tb) return std::nullopt;
    return SettingDifference{join(path, key), std::move(ta), std::move(tb)};
  };
  const std::string fallback_text = fallback ? yaml_text(show(*fallback)) : "";
  f.rows = [=](const std::string& prefix, std::vector<SettingsRow>& rows) {
    rows.push_back({join(prefix, key), fallback_text, allowed,
                    resume == Resume::must_match ? "must match" : "may change", doc, !fallback});
  };
  fields_.push_back(std::move(f));
  return *this;
}

template <class S>
template <class Sub, class Get>
SettingsTable<S>& SettingsTable<S>::section_at(std::string key, Get get,
                                               const SettingsTable<Sub>& table) {
  auto sub = std::make_shared<const SettingsTable<Sub>>(table);
  auto at = [get](const S& s) -> Sub& { return get(const_cast<S&>(s)); };
  Field f;
  f.key = key;
  f.read = [=](ConfigNode& node, S& s) {
    ConfigNode child = node.section(key);
    sub->read_into(child, at(s));
  };
  f.set_default = [=](S& s) { sub->set_defaults(at(s)); };
  f.dump = [=](const S& s) { return sub->dump(at(s)); };
  f.validate = [=](const S& s, const std::string& source, const std::string& path) {
    sub->validate_at(at(s), source, join(path, key));
  };
  f.difference = [=](const S& a, const S& b, const std::string& path, bool must_match_only) {
    return sub->difference_at(at(a), at(b), join(path, key), must_match_only);
  };
  f.rows = [=](const std::string& prefix, std::vector<SettingsRow>& rows) {
    sub->rows_at(join(prefix, key), rows);
  };
  fields_.push_back(std::move(f));
  return *this;
}

template <class S>
template <class M>
SettingsTable<S>& SettingsTable<S>::number(std::string key, M member, double fallback, Range range,
                                           std::string doc, Resume resume) {
  using T = Value<M>;
  static_assert(std::is_floating_point_v<T>, "number() needs a floating-point member");
  return leaf<M, T>(
      std::move(key), member, T(fallback), settings_detail::a_number(range), std::move(doc), resume,
      [](ConfigNode& node, const std::string& k, const YAML::Node& v) {
        return T(settings_detail::read_number(node, k, v));
      },
      [range](const T& v) -> std::optional<std::string> {
        if (std::isfinite(double(v)) && range.contains(double(v))) return std::nullopt;
        return "expected " + settings_detail::a_number(range);
      },
      [](const T& v) { return YAML::Node(settings_detail::exact(double(v))); });
}

template <class S>
template <class M>
SettingsTable<S>& SettingsTable<S>::integer(std::string key, M member, long long fallback,
                                            Range range, std::string doc, Resume resume) {
  using T = Value<M>;
  static_assert(std::is_integral_v<T> && !std::is_same_v<T, bool>,
                "integer() needs an integer member");
  const Range limited = settings_detail::effective<T>(range);
  return leaf<M, T>(
      std::move(key), member, T(fallback), settings_detail::an_integer(range), std::move(doc),
      resume,
      [range](ConfigNode& node, const std::string& k, const YAML::Node& v) {
        return settings_detail::read_integer<T>(node, k, v, range);
      },
      [limited](const T& v) -> std::optional<std::string> {
        if (settings_detail::integer_allowed(v, limited)) return std::nullopt;
        return "expected " + settings_detail::an_integer(limited);
      },
      [](const T& v) { return YAML::Node(std::to_string(v)); });
}

template <class S>
template <class M>
SettingsTable<S>& SettingsTable<S>::flag(std::string key, M member, bool fallback, std::string doc,
                                         Resume resume) {
  return leaf<M, bool>(
      std::move(key), member, fallback, "true or false", std::move(doc), resume,
      [](ConfigNode& node, const std::string& k, const YAML::Node& v) -> bool {
        try {
          if (v.IsScalar()) return v.as<bool>();
        } catch (const YAML::Exception&) {
        }
        node.fail(k, "expected true or false, got " + settings_detail::yaml_text(v));
      },
      [](const bool&) -> std::optional<std::string> { return std::nullopt; },
      [](const bool& v) { return YAML::Node(v ? "true" : "false"); });
}

template <class S>
template <class M>
SettingsTable<S>& SettingsTable<S>::text(std::string key, M member, std::string fallback,
                                         std::string doc, Resume resume) {
  const bool may_be_empty = fallback.empty();
  return leaf<M, std::string>(
      std::move(key), member, fallback, may_be_empty ? "text" : "non-empty text", std::move(doc),
      resume,
      [](ConfigNode& node, const std::string& k, const YAML::Node& v) {
        if (!v.IsScalar()) node.fail(k, "expected a string, got " + settings_detail::yaml_text(v));
        return v.Scalar();
      },
      [may_be_empty](const std::string& v) -> std::optional<std::string> {
        if (v.empty() && !may_be_empty) return std::string("expected a non-empty string");
        return std::nullopt;
      },
      [](const std::string& v) { return YAML::Node(v); });
}

template <class S>
template <class M>
SettingsTable<S>& SettingsTable<S>::text(std::string key, M member, Required, std::string doc,
                                         Resume resume) {
  return leaf<M, std::string>(
      std::move(key), member, std::nullopt, "non-empty text", std::move(doc), resume,
      [](ConfigNode& node, const std::string& k, const YAML::Node& v) {
        if (!v.IsScalar()) node.fail(k, "expected a string, got " + settings_detail::yaml_text(v));
        return v.Scalar();
      },
      [](const std::string& v) -> std::optional<std::string> {
        if (v.empty()) return std::string("expected a non-empty string");
        return std::nullopt;
      },
      [](const std::string& v) { return YAML::Node(v); });
}

template <class S>
template <class M>
SettingsTable<S>& SettingsTable<S>::choice(std::string key, M member, std::string fallback,
                                           std::vector<std::string> options, std::string doc,
                                           Resume resume) {
  std::string list;
  for (const auto& o : options) list += (list.empty() ? "" : ", ") + o;
  return leaf<M, std::string>(
      std::move(key), member, std::move(fallback), list, std::move(doc), resume,
      [](ConfigNode& node, const std::string& k, const YAML::Node& v) {
        if (!v.IsScalar()) node.fail(k, "expected a string, got " + settings_detail::yaml_text(v));
        return v.Scalar();
      },
      [options, list](const std::string& v) -> std::optional<std::string> {
        for (const auto& o : options)
          if (o == v) return std::nullopt;
        return "expected one of " + list;
      },
      [](const std::string& v) { return YAML::Node(v); });
}

template <class S>
template <class M, class T>
requires(!std::is_convertible_v<T, std::string>) SettingsTable<S>
&SettingsTable<S>::choice(std::string key, M member, T fallback,
                          std::vector<std::pair<std::string, T>> options, std::string doc,
                          Resume resume) {
  std::string list;
  for (const auto& o : options) list += (list.empty() ? "" : ", ") + o.first;
  auto name_of = [options](const T& v) -> std::optional<std::string> {
    for (const auto& o : options)
      if (o.second == v) return o.first;
    return std::nullopt;
  };
  return leaf<M, T>(
      std::move(key), member, fallback, list, std::move(doc), resume,
      [options, list](ConfigNode& node, const std::string& k, const YAML::Node& v) -> T {
        if (v.IsScalar())
          for (const auto& o : options)
            if (o.first == v.Scalar()) return o.second;
        node.fail(k, "expected one of " + list + ", got " + settings_detail::yaml_text(v));
      },
      [name_of, list](const T& v) -> std::optional<std::string> {
        if (name_of(v)) return std::nullopt;
        return "expected one of " + list;
      },
      // A value outside the options (made in code) shows as "?" and fails validate().
      [name_of](const T& v) { return YAML::Node(name_of(v).value_or("?")); });
}

template <class S>
template <class M>
SettingsTable<S>& SettingsTable<S>::numbers(std::string key, M member, std::vector<double> fallback,
                                            Range range, std::string doc, Resume resume) {
  using V = Value<M>;
  static_assert(std::is_same_v<V, std::vector<double>>, "numbers() needs a std::vector<double>");
  const bool may_be_empty = fallback.empty();
  return leaf<M, V>(
      std::move(key), member, std::move(fallback),
      "a list of " + settings_detail::a_number(range, true), std::move(doc), resume,
      [](ConfigNode& node, const std::string& k, const YAML::Node& v) {
        if (!v.IsSequence())
          node.fail(k, "expected a list of numbers, got " + settings_detail::yaml_text(v));
        V out;
        for (const auto& item : v) out.push_back(settings_detail::read_number(node, k, item));
        return out;
      },
      [range, may_be_empty](const V& v) -> std::optional<std::string> {
        if (v.empty() && !may_be_empty) return std::string("expected at least one number");
        for (double x : v)
          if (!std::isfinite(x) || !range.contains(x))
            return "expected every element to be " + settings_detail::a_number(range);
        return std::nullopt;
      },
      [](const V& v) {
        YAML::Node list(YAML::NodeType::Sequence);
        for (double x : v) list.push_back(settings_detail::exact(x));
        return settings_detail::flow_list(list);
      });
}

template <class S>
template <class M>
SettingsTable<S>& SettingsTable<S>::integers(std::string key, M member,
                                             std::vector<long long> fallback, Range range,
                                             std::string doc, Resume resume) {
  using V = Value<M>;
  using T = typename V::value_type;
  static_assert(std::is_integral_v<T>, "integers() needs a std::vector of an integer type");
  const bool may_be_empty = fallback.empty();
  const Range limited = settings_detail::effective<T>(range);
  return leaf<M, V>(
      std::move(key), member, V(fallback.begin(), fallback.end()),
      "a list of " + settings_detail::an_integer(range, true), std::move(doc), resume,
      [range](ConfigNode& node, const std::string& k, const YAML::Node& v) {
        if (!v.IsSequence())
          node.fail(k, "expected a list of integers, got " + settings_detail::yaml_text(v));
        V out;
        for (const auto& item : v)
          out.push_back(settings_detail::read_integer<T>(node, k, item, range));
        return out;
      },
      [limited, may_be_empty](const V& v) -> std::optional<std::string> {
        if (v.empty() && !may_be_empty) return std::string("expected at least one integer");
        for (T x : v)
          if (!settings_detail::integer_allowed(x, limited))
            return "expected every element to be " + settings_detail::an_integer(limited);
        return std::nullopt;
      },
      [](const V& v) {
        YAML::Node list(YAML::NodeType::Sequence);
        for (T x : v) list.push_back(std::to_string(x));
        return settings_detail::flow_list(list);
      });
}

template <class S>
template <class M>
SettingsTable<S>& SettingsTable<S>::texts(std::string key, M member,
                                          std::vector<std::string> fallback, std::string doc,
                                          Resume resume) {
  using V = Value<M>;
  static_assert(std::is_same_v<V, std::vector<std::string>>,
                "texts() needs a std::vector<std::string>");
  return texts_leaf<M>(std::move(key), member, std::optional<V>(std::move(fallback)),
                       std::move(doc), resume);
}

template <class S>
template <class M>
SettingsTable<S>& SettingsTable<S>::texts(std::string key, M member, Required, std::string doc,
                                          Resume resume) {
  return texts_leaf<M>(std::move(key), member, std::nullopt, std::move(doc), resume);
}

template <class S>
template <class M>
SettingsTable<S>& SettingsTable<S>::texts_leaf(std::string key, M member,
                                               std::optional<std::vector<std::string>> fallback,
                                               std::string doc, Resume resume) {
  using V = std::vector<std::string>;
  const bool may_be_empty = fallback && fallback->empty();
  return leaf<M, V>(
      std::move(key), member, std::move(fallback), "a list of non-empty texts", std::move(doc),
      resume,
      [](ConfigNode& node, const std::string& k, const YAML::Node& v) {
        if (v.IsScalar()) return V{v.Scalar()};
        if (!v.IsSequence())
          node.fail(k, "expected a list of strings, got " + settings_detail::yaml_text(v));
        V out;
        for (const auto& item : v) {
          if (!item.IsScalar())
            node.fail(
                k, "expected a list of strings, got element " + settings_detail::yaml_text(item));
          out.push_back(item.Scalar());
        }
        return out;
      },
      [may_be_empty](const V& v) -> std::optional<std::string> {
        if (v.empty() && !may_be_empty) return std::string("expected at least one entry");
        for (const std::string& x : v)
          if (x.empty()) return std::string("expected non-empty strings");
        return std::nullopt;
      },
      [](const V& v) {
        YAML::Node list(YAML::NodeType::Sequence);
        for (const std::string& x : v) list.push_back(x);
        return settings_detail::flow_list(list);
      });
}

template <class S>
std::string SettingsTable<S>::dump_text(const S& s, const std::string& key) const {
  YAML::Node node = dump(s);
  if (!key.empty()) {
    YAML::Node outer(YAML::NodeType::Map);
    outer[key] = node;
    node = outer;
  }
  YAML::Emitter out;
  out << node;
  return std::string(out.c_str()) + "\n";
}

template <class S>
std::string SettingsTable<S>::markdown_table() const {
  std::vector<SettingsRow> rows;
  rows_at("", rows);
  return settings_detail::markdown(rows, resumable_);
}

}  // namespace ff
