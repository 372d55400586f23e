// Flow checkpoints: a bit-exact round trip (architecture, parameters, fixed mixings, actnorm state,
// Adam state, preprocessing, training data, extras), self-containedness (the fixed mixings come
// from the file, not the seed), clear refusals of truncated, corrupted, foreign, old-version and
// invalid files, the FNV-1a checksum against published values, and the preprocessing's forward,
// inverse, log-Jacobian and gradient against finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <numbers>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/provenance.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/core/simd.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/fields.hpp"
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
  s.global_context = true;  // its G arrays go through the round trip too
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
  Preprocessing prep = [] {
    Preprocessing p{PreprocessTransform::log1p, 0.25, 1.75, 1e-3};
    p.marginal = MarginalMap({-3, -1, 0.5, 2}, {-2.5, -1.1, 0.6, 2.4});
    return p;
  }();
  TrainingData data = [] {
    TrainingData d{128.0, 0.5, {0.05, 0.1, 0.2}, {2e4, 1e4, 4e3}};
    d.y_min = -4.25;
    d.y_max = 5.5;
    return d;
  }();
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
  s->flow.initialize_actnorms(x);
  for (int step = 0; step < 2; ++step) {
    s->adam->zero_grad();
    s->flow.nll_backward(x);
    s->adam->step();
  }
  ArrayFile extras;
  extras.numbers["train.rng_position"] = 12345;
  extras.doubles["train.order"] = {3, 1, 2};
  extras.texts["train.settings"] = "train: {steps: 4}";
  save_flow_checkpoint(s->path.string(), s->flow, s->prep, s->data, s->adam.get(), &extras);
  return s;
}

