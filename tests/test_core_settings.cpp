// core: the settings declaration table (reading, limits, dump round trip, resume check, docs) and
// the config reader's refusals that hold for every key (duplicates, empty --set, non-files).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>

#include "error_of.hpp"
#include "fieldflow/core/settings.hpp"

using namespace ff;

namespace {

enum class Mode { fast, exact };

struct Stepping {
  int steps = 0;
  double dt = 0;
};

struct Demo {
  double omega_m = 0;
  int count = 0;
  uint64_t seed = 0;
  bool verbose = false;
  std::string out;
  std::string table;
  std::string activation;
  Mode mode = Mode::fast;
  std::vector<double> redshifts;
  std::vector<int> widths;
  std::vector<std::string> inputs;
  Stepping stepping;  // read under `stepping:`
  int grid = 0;       // read under `paint:` (a group of Demo's own fields)
  int undeclared = 7;
};

const SettingsTable<Stepping>& stepping_table() {
  static const auto t =
      SettingsTable<Stepping>("stepping", "Time steps.")
          .integer("steps", &Stepping::steps, 20, Range::between(1, 1000), "number of steps")
          .number("dt", &Stepping::dt, 0.5, Range::positive(), "step size", Resume::may_change);
  return t;
}

const SettingsTable<Demo>& demo_table() {
  static const auto paint =
      SettingsTable<Demo>("paint", "Painting.")
          .integer("grid", &Demo::grid, 32, Range::at_least(2).even(), "cells per side");
  static const auto t =
      SettingsTable<Demo>("demo", "A demo.")
          .number("omega_m", &Demo::omega_m, 0.3175, Range::between(0, 1).open_below(),
                  "matter density")
          .integer("count", &Demo::count, 8, Range::at_least(1), "how many", Resume::may_change)
          .integer("seed", &Demo::seed, 1, Range::any(), "random seed")
          .flag("verbose", &Demo::verbose, false, "talk more", Resume::may_change)
          .text("out", &Demo::out, "out/demo", "output folder", Resume::may_change)
          .text("table", &Demo::table, "", "optional table file")
          .choice("activation", &Demo::activation, "relu", {"relu", "leaky_relu"}, "nonlinearity")
          .choice("mode", &Demo::mode, Mode::fast, {{"fast", Mode::fast}, {"exact", Mode::exact}},
                  "integration | mode")
          .numbers("redshifts", &Demo::redshifts, {0.0}, Range::non_negative(), "output z")
          .integers("widths", &Demo::widths, {16, 32}, Range::at_least(1), "layer widths")
          .texts("inputs", &Demo::inputs, std::vector<std::string>{}, "input files")
          .section("stepping", &Demo::stepping, stepping_table())
          .section("paint", paint)
          .check([](const Demo& d, const Reject& reject) {
            if (d.mode == Mode::exact && d.stepping.steps > 10)
              reject("mode", "exact needs stepping.steps <= 10");
          });
  return t;
}

Demo read_demo(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  Config c = Config::parse(yaml, "d.yaml", overrides);
  Demo d = demo_table().read(c.root());
  c.finish();
  return d;
}

}  // namespace

TEST(Settings, AbsentKeysTakeTheirDefaultsAndUndeclaredMembersKeepTheirs) {
  const Demo d = read_demo("");
  EXPECT_EQ(d.omega_m, 0.3175);
  EXPECT_EQ(d.count, 8);
  EXPECT_EQ(d.out, "out/demo");
  EXPECT_EQ(d.mode, Mode::fast);
  EXPECT_EQ(d.redshifts, std::vector<double>{0.0});
  EXPECT_EQ(d.widths, (std::vector<int>{16, 32}));
  EXPECT_EQ(d.stepping.steps, 20);
  EXPECT_EQ(d.grid, 32);
  EXPECT_EQ(d.undeclared, 7);
  EXPECT_FALSE(demo_table().first_difference(d, demo_table().defaults()));
}

