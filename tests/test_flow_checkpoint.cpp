// Flow checkpoints: a bit-exact round trip (architecture, parameters, actnorm state, Adam state,
// preprocessing), and clear refusals of truncated, corrupted and foreign files.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/io/checkpoint.hpp"
#include "fieldflow/io/csv.hpp"

namespace ff {
namespace {

namespace fs = std::filesystem;

fs::path temp_dir() {
  const fs::path dir = fs::temp_directory_path() / ("ff_flow_ckpt_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

FlowSpec spec() {
  FlowSpec s;
  s.grid = 8;
  s.levels = {{2, 2, 4, 5}, {2, 0, 3, 0}};
  s.mixing = MixingKind::lu;
  s.actnorm = true;
  s.scale_bound = ScaleBound::softclamp;
  s.clamp = 1.5;
  s.seed = 7;
  return s;
}

Tensor<float> batch() {
  Tensor<float> x(2, 8, 1);
  const CounterRng rng(3, 0);
  for (size_t i = 0; i < x.size(); ++i) x.data[i] = float(rng.normal(i));
  return x;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

struct Saved {
  fs::path path;
  MultiScaleFlow<float> flow{spec()};
  std::unique_ptr<Adam<float>> adam;
  Preprocessing prep{"log1p", 0.25, 1.75};
};

std::unique_ptr<Saved> save_trained(const std::string& name) {
  auto s = std::make_unique<Saved>();
  s->path = temp_dir() / name;
  AdamOptions o;
  o.lr = 1e-2;
  o.warmup_steps = 3;
  o.total_steps = 10;
  o.clip_grad_norm = 5;
  o.weight_decay = 1e-3;
  s->adam = std::make_unique<Adam<float>>(s->flow.params(), o);
  const Tensor<float> x = batch();
  for (int step = 0; step < 2; ++step) {
    s->adam->zero_grad();
    s->flow.nll_backward(x);
    s->adam->step();
  }
  save_flow_checkpoint(s->path.string(), s->flow, s->prep, s->adam.get());
  return s;
}

TEST(FlowCheckpoint, RoundTripIsBitExact) {
  auto saved = save_trained("round_trip.h5");
  FlowCheckpoint loaded = load_flow_checkpoint(saved->path.string());
  EXPECT_EQ(flow_spec_yaml(loaded.flow->spec()), flow_spec_yaml(saved->flow.spec()));
  const auto a = saved->flow.params(), b = loaded.flow->params();
  ASSERT_EQ(a.size(), b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(a[k]->name, b[k]->name);
    ASSERT_EQ(a[k]->size(), b[k]->size());
    EXPECT_EQ(std::memcmp(a[k]->value.data(), b[k]->value.data(), a[k]->size() * sizeof(float)), 0)
        << a[k]->name;
  }
  for (ActNorm<float>* an : loaded.flow->actnorms()) EXPECT_TRUE(an->initialized);
  EXPECT_EQ(loaded.preprocessing.transform, "log1p");
  EXPECT_EQ(loaded.preprocessing.mean, 0.25);
  EXPECT_EQ(loaded.preprocessing.std, 1.75);
  ASSERT_TRUE(loaded.has_optimizer);
  EXPECT_EQ(loaded.adam_step, 2);
  EXPECT_EQ(loaded.adam_options.warmup_steps, 3);
  EXPECT_EQ(loaded.adam_options.weight_decay, saved->adam->options().weight_decay);
  for (size_t k = 0; k < a.size(); ++k) {
    EXPECT_EQ(loaded.adam_m[k], saved->adam->first_moments()[k]);
    EXPECT_EQ(loaded.adam_v[k], saved->adam->second_moments()[k]);
  }
  // Same densities, bit for bit, and the same next training step after restoring Adam.
  const Tensor<float> x = batch();
  EXPECT_EQ(saved->flow.log_prob(x), loaded.flow->log_prob(x));
  Adam<float> resumed(loaded.flow->params(), loaded.adam_options);
  loaded.restore(resumed);
  const std::pair<MultiScaleFlow<float>*, Adam<float>*> runs[] = {{&saved->flow, saved->adam.get()},
                                                                  {loaded.flow.get(), &resumed}};
  for (const auto& [flow, adam] : runs) {
    adam->zero_grad();
    flow->nll_backward(x);
    adam->step();
  }
  for (size_t k = 0; k < a.size(); ++k) EXPECT_EQ(a[k]->value, b[k]->value) << a[k]->name;
  // Saving the loaded flow again gives the same arrays.
  const fs::path again = temp_dir() / "again.h5";
  save_flow_checkpoint(again.string(), *loaded.flow, loaded.preprocessing, &resumed);
  save_flow_checkpoint(saved->path.string(), saved->flow, saved->prep, saved->adam.get());
  const ArrayFile f1 = read_array_file(saved->path.string(), "fieldflow-flow-checkpoint", 1);
  const ArrayFile f2 = read_array_file(again.string(), "fieldflow-flow-checkpoint", 1);
  EXPECT_EQ(f1.floats, f2.floats);
  EXPECT_EQ(f1.texts, f2.texts);
  EXPECT_EQ(f1.numbers, f2.numbers);
}

void expect_refused(const fs::path& path, const std::string& fragment) {
  try {
    load_flow_checkpoint(path.string());
    FAIL() << "loaded a bad checkpoint " << path;
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(path.string()), std::string::npos) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

TEST(FlowCheckpoint, TruncatedFileIsRefused) {
  auto saved = save_trained("truncated.h5");
  const std::string bytes = read_bytes(saved->path);
  for (size_t keep : {bytes.size() / 2, bytes.size() - 100, size_t(100)}) {
    const fs::path cut = temp_dir() / ("cut_" + std::to_string(keep) + ".h5");
    write_bytes(cut, bytes.substr(0, keep));
    expect_refused(cut, "");
  }
}

TEST(FlowCheckpoint, CorruptedArrayIsRefused) {
  auto saved = save_trained("corrupt.h5");
  std::string bytes = read_bytes(saved->path);
  // Find the stored values of one parameter and flip a bit in the middle of them.
  const Param<float>* p = saved->flow.params()[2];  // level0.checker0.conv1.weight
  ASSERT_GE(p->size(), 8u);
  const std::string pattern(reinterpret_cast<const char*>(p->value.data()), 32);
  const size_t at = bytes.find(pattern);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 17] ^= 0x10;
  const fs::path bad = temp_dir() / "flipped.h5";
  write_bytes(bad, bytes);
  expect_refused(bad, "checksum mismatch in array param." + p->name);
}

TEST(FlowCheckpoint, ForeignFilesAreRefused) {
  const fs::path other = temp_dir() / "other.h5";
  ArrayFile f;
  f.format = "something-else";
  f.floats["x"] = {1.f, 2.f};
  write_array_file(other.string(), f);
  expect_refused(other, "expected \"fieldflow-flow-checkpoint\"");
  f.format = "fieldflow-flow-checkpoint";
  f.version = 99;
  write_array_file(other.string(), f);
  expect_refused(other, "format version 99 is not supported");
  const fs::path text = temp_dir() / "text.h5";
  write_bytes(text, "not an HDF5 file at all\n");
  expect_refused(text, "");
  expect_refused(temp_dir() / "missing.h5", "");
}

TEST(FlowCheckpoint, ArchitectureYamlRoundTrips) {
  FlowSpec s = spec();
  s.base = BaseKind::correlated_gaussian;
  s.base_box_size_mpch = 100;
  s.base_k_hmpc = {0.1, 0.2, 0.30000000000000004};
  s.base_pk = {1e3, 500.5, 1.0 / 3};
  s.negative_slope = 0.05;
  Config c = Config::parse(flow_spec_yaml(s), "yaml");
  const FlowSpec back = read_flow_spec(c.root().section("flow"));
  c.finish();
  EXPECT_EQ(flow_spec_yaml(back), flow_spec_yaml(s));
  EXPECT_EQ(back.base_k_hmpc, s.base_k_hmpc);
  EXPECT_EQ(back.base_pk, s.base_pk);
}

TEST(FlowConfig, BadValuesAreNamed) {
  auto fails = [](const std::string& yaml, const std::string& fragment) {
    try {
      Config c = Config::parse(yaml, "run.yaml");
      read_flow_spec(c.root().section("flow"));
      FAIL() << yaml;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  fails("flow:\n  mixing: shuffle\n", "flow.mixing");
  fails("flow:\n  activation: leaky_relu\n  leaky_slope: 1.5\n", "flow.leaky_slope");
  fails("flow:\n  grid: 6\n", "cannot be squeezed");
  fails("flow:\n  levels:\n    checkerboard_couplings: [2, 2]\n    hidden_checkerboard: [4]\n",
        "flow.levels.hidden_checkerboard");
  fails("flow:\n  base:\n    kind: correlated_gaussian\n", "flow.base.box_size_mpch");
}

// The correlated base takes its P(k) from the CSV `fieldflow pk` writes.
TEST(FlowConfig, CorrelatedBaseReadsPowerFromPkCsv) {
  const std::string csv = testing::TempDir() + "/fieldflow_flow_config_pk.csv";
  const std::vector<double> k{0.05, 0.1, 0.2}, pk{2e4, 1e4, 4e3}, nmodes{26, 66, 158};
  write_csv(csv, {{"k", &k}, {"pk", &pk}, {"nmodes", &nmodes}});
  Config c = Config::parse(
      "flow:\n  grid: 8\n  base:\n    kind: correlated_gaussian\n"
      "    box_size_mpch: 100\n    power_csv: " +
          csv + "\n",
      "run.yaml");
  const FlowSpec s = read_flow_spec(c.root().section("flow"));
  c.finish();
  EXPECT_EQ(s.base_k_hmpc, k);
  EXPECT_EQ(s.base_pk, pk);
  Config both = Config::parse(
      "flow:\n  base:\n    kind: correlated_gaussian\n"
      "    box_size_mpch: 100\n    power_csv: " +
          csv + "\n    pk: [1, 2]\n",
      "run.yaml");
  EXPECT_THROW(read_flow_spec(both.root().section("flow")), Error);
  std::remove(csv.c_str());
}

// The shipped configs parse; configs/bench.yaml is exactly bench-32.
TEST(FlowConfig, ShippedConfigs) {
  const std::string dir = std::string(FIELDFLOW_SOURCE_DIR) + "/configs/";
  Config bench = Config::load(dir + "bench.yaml");
  EXPECT_EQ(flow_spec_yaml(read_flow_spec(bench.root().section("flow"))),
            flow_spec_yaml(bench32_flow_spec()));
  bench.finish();
  for (const char* name : {"flow.yaml", "flow_correlated.yaml"}) {
    Config c = Config::load(dir + name);
    const FlowSpec s = read_flow_spec(c.root().section("flow"));
    c.finish();
    EXPECT_GT(MultiScaleFlow<float>(s).parameter_count(), 0u) << name;
  }
}

}  // namespace
}  // namespace ff