TEST(FlowCheckpoint, RoundTripIsBitExact) {
  auto saved = save_trained("round_trip.h5");
  FlowCheckpoint loaded = load_flow_checkpoint(saved->path.string());
  EXPECT_EQ(flow_spec_yaml(loaded.flow->spec()), flow_spec_yaml(saved->flow.spec()));
  const auto a = saved->flow.params(), b = loaded.flow->params();
  ASSERT_EQ(a.size(), b.size());
  size_t global_arrays = 0;
  for (size_t k = 0; k < a.size(); ++k) {
    global_arrays += a[k]->name.ends_with(".global");
    EXPECT_EQ(a[k]->name, b[k]->name);
    ASSERT_EQ(a[k]->size(), b[k]->size());
    EXPECT_EQ(std::memcmp(a[k]->value.data(), b[k]->value.data(), a[k]->size() * sizeof(float)), 0)
        << a[k]->name;
  }
  EXPECT_EQ(global_arrays, 6u);  // one per coupling
  for (ActNorm<float>* an : loaded.flow->actnorms()) EXPECT_TRUE(an->initialized);
  EXPECT_EQ(loaded.preprocessing.transform, PreprocessTransform::log1p);
  EXPECT_EQ(loaded.preprocessing.mean, 0.25);
  EXPECT_EQ(loaded.preprocessing.std, 1.75);
  EXPECT_EQ(loaded.preprocessing.eps, 1e-3);
  EXPECT_EQ(loaded.preprocessing.marginal.t_knots(), saved->prep.marginal.t_knots());
  EXPECT_EQ(loaded.preprocessing.marginal.y_knots(), saved->prep.marginal.y_knots());
  EXPECT_EQ(loaded.data.box_size_mpch, 128.0);
  EXPECT_EQ(loaded.data.redshift, 0.5);
  EXPECT_EQ(loaded.data.delta_pk_k_hmpc, saved->data.delta_pk_k_hmpc);
  EXPECT_EQ(loaded.data.delta_pk, saved->data.delta_pk);
  EXPECT_EQ(loaded.data.y_min, -4.25);
  EXPECT_EQ(loaded.data.y_max, 5.5);
  EXPECT_EQ(loaded.extras.numbers.at("train.rng_position"), 12345);
  EXPECT_EQ(loaded.extras.doubles.at("train.order"), (std::vector<double>{3, 1, 2}));
  EXPECT_EQ(loaded.extras.texts.at("train.settings"), "train: {steps: 4}");
  EXPECT_EQ(loaded.extras.numbers.size(), 1u);
  // Provenance: this build, the SIMD target, and without settings the architecture's YAML.
  EXPECT_EQ(loaded.provenance.version, fieldflow_version());
  EXPECT_EQ(loaded.provenance.git_commit, fieldflow_git_commit());
  EXPECT_EQ(loaded.provenance.simd_target, simd_target_name());
  EXPECT_EQ(loaded.provenance.settings, flow_spec_yaml(saved->flow.spec()));
  const auto ma = saved->flow.mixings(), mb = loaded.flow->mixings();
  ASSERT_EQ(ma.size(), mb.size());
  ASSERT_GT(ma.size(), 0u);
  for (size_t k = 0; k < ma.size(); ++k) {
    EXPECT_EQ(ma[k]->perm, mb[k]->perm);
    EXPECT_EQ(ma[k]->sign, mb[k]->sign);
  }
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
  save_flow_checkpoint(again.string(), *loaded.flow, loaded.preprocessing, loaded.data, &resumed,
                       &loaded.extras);
  ArrayFile extras;
  extras.numbers["train.rng_position"] = 12345;
  extras.doubles["train.order"] = {3, 1, 2};
  extras.texts["train.settings"] = "train: {steps: 4}";
  save_flow_checkpoint(saved->path.string(), saved->flow, saved->prep, saved->data,
                       saved->adam.get(), &extras);
  const ArrayFile f1 = read_array_file(saved->path.string(), "fieldflow-flow-checkpoint", 2, 2);
  const ArrayFile f2 = read_array_file(again.string(), "fieldflow-flow-checkpoint", 2, 2);
  EXPECT_EQ(f1.doubles, f2.doubles);
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

// A checkpoint of format version 1 (whose checksums used an offset basis one digit short of
// FNV-1a's) is refused with one line naming the file and the version.
TEST(FlowCheckpoint, OldFormatVersionIsRefused) {
  const fs::path old = temp_dir() / "version1.h5";
  ArrayFile f;
  f.format = "fieldflow-flow-checkpoint";
  f.version = 1;
  f.floats["x"] = {1.f};
  write_array_file(old.string(), f);
  expect_refused(old, "format version 1 is not supported (this build reads version 2)");
}

// FNV-1a 64 against published test vectors (offset basis 14695981039346656037).
TEST(FlowCheckpoint, Fnv1a64MatchesPublishedValues) {
  EXPECT_EQ(fnv1a64("", 0), 14695981039346656037ull);
  EXPECT_EQ(fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar", 6), 0x85944171f73967e8ull);
}

// Valid checksums over invalid contents: each is refused with one line naming the file.
TEST(FlowCheckpoint, InvalidContentsAreRefused) {
  auto saved = save_trained("valid.h5");
  const ArrayFile good = read_array_file(saved->path.string(), "fieldflow-flow-checkpoint", 2, 2);
  std::string weight;  // a parameter with at least 4 values
  for (Param<float>* p : saved->flow.params())
    if (weight.empty() && p->size() >= 4) weight = p->name;
  const std::string first = "param." + weight;
  const std::string adam_v = "adam.v." + weight;
  std::string lu;  // an LU mixing's name
  for (ChannelMixing<float>* m : saved->flow.mixings()) lu = "mixing." + m->name();
  const double nan = std::nan("");
  const std::vector<std::pair<std::function<void(ArrayFile&)>, std::string>> cases = {
      {[](ArrayFile& f) { f.numbers["preprocessing.std"] = 0; }, "std must be positive"},
      {[](ArrayFile& f) { f.numbers["preprocessing.std"] = -2; }, "std must be positive"},
      {[&](ArrayFile& f) { f.numbers["preprocessing.std"] = nan; },
       "preprocessing.std is not finite"},
      {[](ArrayFile& f) { f.numbers["preprocessing.mean"] = INFINITY; }, "mean is not finite"},
      {[](ArrayFile& f) { f.numbers["preprocessing.eps"] = -1; }, "eps must be >= 0"},
      {[](ArrayFile& f) { f.doubles["preprocessing.marginal.y"][2] = -3; },
       "marginal map: knots must be strictly increasing (knot 2)"},
      {[](ArrayFile& f) { f.doubles["preprocessing.marginal.y"].pop_back(); },
       "preprocessing.marginal.y has 3 values, expected 4"},
      {[](ArrayFile& f) { f.doubles.erase("preprocessing.marginal.t"); },
       "checkpoint has no preprocessing.marginal.t"},
      {[](ArrayFile& f) { f.texts["preprocessing.transform"] = "sqrt"; },
       "expected identity or log1p, got \"sqrt\""},
      {[&](ArrayFile& f) { f.floats[first][3] = nan; }, "holds a non-finite value at index 3"},
      {[&](ArrayFile& f) { f.floats[first][0] = -INFINITY; }, "non-finite value at index 0"},
      {[&](ArrayFile& f) { f.floats[adam_v][1] = -1.f; }, "negative second moment"},
      {[](ArrayFile& f) { f.numbers["data.box_size_mpch"] = 0; }, "box size must be positive"},
      {[](ArrayFile& f) { f.numbers.erase("data.redshift"); }, "checkpoint has no data.redshift"},
      {[](ArrayFile& f) { f.doubles["data.delta_pk.k_hmpc"][2] = 0.01; }, "increasing positive k"},
      {[](ArrayFile& f) { f.doubles["data.delta_pk.pk"].pop_back(); },
       "data.delta_pk.k_hmpc has 3 values, expected 2"},
      {[](ArrayFile& f) { f.numbers["data.y_max"] = -5; }, "y_min < y_max, got -4.25 .. -5"},
      {[&](ArrayFile& f) { f.numbers["data.y_min"] = nan; }, "data.y_min is not finite"},
      {[](ArrayFile& f) { f.numbers.erase("data.y_max"); }, "checkpoint has no data.y_max"},
      {[](ArrayFile& f) {
         for (auto& [name, v] : f.numbers)
           if (name.rfind("actnorm.", 0) == 0) v = 0.5;
       },
       "must be 0 or 1"},
      {[&](ArrayFile& f) { f.doubles[lu + ".perm"][1] = f.doubles[lu + ".perm"][0]; },
       "P is not a permutation"},
      {[&](ArrayFile& f) { f.doubles[lu + ".sign"][0] = 2; }, "signs must be +-1"},
      {[&](ArrayFile& f) { f.doubles.erase(lu + ".sign"); }, "checkpoint has no " + lu + ".sign"},
  };
  int k = 0;
  for (const auto& [mutate, fragment] : cases) {
    ArrayFile f = good;
    mutate(f);
    const fs::path bad = temp_dir() / ("invalid_" + std::to_string(k++) + ".h5");
    write_array_file(bad.string(), f);
    expect_refused(bad, fragment);
  }
}

// The fixed mixings are read from the file: a checkpoint whose architecture names another seed
// (which would draw other permutations and rotations) gives the same log p, bit for bit; a
// stored matrix that is edited is what the loaded flow uses; a stored matrix that is not
// orthogonal (or not a permutation) is refused.
TEST(FlowCheckpoint, FixedMixingsComeFromTheFile) {
  for (MixingKind kind : {MixingKind::orthogonal, MixingKind::permutation}) {
    FlowSpec s = spec();
    s.mixing = kind;
    s.actnorm = false;
    MultiScaleFlow<float> flow(s);
    flow.perturb(4, 0.1);
    const fs::path path = temp_dir() / (std::string("mixing_") + to_string(kind) + ".h5");
    save_flow_checkpoint(path.string(), flow, Preprocessing{}, TrainingData{100.0, 0.0});
    const Tensor<float> x = batch();
    const std::vector<double> expected = flow.log_prob(x);
    ArrayFile f = read_array_file(path.string(), "fieldflow-flow-checkpoint", 2, 2);

    ArrayFile reseeded = f;
    std::string& arch = reseeded.texts["architecture"];
    const size_t at = arch.find("seed: 7");
    ASSERT_NE(at, std::string::npos);
    arch.replace(at, 7, "seed: 8");
    write_array_file(path.string(), reseeded);
    EXPECT_EQ(load_flow_checkpoint(path.string()).flow->log_prob(x), expected);
    {  // The seed does draw other mixings: without the stored ones log p would change.
      FlowSpec other = s;
      other.seed = 8;
      MultiScaleFlow<float> redrawn(other);
      const auto from = flow.params(), to = redrawn.params();
      for (size_t k = 0; k < from.size(); ++k) to[k]->value = from[k]->value;
      EXPECT_NE(redrawn.log_prob(x), expected);
    }

    ArrayFile edited = f;
    std::string name;
    for (auto& [key, values] : edited.doubles)
      if (key.rfind("mixing.", 0) == 0) {
        name = key;
        const size_t C = size_t(std::sqrt(double(values.size())));
        for (size_t j = 0; j < C; ++j) std::swap(values[j], values[C + j]);  // swap rows 0, 1
        break;
      }
    ASSERT_FALSE(name.empty());
    write_array_file(path.string(), edited);
    FlowCheckpoint loaded = load_flow_checkpoint(path.string());
    bool found = false;
    for (ChannelMixing<float>* m : loaded.flow->mixings())
      if ("mixing." + m->name() + ".matrix" == name) {
        EXPECT_EQ(m->fixed, edited.doubles[name]);
        found = true;
      }
    EXPECT_TRUE(found);
    EXPECT_NE(loaded.flow->log_prob(x), expected);

    edited.doubles[name][0] += 0.5;
    write_array_file(path.string(), edited);
    expect_refused(path, "is not orthogonal");
  }
}

// A flow saved before its actnorms were initialised loads with that state recorded, and is
// refused for use (what logp and sample call), naming the file.
TEST(FlowCheckpoint, UninitialisedActNormsAreRecorded) {
  MultiScaleFlow<float> flow(spec());
  const fs::path path = temp_dir() / "uninitialised.h5";
  save_flow_checkpoint(path.string(), flow, Preprocessing{}, TrainingData{100.0, 0.0});
  FlowCheckpoint loaded = load_flow_checkpoint(path.string());
  for (ActNorm<float>* a : loaded.flow->actnorms()) EXPECT_FALSE(a->initialized);
  try {
    loaded.require_initialized();
    FAIL() << "accepted uninitialised actnorms";
  } catch (const Error& e) {
    EXPECT_EQ(e.input(), path.string());
    EXPECT_NE(std::string(e.what()).find("uninitialised"), std::string::npos) << e.what();
  }
  loaded.flow->initialize_actnorms(batch());
  loaded.require_initialized();
}

// Saving needs the training data's box (and, with a correlated base, the same box).
TEST(FlowCheckpoint, SaveNeedsTheTrainingBox) {
  MultiScaleFlow<float> flow(spec());
  const fs::path path = temp_dir() / "nobox.h5";
  EXPECT_THROW(save_flow_checkpoint(path.string(), flow, Preprocessing{}, TrainingData{}), Error);
  EXPECT_FALSE(fs::exists(path));
  FlowSpec s = spec();
  s.base = BaseKind::correlated_gaussian;
  s.base_box_size_mpch = 100;
  s.base_k_hmpc = {0.1, 1.0};
  s.base_pk = {100, 1};
  MultiScaleFlow<float> correlated(s);
  EXPECT_THROW(
      save_flow_checkpoint(path.string(), correlated, Preprocessing{}, TrainingData{128.0, 0.0}),
      Error);
  save_flow_checkpoint(path.string(), correlated, Preprocessing{}, TrainingData{100.0, 0.0});
  EXPECT_EQ(load_flow_checkpoint(path.string()).data.box_size_mpch, 100.0);
}

// ---- preprocessing ----

// y(delta), delta(y), log|dy/ddelta| and its derivative, and the chain rule of chain_gradient,
// against finite differences; for both transforms.
TEST(Preprocessing, ForwardInverseJacobianAndGradient) {
  std::vector<Preprocessing> cases = {{PreprocessTransform::identity, 0.3, 1.7, 0.0},
                                      {PreprocessTransform::log1p, -0.2, 0.8, 1e-3},
                                      {PreprocessTransform::log1p, 0.1, 2.5, 0.0}};
  // With a marginal map: the test values reach both linear continuations and no knot.
  for (PreprocessTransform t : {PreprocessTransform::log1p, PreprocessTransform::identity}) {
    Preprocessing p{t, -0.2, 0.8, t == PreprocessTransform::log1p ? 1e-3 : 0.0};
    p.marginal =
        MarginalMap({-2, -1, -0.3, 0, 0.5, 1.5, 3}, {-2.5, -1.2, -0.2, 0.1, 0.4, 1.2, 2.2});
    cases.push_back(p);
  }
  const double h = 1e-6;
  for (const Preprocessing& p : cases) {
    for (double delta : {-0.95, -0.5, 0.0, 0.7, 4.0, 30.0}) {
      if (p.transform == PreprocessTransform::identity && !p.marginal.empty() && delta > 4)
        continue;  // keep to the map's span of u there: 30 is u = 37
      const double y = p.forward(delta);
      EXPECT_NEAR(p.inverse(y), delta, 1e-12 * std::max(1.0, std::abs(delta)));
      const double inverse_slope = (p.inverse(y + h) - p.inverse(y - h)) / (2 * h);
      EXPECT_NEAR(p.inverse_derivative(y), inverse_slope, 1e-6 * std::max(1.0, inverse_slope));
      const double slope = (p.forward(delta + h) - p.forward(delta - h)) / (2 * h);
      EXPECT_NEAR(p.log_jacobian(delta), std::log(slope), 1e-7);
      const double curvature = (p.log_jacobian(delta + h) - p.log_jacobian(delta - h)) / (2 * h);
      EXPECT_NEAR(p.log_jacobian_derivative(delta), curvature,
                  1e-6 * std::max(1.0, std::abs(curvature)));
      // log p(delta) = g(y(delta)) + log|dy/ddelta| for a smooth g standing in for the flow.
      auto g = [](double v) { return -0.5 * v * v + std::sin(v); };
      auto g_prime = [](double v) { return -v + std::cos(v); };
      auto total = [&](double d) { return g(p.forward(d)) + p.log_jacobian(d); };
      double grad = g_prime(y);
      p.chain_gradient(&delta, &grad, 1);
      const double fd = (total(delta + h) - total(delta - h)) / (2 * h);
      EXPECT_NEAR(grad, fd, 1e-6 * std::max(1.0, std::abs(fd))) << delta;
    }
    std::vector<double> values{-0.5, 0.0, 2.0};
    double expected = 0;
    for (double v : values) expected += p.log_jacobian(v);
    const std::vector<double> original = values;
    EXPECT_NEAR(p.apply(values.data(), values.size()), expected, 1e-12);
    p.invert(values.data(), values.size());
    for (size_t i = 0; i < values.size(); ++i) EXPECT_NEAR(values[i], original[i], 1e-12);
  }
  const Preprocessing log{PreprocessTransform::log1p, 0, 1, 1e-3};
  EXPECT_NO_THROW(log.forward(-1.0));  // an empty cell: finite thanks to eps
  EXPECT_TRUE(std::isfinite(log.forward(-1.0)));
  EXPECT_THROW(log.forward(-1.01), Error);
  EXPECT_NO_THROW(Preprocessing{}.validate("x"));
  EXPECT_THROW((Preprocessing{PreprocessTransform::identity, 0, 0, 0}.validate("x")), Error);
}

// The marginal map: through its knots, increasing with h' > 0 everywhere (also where PCHIP's
// slopes reach 3 times a secant), h', h''/h' and the inverse against finite differences and
// round trips, linear beyond the end knots, and refusals of knots it cannot take.
TEST(MarginalMap, MonotoneCubicThroughItsKnots) {
  const CounterRng rng(41, 0);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<double> t{-3}, y{-1};
    for (int i = 1; i < 12; ++i) {
      // Secants spanning four decades, and a steep segment between two flat ones.
      const uint64_t c = uint64_t(trial) * 100 + uint64_t(i);
      t.push_back(t.back() + 0.05 + rng.uniform(2 * c));
      y.push_back(y.back() + std::pow(10.0, 4 * rng.uniform(2 * c + 1) - 2));
    }
    const MarginalMap h(t, y);
    for (size_t i = 0; i < t.size(); ++i) {
      EXPECT_NEAR(h.value(t[i]), y[i], 1e-12 * std::max(1.0, std::abs(y[i])));
      EXPECT_NEAR(h.inverse(y[i]), t[i], 1e-10 * std::max(1.0, std::abs(t[i])));
    }
    const double lo = t.front() - 2, hi = t.back() + 2, step = (hi - lo) / 4000;
    double previous = -INFINITY;
    for (double u = lo; u <= hi; u += step) {
      const double v = h.value(u);
      EXPECT_GT(v, previous) << "trial " << trial << " u " << u;
      EXPECT_GT(h.derivative(u), 0) << "trial " << trial << " u " << u;
      previous = v;
      EXPECT_NEAR(h.inverse(v), u, 1e-9 * std::max(1.0, std::abs(u))) << trial;
      // Finite differences away from the knots (h'' jumps there).
      const double d = 1e-6 * std::max(1.0, std::abs(u));
      bool near_knot = false;
      for (double k : t) near_knot = near_knot || std::abs(u - k) < 10 * d;
      if (near_knot) continue;
      const double slope = (h.value(u + d) - h.value(u - d)) / (2 * d);
      EXPECT_NEAR(h.derivative(u), slope, 1e-6 * std::max(1.0, slope)) << trial << " " << u;
      const double curvature =
          (std::log(h.derivative(u + d)) - std::log(h.derivative(u - d))) / (2 * d);
      EXPECT_NEAR(h.log_derivative_slope(u), curvature, 1e-4 * std::max(1.0, std::abs(curvature)))
          << trial << " " << u;
    }
    // Linear continuations with the end secants.
    EXPECT_NEAR(h.value(t.front() - 1), y.front() - (y[1] - y[0]) / (t[1] - t[0]), 1e-12);
    EXPECT_EQ(h.log_derivative_slope(t.back() + 1), 0.0);
  }
  // The extreme PCHIP case: two equal neighbouring secants give slope 3 times the flatter one
  // without the cap; h' stays positive.
  const MarginalMap steep({0, 1, 2, 3}, {0, 0.001, 10, 10.001});
  for (double u = 0; u <= 3; u += 1e-3) EXPECT_GT(steep.derivative(u), 0) << u;
  // Empty: the identity.
  const MarginalMap identity;
  EXPECT_TRUE(identity.empty());
  EXPECT_EQ(identity.value(0.3), 0.3);
  EXPECT_EQ(identity.inverse(0.3), 0.3);
  EXPECT_EQ(identity.derivative(0.3), 1.0);
  for (const auto& [t, y] :
       std::vector<std::pair<std::vector<double>, std::vector<double>>>{{{0}, {0}},
                                                                        {{0, 1}, {0, 1, 2}},
                                                                        {{0, 1, 1}, {0, 1, 2}},
                                                                        {{0, 1, 2}, {0, 2, 1}},
                                                                        {{0, NAN}, {0, 1}}})
    EXPECT_THROW(MarginalMap(t, y), Error);
}

// With a standard normal density over y, exp(log p(delta)) is the derivative of the CDF
// Phi(y(delta)) over delta: the log-Jacobian makes log p a density over delta itself.
TEST(Preprocessing, DensityOverDeltaIsTheDerivativeOfItsCdf) {
  Preprocessing mapped{PreprocessTransform::log1p, 0.4, 0.9, 1e-3};
  mapped.marginal = MarginalMap({-2, -0.5, 0, 1, 2.5}, {-1.5, -0.8, 0.2, 0.6, 3});
  for (const Preprocessing& p :
       {Preprocessing{PreprocessTransform::log1p, 0.4, 0.9, 1e-3}, mapped}) {
    const double h = 1e-5;
    for (double delta : {-0.9, -0.3, 0.5, 3.0}) {
      auto cdf = [&](double d) { return 0.5 * std::erfc(-p.forward(d) / std::sqrt(2.0)); };
      const double y = p.forward(delta);
      const double density =
          std::exp(-0.5 * y * y - 0.5 * std::log(2 * std::numbers::pi) + p.log_jacobian(delta));
      EXPECT_NEAR(density, (cdf(delta + h) - cdf(delta - h)) / (2 * h), 1e-7 * density + 1e-12);
    }
  }
}

TEST(FlowCheckpoint, ArchitectureYamlRoundTrips) {
  FlowSpec s = spec();
  s.base = BaseKind::correlated_gaussian;
  s.base_box_size_mpch = 100;
  s.base_k_hmpc = {0.1, 0.2, 0.30000000000000004};
  s.base_pk = {1e3, 500.5, 1.0 / 3};
  s.base_pk0 = 12.25;
  s.negative_slope = 0.05;
  s.mixing = MixingKind::lu;
  s.mixing_identity = true;
  Config c = Config::parse(flow_spec_yaml(s), "yaml");
  const FlowSpec back = read_flow_spec(c.root().section("flow"));
  c.finish();
  EXPECT_EQ(flow_spec_yaml(back), flow_spec_yaml(s));
  EXPECT_EQ(back.base_k_hmpc, s.base_k_hmpc);
  EXPECT_EQ(back.base_pk, s.base_pk);
  EXPECT_EQ(back.base_pk0, s.base_pk0);
  EXPECT_TRUE(back.mixing_identity);
  EXPECT_TRUE(back.global_context);
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
  fails("flow:\n  mixing: orthogonal\n  mixing_init: identity\n", "flow.mixing_init");
  fails("flow:\n  activation: leaky_relu\n  leaky_slope: 1.5\n", "flow.leaky_slope");
  fails("flow:\n  grid: 6\n", "cannot be squeezed");
  fails("flow:\n  levels:\n    checkerboard_couplings: [2, 2]\n    hidden_checkerboard: [4]\n",
        "flow.levels.hidden_checkerboard");
  fails("flow:\n  base:\n    kind: correlated_gaussian\n", "flow.base.box_size_mpch");
  fails("flow:\n  base:\n    kind: correlated_gaussian\n    power: measured\n    pk0: 5\n",
        "flow.base.power");
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

// The shipped models were written before `base.pk0`: they load, and their base gives the k = 0
// mode P at the smallest tabulated k, as it did when they were trained and measured.
TEST(FlowCheckpoint, ShippedModelsWithoutPk0KeepTheOldRule) {
  for (const char* name : {"flow32_science.h5", "flow32_wide.h5"}) {
    FlowCheckpoint c = load_flow_checkpoint(std::string(FIELDFLOW_SOURCE_DIR) + "/models/" + name);
    const FlowSpec& s = c.flow->spec();
    EXPECT_EQ(s.base_pk0, 0.0) << name;
    ASSERT_NE(c.flow->correlated_base(), nullptr) << name;
    const double L = s.base_box_size_mpch,
                 volume_factor = std::pow(double(s.grid), 3) / (L * L * L);
    EXPECT_DOUBLE_EQ(c.flow->correlated_base()->eigenvalues()[0], s.base_pk.front() * volume_factor)
        << name;
  }
}

// The calibrated models: the base measures the k = 0 mode, and each carries the spectral scales of
// the bins below k_N/2 and the marginal map that run/calibrate.sh fitted (models/README.md); a
// sample of it lies above delta = -1 - eps and has a finite log p. flow32_deep has eight channel
// couplings of 64 hidden channels at 16^3.
void expect_shipped_calibrated_model(const std::string& name, double scale_bin1, double scale_bin7,
                                     int channel_couplings_16) {
  SCOPED_TRACE(name);
  FlowCheckpoint c = load_flow_checkpoint(std::string(FIELDFLOW_SOURCE_DIR) + "/models/" + name);
  const FlowSpec& s = c.flow->spec();
  EXPECT_EQ(s.levels.at(0).channel_couplings, channel_couplings_16);  // after the first squeeze
  EXPECT_GT(s.base_pk0, 0.0);
  const double L = s.base_box_size_mpch, volume_factor = std::pow(double(s.grid), 3) / (L * L * L);
  EXPECT_DOUBLE_EQ(c.flow->correlated_base()->eigenvalues()[0], s.base_pk0 * volume_factor);
  ASSERT_NE(c.flow->calibration(), nullptr);
  const std::vector<float>& log_scale = c.flow->calibration()->log_scale.value;
  // The bins below 0.38 h/Mpc (1-7) fitted, the others (and k = 0) at scale 1.
  EXPECT_NEAR(std::exp(log_scale[1]), scale_bin1, 1e-4);
  EXPECT_NEAR(std::exp(log_scale[7]), scale_bin7, 1e-4);
  for (size_t b = 0; b < log_scale.size(); ++b)
    if (b == 0 || b > 7) {
      EXPECT_EQ(log_scale[b], 0.f) << b;
    }
  EXPECT_EQ(c.preprocessing.marginal.t_knots().size(), 64u);
  EXPECT_TRUE(std::isfinite(c.data.y_min) && std::isfinite(c.data.y_max));
  const GridF sample = sample_field(c, 3, 0, 1.0, true);
  for (float v : sample.values) ASSERT_GT(v, -1.0f - 1e-3f);
  EXPECT_TRUE(std::isfinite(field_log_density(c, sample)));
}

TEST(FlowCheckpoint, ShippedCalibratedModelsLoad) {
  expect_shipped_calibrated_model("flow32_calibrated.h5", 0.8233, 1.0329, 2);
  expect_shipped_calibrated_model("flow32_deep.h5", 0.8976, 1.0179, 8);
  // flow32_deep recalibrated for samples conditioned on the box's mean density (MEAN_TOL 0.01).
  expect_shipped_calibrated_model("flow32_deep_conditioned.h5", 0.8882, 1.0222, 8);
}

// delta against the field's own mean density: mean 0, 1 + delta + eps scaled by one factor (so
// values stay where log1p is defined), and a field whose mean density is not positive refused.
TEST(SampleZeroMean, ScalesOnePlusDeltaPlusEps) {
  const double eps = 0.1;
  const std::vector<float> before = {-1.05f, 1.0f, 3.0f, -0.5f};
  std::vector<float> after = before;
  set_mean_delta_zero(after, eps);
  // mean of 1 + delta + eps: (0.05 + 2.1 + 4.1 + 0.6) / 4 = 1.7125
  const double c = 1.1 / 1.7125;
  double mean = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_NEAR(after[i], (1 + eps + before[i]) * c - 1 - eps, 1e-6) << i;
    EXPECT_GT(1 + eps + after[i], 0.0);
    mean += after[i] / 4.0;
  }
  EXPECT_NEAR(mean, 0.0, 1e-7);
  std::vector<float> no_mass = {-3.0f, 1.0f};  // identity: 1 + delta averages to 0
  try {
    set_mean_delta_zero(no_mass, 0.0);
    FAIL() << "a field of zero mean density was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.context(), "mean density");
  }
}

}  // namespace
}  // namespace ff