TEST(Settings, ReadsEveryKindAndNesting) {
  const Demo d = read_demo(
      "omega_m: 0.25\ncount: 3\nseed: 18446744073709551615\nverbose: true\nout: o\n"
      "table: t.txt\nactivation: leaky_relu\nmode: exact\nredshifts: [1, 0.5]\nwidths: [4]\n"
      "stepping: {steps: 5, dt: 0.1}\npaint: {grid: 64}\n");
  EXPECT_EQ(d.omega_m, 0.25);
  EXPECT_EQ(d.count, 3);
  EXPECT_EQ(d.seed, UINT64_MAX);
  EXPECT_TRUE(d.verbose);
  EXPECT_EQ(d.table, "t.txt");
  EXPECT_EQ(d.activation, "leaky_relu");
  EXPECT_EQ(d.mode, Mode::exact);
  EXPECT_EQ(d.redshifts, (std::vector<double>{1, 0.5}));
  EXPECT_EQ(d.widths, std::vector<int>{4});
  EXPECT_EQ(d.stepping.steps, 5);
  EXPECT_EQ(d.stepping.dt, 0.1);
  EXPECT_EQ(d.grid, 64);
}

TEST(Settings, TextListsTakeOneTextOrAListAndRefuseNesting) {
  EXPECT_TRUE(read_demo("").inputs.empty());
  EXPECT_EQ(read_demo("inputs: a.h5\n").inputs, std::vector<std::string>{"a.h5"});
  EXPECT_EQ(read_demo("inputs: [a.h5, 'b*.h5']\n").inputs,
            (std::vector<std::string>{"a.h5", "b*.h5"}));
  EXPECT_EQ(error_of([] { read_demo("inputs: {a: 1}\n"); }),
            "d.yaml: inputs: expected a list of strings, got {a: 1}");
  EXPECT_EQ(error_of([] { read_demo("inputs: [a, [b]]\n"); }),
            "d.yaml: inputs: expected a list of strings, got element [b]");
  Demo d = demo_table().defaults();
  d.inputs = {"x.h5", ""};
  EXPECT_EQ(error_of([&] { demo_table().validate(d, "code"); }),
            "code: inputs: expected non-empty strings, got [x.h5, \"\"]");
  d.inputs = {"x.h5", "y z.h5"};
  Config c = Config::parse(demo_table().dump_text(d), "dump");
  EXPECT_EQ(demo_table().read(c.root()).inputs, d.inputs);
}

TEST(Settings, IntegersAreExactAndNeverWrap) {
  // 2^32 + 3 would be 3 after a cast to int.
  EXPECT_EQ(error_of([] { read_demo("count: 4294967299\n"); }),
            "d.yaml: count: expected an integer >= 1 and <= 2147483647, got 4294967299");
  EXPECT_EQ(error_of([] { read_demo("count: 8.5\n"); }),
            "d.yaml: count: expected an integer, got 8.5");
  EXPECT_EQ(error_of([] { read_demo("count: 1e3\n"); }),
            "d.yaml: count: expected an integer, got 1e3");
  EXPECT_EQ(error_of([] { read_demo("count: 0\n"); }),
            "d.yaml: count: expected an integer >= 1 and <= 2147483647, got 0");
  EXPECT_EQ(error_of([] { read_demo("seed: -1\n"); }),
            "d.yaml: seed: expected an integer >= 0, got -1");
  EXPECT_EQ(error_of([] { read_demo("seed: 18446744073709551616\n"); }),
            "d.yaml: seed: expected an integer >= 0, got 18446744073709551616");
  EXPECT_EQ(error_of([] { read_demo("paint: {grid: 33}\n"); }),
            "d.yaml: paint.grid: expected an even integer >= 2 and <= 2147483647, got 33");
  EXPECT_EQ(error_of([] { read_demo("widths: [4, 0]\n"); }),
            "d.yaml: widths: expected every element to be an integer >= 1 and <= 2147483647, got "
            "[4, 0]");
  EXPECT_EQ(error_of([] { read_demo("widths: [4, 2.5]\n"); }),
            "d.yaml: widths: expected an integer, got 2.5");
  EXPECT_EQ(read_demo("count: +12\n").count, 12);
}

