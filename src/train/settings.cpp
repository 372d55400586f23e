// The data: and train: sections. See include/fieldflow/train/settings.hpp and docs/train.md.
#include "fieldflow/train/settings.hpp"

#include <cstdio>
#include <sstream>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"

namespace ff {

namespace {

std::string number_text(double v) {
  char buffer[40];
  std::snprintf(buffer, sizeof buffer, "%.17g", v);
  return buffer;
}

std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string list_text(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + quoted(items[i]);
  return out + "]";
}

// One setting as settings.yaml shows it, and whether a resume may change it.
struct Entry {
  std::string section, key, value;
  bool must_match;
};

// The one list of data: and train: keys behind the dump and the resume check.
std::vector<Entry> entries(const TrainConfig& c) {
  const DataSettings& d = c.data;
  const TrainSettings& t = c.train;
  const auto flag = [](bool b) { return std::string(b ? "true" : "false"); };
  return {
      {"data", "train", list_text(d.train), true},
      {"data", "validation", list_text(d.validation), true},
      {"data", "validation_fraction", number_text(d.validation_fraction), true},
      {"data", "preprocess", d.preprocess, true},
      {"data", "log1p_floor", number_text(d.log1p_floor), true},
      {"data", "mas", d.mas, true},
      {"data", "length_unit", d.length_unit, true},
      {"data", "shifts", flag(d.shifts), true},
      {"data", "symmetries", flag(d.symmetries), true},
      {"train", "run_dir", quoted(t.run_dir), false},
      {"train", "steps", std::to_string(t.steps), false},
      {"train", "batch", std::to_string(t.batch), true},
      {"train", "seed", std::to_string(t.seed), true},
      {"train", "lr", number_text(t.lr), true},
      {"train", "schedule", t.schedule, true},
      {"train", "min_lr_ratio", number_text(t.min_lr_ratio), true},
      {"train", "warmup_steps", std::to_string(t.warmup_steps), true},
      {"train", "clip_grad_norm", number_text(t.clip_grad_norm), true},
      {"train", "checkpoint_every", std::to_string(t.checkpoint_every), false},
      {"train", "validate_every", std::to_string(t.validate_every), false},
      {"train", "check_every", std::to_string(t.check_every), false},
      {"train", "max_skips", std::to_string(t.max_skips), false},
      {"train", "rollback_lr_factor", number_text(t.rollback_lr_factor), false},
      {"train", "print_every_s", number_text(t.print_every_s), false},
      {"train", "time_limit_minutes", number_text(t.time_limit_minutes), false},
  };
}

}  // namespace

TrainConfig read_train_config(Config& config) {
  TrainConfig c;
  c.source = config.source();
  ConfigNode root = config.root();
  c.flow = read_flow_spec(root.section("flow"));

  ConfigNode d = root.section("data");
  DataSettings& data = c.data;
  data.train = d.texts("train");
  if (data.train.empty()) d.fail("train", "expected at least one file or glob");
  data.validation = d.texts("validation", std::vector<std::string>{});
  data.validation_fraction = d.number("validation_fraction", 0.1);
  if (!(data.validation_fraction >= 0 && data.validation_fraction < 1))
    d.fail("validation_fraction", "expected a fraction in [0, 1)");
  data.preprocess = d.choice("preprocess", {"identity", "log1p"}, "log1p");
  data.log1p_floor = d.positive("log1p_floor", 1e-3);
  data.mas = d.choice("mas", {"ngp", "cic", "tsc"}, "cic");
  data.length_unit = d.choice("length_unit", {"auto", "kpc/h", "mpc/h"}, "auto");
  ConfigNode augment = d.section("augment");
  data.shifts = augment.flag("shifts", true);
  data.symmetries = augment.flag("symmetries", true);

  ConfigNode t = root.section("train");
  TrainSettings& train = c.train;
  train.run_dir = t.text("run_dir", "runs/train");
  if (train.run_dir.empty()) t.fail("run_dir", "expected a folder name");
  train.steps = t.integer("steps", 4000);
  if (train.steps < 0) t.fail("steps", "expected a number of steps >= 0");
  train.batch = int(t.positive_integer("batch", 8));
  const long seed = t.integer("seed", 0);
  if (seed < 0) t.fail("seed", "expected a non-negative seed");
  train.seed = uint64_t(seed);
  train.lr = t.positive("lr", 1e-3);
  train.schedule = t.choice("schedule", {"constant", "cosine"}, "cosine");
  train.min_lr_ratio = t.non_negative("min_lr_ratio", 0.05);
  if (train.min_lr_ratio > 1) t.fail("min_lr_ratio", "expected a ratio in [0, 1]");
  train.warmup_steps = t.integer("warmup_steps", 100);
  if (train.warmup_steps < 0) t.fail("warmup_steps", "expected a number of steps >= 0");
  train.clip_grad_norm = t.non_negative("clip_grad_norm", 100.0);
  train.checkpoint_every = t.positive_integer("checkpoint_every", 200);
  train.validate_every = t.positive_integer("validate_every", 100);
  train.check_every = t.positive_integer("check_every", 50);
  train.max_skips = int(t.positive_integer("max_skips", 5));
  train.rollback_lr_factor = t.positive("rollback_lr_factor", 0.5);
  if (train.rollback_lr_factor >= 1) t.fail("rollback_lr_factor", "expected a factor below 1");
  train.print_every_s = t.non_negative("print_every_s", 5.0);
  train.time_limit_minutes = t.non_negative("time_limit_minutes", 0.0);
  config.finish();
  return c;
}

std::string TrainConfig::yaml() const {
  std::ostringstream out;
  out << flow_spec_yaml(flow);
  std::string section;
  for (const Entry& e : entries(*this)) {
    if (e.section != section) {
      section = e.section;
      out << section << ":\n";
    }
    if (e.section == "data" && (e.key == "shifts" || e.key == "symmetries")) {
      if (e.key == "shifts") out << "  augment:\n";
      out << "    " << e.key << ": " << e.value << "\n";
    } else if (e.section == "data" && e.key == "validation" && data.validation.empty()) {
      continue;  // absent: the held-out fraction
    } else {
      out << "  " << e.key << ": " << e.value << "\n";
    }
  }
  return out.str();
}

std::optional<std::string> first_resume_difference(const TrainConfig& stored,
                                                   const TrainConfig& requested) {
  // Every flow: key must match: the architecture is the checkpoint's.
  std::istringstream a(flow_spec_yaml(stored.flow)), b(flow_spec_yaml(requested.flow));
  std::string la, lb, parent;
  while (true) {
    const bool more_a = bool(std::getline(a, la)), more_b = bool(std::getline(b, lb));
    if (!more_a && !more_b) break;
    if (la != lb) {
      const std::string line = more_a ? la : lb;
      const size_t indent = line.find_first_not_of(' ');
      const std::string key = line.substr(indent, line.find(':') - indent);
      return "flow." + (indent >= 4 ? parent + "." : std::string()) + key +
             ": differs from the run folder's (" + (more_a ? la.substr(indent) : "absent") +
             " there, " + (more_b ? lb.substr(lb.find_first_not_of(' ')) : "absent") + " now)";
    }
    if (la.size() > 2 && la[2] != ' ' && la.back() == ':')
      parent = la.substr(2, la.size() - 3);  // e.g. "levels", "base"
  }
  const std::vector<Entry> x = entries(stored), y = entries(requested);
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].must_match && x[i].value != y[i].value)
      return x[i].section + "." + x[i].key + ": " + x[i].value + " in the run folder, " +
             y[i].value + " now";
  return std::nullopt;
}

}  // namespace ff