TEST(Settings, WrongValuesNameTheKeyPathAndTheValue) {
  EXPECT_EQ(error_of([] { read_demo("omega_m: 0\n"); }),
            "d.yaml: omega_m: expected a number > 0 and <= 1, got 0");
  EXPECT_EQ(error_of([] { read_demo("omega_m: .inf\n"); }),
            "d.yaml: omega_m: expected a finite number, got .inf");
  EXPECT_EQ(error_of([] { read_demo("stepping:\n  dt: fast\n"); }),
            "d.yaml: stepping.dt: expected a finite number, got fast");
  EXPECT_EQ(error_of([] { read_demo("mode: sideways\n"); }),
            "d.yaml: mode: expected one of fast, exact, got sideways");
  EXPECT_EQ(error_of([] { read_demo("activation: tanh\n"); }),
            "d.yaml: activation: expected one of relu, leaky_relu, got tanh");
  EXPECT_EQ(error_of([] { read_demo("verbose: 3\n"); }),
            "d.yaml: verbose: expected true or false, got 3");
  EXPECT_EQ(error_of([] { read_demo("redshifts: 0\n"); }),
            "d.yaml: redshifts: expected a list of numbers, got 0");
  EXPECT_EQ(error_of([] { read_demo("redshifts: []\n"); }),
            "d.yaml: redshifts: expected at least one number, got []");
  EXPECT_EQ(error_of([] { read_demo("stepping: 3\n"); }),
            "d.yaml: stepping: expected a mapping, got \"3\"");
  EXPECT_EQ(error_of([] { read_demo("stepping: {stepz: 3}\n"); }),
            "d.yaml: stepping.stepz: unknown key");
  EXPECT_EQ(error_of([] { read_demo("mode: exact\nstepping: {steps: 11}\n"); }),
            "d.yaml: mode: exact needs stepping.steps <= 10");
}

TEST(Settings, EmptyValuesAreRefusedUnlessTheDefaultIsEmpty) {
  EXPECT_EQ(error_of([] { read_demo("out: \"\"\n"); }),
            "d.yaml: out: expected a non-empty string, got \"\"");
  EXPECT_EQ(read_demo("table: \"\"\n").table, "");
  EXPECT_EQ(error_of([] { read_demo("count:\n"); }),
            "d.yaml: count: no value given (leave the key out to use its default)");
  EXPECT_EQ(error_of([] { read_demo("", {"count="}); }),
            "d.yaml: --set count=: empty value (leave the key out to use its default)");
  EXPECT_EQ(error_of([] { read_demo("", {"stepping.steps= "}); }),
            "d.yaml: --set stepping.steps=: empty value (leave the key out to use its default)");
  EXPECT_EQ(read_demo("", {"stepping.steps=7"}).stepping.steps, 7);
}

TEST(Settings, DuplicateKeysAreRefusedWithTheirLine) {
  EXPECT_EQ(error_of([] { read_demo("count: 2\nseed: 1\ncount: 3\n"); }),
            "d.yaml: count: key given twice (again at line 3)");
  EXPECT_EQ(error_of([] { read_demo("stepping:\n  steps: 2\n  steps: 3\n"); }),
            "d.yaml: stepping.steps: key given twice (again at line 3)");
}

TEST(Settings, ConfigPathMustBeARegularFile) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("ff_settings_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  EXPECT_EQ(error_of([&] { Config::load(dir.string()); }),
            dir.string() + ": is a directory, expected a YAML config file");
  const std::string fifo = (dir / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Refused before opening: opening a FIFO for reading would block.
  EXPECT_EQ(error_of([&] { Config::load(fifo); }),
            fifo + ": not a regular file, expected a YAML config file");
  std::filesystem::remove_all(dir);
}

TEST(Settings, DumpReadsBackExactly) {
  Demo d = read_demo(
      "omega_m: 0.1\nseed: 18446744073709551615\nmode: exact\n"
      "redshifts: [3, 1e-7, 0.30000000000000004]\nstepping: {steps: 3, dt: 0.2}\n");
  const std::string text = demo_table().dump_text(d);
  Config c = Config::parse(text, "dump");
  const Demo back = demo_table().read(c.root());
  c.finish();
  EXPECT_FALSE(demo_table().first_difference(d, back)) << text;
  EXPECT_EQ(back.redshifts[2], 0.30000000000000004);
  // Under a key, in declaration order, lists in flow style.
  const std::string nested = demo_table().dump_text(d, "demo");
  EXPECT_EQ(nested.rfind("demo:\n  omega_m: 0.1\n  count: 8\n", 0), 0u) << nested;
  EXPECT_NE(nested.find("  redshifts: [3, 1e-07, 0.30000000000000004]\n"), std::string::npos)
      << nested;
  EXPECT_NE(nested.find("  stepping:\n    steps: 3\n    dt: 0.2\n"), std::string::npos) << nested;
}

TEST(Settings, ResumeDifferenceNamesTheFirstMustMatchKey) {
  const Demo stored = read_demo("");
  Demo requested = stored;
  requested.count = 100;         // may change
  requested.stepping.dt = 0.25;  // may change
  requested.out = "elsewhere";   // may change
  EXPECT_FALSE(demo_table().first_resume_difference(stored, requested));
  requested.stepping.steps = 10;  // must match
  requested.grid = 64;            // must match, later
  const auto d = demo_table().first_resume_difference(stored, requested);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->key, "stepping.steps");
  EXPECT_EQ(d->stored, "20");
  EXPECT_EQ(d->requested, "10");
  EXPECT_EQ(demo_table().first_difference(stored, requested)->key, "count");
}

TEST(Settings, ValidateAppliesTheSameRulesToSettingsMadeInCode) {
  Demo d = demo_table().defaults();
  EXPECT_NO_THROW(demo_table().validate(d, "code"));
  d.stepping.steps = 0;
  EXPECT_EQ(error_of([&] { demo_table().validate(d, "code"); }),
            "code: stepping.steps: expected an integer >= 1 and <= 1000, got 0");
  d = demo_table().defaults();
  d.mode = Mode(7);
  EXPECT_EQ(error_of([&] { demo_table().validate(d, "code"); }),
            "code: mode: expected one of fast, exact, got \"?\"");
  d = demo_table().defaults();
  d.mode = Mode::exact;
  EXPECT_EQ(error_of([&] { demo_table().validate(d, "code"); }),
            "code: mode: exact needs stepping.steps <= 10");
}

TEST(Settings, MarkdownTableHasOneRowPerKey) {
  const std::string md = demo_table().markdown_table();
  EXPECT_EQ(
      md.rfind("| key | default | allowed | on resume | meaning |\n|---|---|---|---|---|\n", 0),
      0u);
  EXPECT_NE(
      md.find("| `omega_m` | `0.3175` | a number > 0 and <= 1 | must match | matter density |"),
      std::string::npos)
      << md;
  EXPECT_NE(md.find("| `stepping.dt` | `0.5` | a number > 0 | may change | step size |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| `paint.grid` | `32` | an even integer >= 2 | must match | cells per side |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| `mode` | `fast` | fast, exact | must match | integration \\| mode |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| `widths` | `[16, 32]` | a list of integers >= 1 |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| `table` | `\"\"` | text |"), std::string::npos) << md;
  size_t rows = 0;
  for (char c : md) rows += c == '\n';
  EXPECT_EQ(rows, 2u + 14u);
}

// A one-shot command's table (sample, calibrate, denoise, report) has no "on resume" column.
TEST(Settings, OneShotTableHasNoResumeColumn) {
  struct Once {
    int count = 1;
  };
  const auto table = SettingsTable<Once>("once", "a one-shot command")
                         .one_shot()
                         .integer("count", &Once::count, 1, Range::at_least(1), "how many");
  EXPECT_EQ(table.markdown_table(),
            "| key | default | allowed | meaning |\n|---|---|---|---|\n"
            "| `count` | `1` | an integer >= 1 | how many |\n");
}

TEST(Settings, DeclaredDefaultsMustBeAllowed) {
  struct One {
    int n = 0;
  };
  EXPECT_EQ(error_of([] {
              SettingsTable<One>("one", "").integer("n", &One::n, 0, Range::at_least(1), "n");
            }),
            "one: n: the declared default is not allowed: expected an integer >= 1 and <= "
            "2147483647");
}
