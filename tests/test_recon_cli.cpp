// `fieldflow denoise` end to end on a small checkpoint written here (a Gaussian flow over a
// correlated base, and a perturbed log1p flow): the outputs and their layout, each config key
// changing the result, the combined estimate, a box larger than the flow's grid, and one clear
// line for each bad config.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fieldflow/core/config.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/flow/base.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/io/hdf5.hpp"
#include "fieldflow/recon/denoise.hpp"

namespace ff {
namespace {

namespace fs = std::filesystem;

const std::vector<double> kK = {0.05, 0.1, 0.2, 0.4, 0.8, 1.6};
const std::vector<double> kP = {3000, 2500, 900, 200, 30, 4};

struct CommandResult {
  int status;
  std::string output;  // stdout and stderr
  std::string error;   // stderr
};

fs::path scratch() {
  static const fs::path dir = [] {
    const fs::path d = fs::temp_directory_path() / ("ff_recon_cli_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

CommandResult run(const std::string& args) {
  const fs::path log = scratch() / "command.log", err = scratch() / "command.err";
  const std::string command =
      std::string(FIELDFLOW_BINARY) + " " + args + " > " + log.string() + " 2> " + err.string();
  const int status = std::system(command.c_str());
  auto text = [](const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text(log) + text(err), text(err)};
}

// Lognormal fields (delta > -1) with the table's spectrum: n^3 in a box of 4 Mpc/h cells.
std::string truth_file(int n, int count) {
  const fs::path p = scratch() / ("truth" + std::to_string(n) + ".h5");
  if (fs::exists(p)) return p.string();
  std::vector<Grid> grids;
  for (int i = 0; i < count; ++i) {
    Grid g(n, 4.0 * n, 0.5);
    CorrelatedGaussian::from_power(n, g.box_size_mpch, kK, kP, 0.0)
        .sample(g.values.data(), 40 + i, 0, 1.0);
    const double var = g.variance();
    for (double& v : g.values) v = std::exp(v - var / 2) - 1;
    grids.push_back(g);
  }
  write_grid_stack(p.string(), grids);
  return p.string();
}

// A 16^3 flow over a correlated base with the table's spectrum, box 64 Mpc/h.
std::string checkpoint_file(const std::string& name, const Preprocessing& pre, double perturb,
                            double box = 64.0, double y_min = NAN, double y_max = NAN) {
  const fs::path p = scratch() / name;
  if (fs::exists(p)) return p.string();
  FlowSpec spec;
  spec.grid = 16;
  spec.levels = {{1, 1, 4, 6}, {2, 0, 4, 0}};
  spec.base = BaseKind::correlated_gaussian;
  spec.base_k_hmpc = kK;
  spec.base_pk = kP;
  spec.base_box_size_mpch = box;
  MultiScaleFlow<float> flow(spec);
  if (perturb > 0) flow.perturb(3, perturb);
  TrainingData data{box, 0.5};
  data.y_min = y_min;
  data.y_max = y_max;
  save_flow_checkpoint(p.string(), flow, pre, data);
  return p.string();
}

// A 16^3 flow over the standard normal base: its box comes from the checkpoint's training data.
std::string normal_base_checkpoint(double box) {
  const fs::path p = scratch() / ("normal" + std::to_string(int(box)) + ".h5");
  if (fs::exists(p)) return p.string();
  FlowSpec spec;
  spec.grid = 16;
  spec.levels = {{1, 1, 4, 6}, {2, 0, 4, 0}};
  MultiScaleFlow<float> flow(spec);
  save_flow_checkpoint(p.string(), flow, Preprocessing{}, TrainingData{box, 0.5});
  return p.string();
}

std::string gaussian_checkpoint() {
  return checkpoint_file("gauss.h5", Preprocessing{}, 0.0);
}
std::string log1p_checkpoint() {
  return checkpoint_file("log1p.h5", Preprocessing{PreprocessTransform::log1p, -0.1, 0.5}, 0.02);
}

std::string base_yaml(const std::string& checkpoint, const std::string& truth,
                      const std::string& out) {
  return "denoise:\n  checkpoint: " + checkpoint + "\n  truth: {grid: " + truth +
         ", index: 1}\n  noise: {sigma: 0.8, seed: 1}\n"
         "  mask: {kind: cubes, fraction: 0.3, size: 2, seed: 2}\n"
         "  wiener: {tolerance: 1.0e-8, max_iterations: 500}\n"
         "  map: {init: wiener, max_iterations: 8}\n  prior_samples: 4\n"
         "  combined: {k_split_hmpc: 0.3}\n  out: " +
         out + "\n";
}

DenoiseSettings settings_of(const std::string& yaml, const std::vector<std::string>& set = {}) {
  Config c = Config::parse(yaml, "test.yaml", set);
  DenoiseSettings s = read_denoise_settings(c.root().section("denoise"));
  c.finish();
  return s;
}

std::vector<double> read_cube(const std::string& path, const std::string& name) {
  h5::File f = h5::File::open(path);
  h5::Dataset d = f.root().open_dataset(name);
  std::vector<double> v(d.element_count());
  d.read(v.data());
  return v;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// One command run per process, shared by the tests that read its outputs (ctest runs each test
// in a process of its own, so none may rely on another having run first).
const CommandResult& denoise_run() {
  static const CommandResult result = [] {
    const std::string out = (scratch() / "run" / "result.h5").string();
    const fs::path config = scratch() / "denoise.yaml";
    std::ofstream(config) << base_yaml(log1p_checkpoint(), truth_file(16, 3), out);
    return run("denoise " + config.string() + " --set denoise.report=false");
  }();
  return result;
}

TEST(DenoiseCli, WritesEveryOutput) {
  const std::string out = (scratch() / "run" / "result.h5").string();
  const CommandResult& r = denoise_run();
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("denoise: MAP of p(y|d)"), std::string::npos) << r.output;
  h5::File f = h5::File::open(out);
  for (const char* name :
       {"truth", "data", "mask", "noise_sigma", "wf", "map", "map_y", "combined"})
    EXPECT_EQ(f.root().open_dataset(name).shape(), (std::vector<hsize_t>{16, 16, 16})) << name;
  EXPECT_EQ(f.root().read_attribute<double>("box_size"), 64.0);
  EXPECT_EQ(f.root().read_attribute<double>("redshift"), 0.5);
  EXPECT_EQ(f.root().open_dataset("combined").read_attribute<double>("k_split_hmpc"), 0.3);
  EXPECT_NE(f.root().read_attribute_string("settings").find("k_split_hmpc: 0.3"),
            std::string::npos);
  const auto shape = f.root().open_dataset("prior_pk").shape();
  EXPECT_EQ(shape.size(), 2u);
  EXPECT_EQ(shape[1], 2u);
  EXPECT_GT(shape[0], 4u);
  const std::string csv = read_text((scratch() / "run" / "result_metrics.csv").string());
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "k,nmodes,pk_truth,pk_data,wf_pk,wf_r,wf_transfer,wf_residual_pk,map_pk,map_r,"
            "map_transfer,map_residual_pk,combined_pk,combined_r,combined_transfer,"
            "combined_residual_pk");
  const std::string json = read_text((scratch() / "run" / "result_summary.json").string());
  for (const char* key : {"\"wiener\"", "\"iterations\"", "\"mse\"", "\"masked\"", "\"observed\"",
                          "\"headline\"", "\"combined_residual_vs_wf\"", "\"seconds\""})
    EXPECT_NE(json.find(key), std::string::npos) << key;
}

// The combination takes the WF's modes below k_split and the MAP's above: with k_split beyond
// every mode it is the WF, with a split of 0 (not even the mean below it) it is the MAP.
TEST(DenoiseCli, CombinationSwitchesAtTheSplit) {
  ASSERT_EQ(denoise_run().status, 0) << denoise_run().output;
  const std::vector<double> a = read_cube((scratch() / "run" / "result.h5").string(), "wf");
  const std::vector<double> b = read_cube((scratch() / "run" / "result.h5").string(), "map");
  ASSERT_EQ(a.size(), 4096u);
  const auto all_low = combine_by_wavenumber(a, b, 16, 64.0, 100.0);
  const auto all_high = combine_by_wavenumber(a, b, 16, 64.0, 0.0);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(all_low[i], a[i], 1e-5);
    EXPECT_NEAR(all_high[i], b[i], 1e-5);
  }
  // choose_k_split: when the MAP is the truth above 3 k_F and the WF below, the split is 3 k_F.
  const double kf = 2 * M_PI / 64.0;
  std::vector<double> truth = read_cube((scratch() / "run" / "result.h5").string(), "truth");
  const auto wf_like = combine_by_wavenumber(truth, a, 16, 64.0, 3 * kf);
  const auto map_like = combine_by_wavenumber(b, truth, 16, 64.0, 3 * kf);
  EXPECT_NEAR(choose_k_split({wf_like}, {map_like}, {truth}, 16, 64.0), 3 * kf, 1e-12);
}

// map.range: the training fields' range that the checkpoint records, widened by
// map.range_margin_y, or the fixed map.y_min..y_max (also for a checkpoint that records none).
TEST(DenoiseSettings, PriorRangeComesFromTheCheckpoint) {
  const Preprocessing pre{PreprocessTransform::log1p, -0.1, 0.5};
  const std::string ranged = checkpoint_file("log1p_ranged.h5", pre, 0.02, 64.0, -0.75, 1.0);
  const std::string out = (scratch() / "range" / "r.h5").string();
  const std::string truth = truth_file(16, 3);
  auto run = [&](const std::string& checkpoint, const std::vector<std::string>& set) {
    run_denoise(settings_of(base_yaml(checkpoint, truth, out), set), nullptr);
    return std::make_pair(read_cube(out, "map"),
                          read_text((scratch() / "range" / "r_summary.json").string()));
  };
  const auto [trained, trained_json] = run(ranged, {});
  EXPECT_NE(trained_json.find("\"range_y\": [-1.25, 1.5], \"range_source\": \"the training "
                              "fields' range\""),
            std::string::npos)
      << trained_json;
  const auto [narrow, narrow_json] = run(ranged, {"denoise.map.range_margin_y=0.25"});
  EXPECT_NE(narrow_json.find("\"range_y\": [-1, 1.25]"), std::string::npos) << narrow_json;
  EXPECT_NE(narrow, trained);
  const auto [fixed, fixed_json] = run(ranged, {"denoise.map.range=fixed"});
  EXPECT_NE(fixed_json.find("\"range_y\": [-5.7, 6.6], \"range_source\": \"map.y_min/y_max\""),
            std::string::npos)
      << fixed_json;
  EXPECT_NE(fixed, trained);
  const auto [older, older_json] = run(log1p_checkpoint(), {});
  EXPECT_NE(older_json.find("the checkpoint records no training range"), std::string::npos);
}

// map.runaway: masked voxels of the MAP beyond the recorded training range (no margin) are
// counted in the summary, the JSON and the HDF5 file, with a warning line; `refuse` stops with one
// line and writes nothing. A checkpoint whose recorded range is tiny makes every prior's MAP leave
// it in masked voxels; one with a wide range gives 0; one with none, null.
TEST(DenoiseSettings, RunawayIsCountedAndWarnOrRefuse) {
  const Preprocessing pre{PreprocessTransform::log1p, -0.1, 0.5};
  const std::string tight = checkpoint_file("log1p_tight.h5", pre, 0.02, 64.0, -0.05, 0.05);
  const std::string wide = checkpoint_file("log1p_wide.h5", pre, 0.02, 64.0, -50.0, 50.0);
  const fs::path dir = scratch() / "runaway";
  const std::string out = (dir / "r.h5").string(), truth = truth_file(16, 3);
  const std::string json = (dir / "r_summary.json").string();
  auto settings = [&](const std::string& checkpoint, const std::vector<std::string>& set) {
    return settings_of(base_yaml(checkpoint, truth, out), set);
  };
  const fs::path log_path = dir / "log.txt";
  fs::create_directories(dir);
  std::FILE* log = std::fopen(log_path.c_str(), "w");
  const DenoiseSummary warned = run_denoise(settings(tight, {}), log);
  std::fclose(log);
  EXPECT_GT(warned.map_masked_beyond_training, 0);
  const std::vector<double> y = read_cube(out, "map_y"), mask = read_cube(out, "mask");
  long count = 0;
  for (size_t i = 0; i < y.size(); ++i) count += mask[i] == 0 && std::fabs(y[i]) > 0.05;
  EXPECT_NEAR(double(warned.map_masked_beyond_training), double(count), 2.0);  // float32 y
  EXPECT_NE(read_text(json).find("\"masked_voxels_beyond_training\": " +
                                 std::to_string(warned.map_masked_beyond_training)),
            std::string::npos);
  {
    h5::File f = h5::File::open(out);
    EXPECT_EQ(f.root().open_dataset("map").read_attribute<long>("masked_voxels_beyond_training"),
              warned.map_masked_beyond_training);
  }
  EXPECT_NE(read_text(log_path.string())
                .find("denoise: warning: " + std::to_string(warned.map_masked_beyond_training) +
                      " masked voxel(s) of the MAP beyond the training "
                      "fields' range y in [-0.05, 0.05]"),
            std::string::npos)
      << read_text(log_path.string());

  // The posterior's kept draws are counted too (a warning, never refused): against the count
  // recomputed from the written draws and mask.
  log = std::fopen(log_path.c_str(), "w");
  const DenoiseSummary sampled = run_denoise(
      settings(tight, {"denoise.posterior={samples: 6, warmup: 4, chains: 1, leapfrog_steps: 2, "
                       "thin: 2, seed: 3}"}),
      log);
  std::fclose(log);
  ASSERT_TRUE(sampled.posterior);
  {
    const std::vector<double> draws = read_cube(out, "posterior_samples");
    const std::vector<double> m = read_cube(out, "mask");
    long draws_beyond = 0, most = 0;
    for (size_t d = 0; d < draws.size() / m.size(); ++d) {
      long c = 0;
      for (size_t i = 0; i < m.size(); ++i)
        c += m[i] == 0 && std::fabs(pre.forward(draws[d * m.size() + i])) > 0.05;
      draws_beyond += c > 0;
      most = std::max(most, c);
    }
    ASSERT_GT(most, 0);
    h5::File f = h5::File::open(out);
    h5::Dataset mean = f.root().open_dataset("posterior_mean");
    EXPECT_EQ(mean.read_attribute<long>("kept_draws_beyond_training"), draws_beyond);
    EXPECT_EQ(mean.read_attribute<long>("most_masked_voxels_beyond_training"), most);
    EXPECT_NE(
        read_text(json).find("\"kept_draws_beyond_training\": " + std::to_string(draws_beyond) +
                             ", \"most_masked_voxels_beyond_training\": " + std::to_string(most)),
        std::string::npos);
    EXPECT_NE(read_text(log_path.string())
                  .find("denoise: warning: " + std::to_string(draws_beyond) +
                        " of 3 kept posterior "
                        "draws have masked voxels beyond the training fields' range"),
              std::string::npos)
        << read_text(log_path.string());
  }

  fs::remove(out);
  try {
    run_denoise(settings(tight, {"denoise.map.runaway=refuse"}), nullptr);
    ADD_FAILURE() << "map.runaway: refuse did not refuse";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("denoise.map.runaway: refuse: "), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(out));
  // The validation fields that choose k_split are checked too.
  try {
    run_denoise(
        settings(tight, {"denoise.map.runaway=refuse", "denoise.combined.k_split_hmpc=0",
                         "denoise.combined.validation={grid: " + truth + ", indices: [2]}"}),
        nullptr);
    ADD_FAILURE() << "map.runaway: refuse did not refuse on a validation field";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("denoise.map.runaway: refuse: validation field 2: "),
              std::string::npos)
        << e.what();
  }

  EXPECT_EQ(run_denoise(settings(wide, {"denoise.map.runaway=refuse"}), nullptr)
                .map_masked_beyond_training,
            0);
  EXPECT_NE(read_text(json).find("\"masked_voxels_beyond_training\": 0,"), std::string::npos);
  EXPECT_EQ(run_denoise(settings(log1p_checkpoint(), {}), nullptr).map_masked_beyond_training, -1);
  EXPECT_NE(read_text(json).find("\"masked_voxels_beyond_training\": null,"), std::string::npos);
  run_denoise(settings(log1p_checkpoint(), {"denoise.posterior={samples: 2, warmup: 1, chains: 1, "
                                            "leapfrog_steps: 1, seed: 3}"}),
              nullptr);
  EXPECT_NE(read_text(json).find("\"kept_draws_beyond_training\": null, "
                                 "\"most_masked_voxels_beyond_training\": null"),
            std::string::npos);
}

// Every key changes what comes out.
TEST(DenoiseSettings, EachKeyChangesTheResult) {
  const std::string out = (scratch() / "keys" / "r.h5").string();
  const std::string yaml = base_yaml(log1p_checkpoint(), truth_file(16, 3), out);
  auto result = [&](const std::vector<std::string>& set, const std::string& name) {
    DenoiseSettings s = settings_of(yaml, set);
    run_denoise(s, nullptr);
    return read_cube(out, name);
  };
  auto json = [&](const std::vector<std::string>& set) {
    run_denoise(settings_of(yaml, set), nullptr);
    return read_text((scratch() / "keys" / "r_summary.json").string());
  };
  const auto data = result({}, "data");
  EXPECT_NE(result({"denoise.noise.sigma=0.5"}, "data"), data);
  EXPECT_NE(result({"denoise.noise.seed=9"}, "data"), data);
  EXPECT_NE(result({"denoise.truth.index=0"}, "truth"), result({}, "truth"));
  const auto mask = result({}, "mask");
  EXPECT_NE(result({"denoise.mask.kind=slab"}, "mask"), mask);
  EXPECT_NE(result({"denoise.mask.fraction=0.1"}, "mask"), mask);
  EXPECT_NE(result({"denoise.mask.size=3"}, "mask"), mask);
  EXPECT_NE(result({"denoise.mask.seed=5"}, "mask"), mask);
  EXPECT_NE(result({"denoise.mask.kind=none"}, "mask"), mask);
  const auto wf = result({}, "wf");
  EXPECT_NE(result({"denoise.wiener.tolerance=0.1"}, "wf"), wf);
  EXPECT_NE(result({"denoise.prior_power=linear"}, "wf"), wf);
  EXPECT_NE(result({"denoise.prior_samples=2"}, "wf"), wf);
  EXPECT_NE(result({"denoise.prior_seed=3"}, "wf"), wf);
  // A two-column file: the table written into /prior_pk of a previous run, as text.
  {
    h5::File f = h5::File::open(out);
    h5::Dataset d = f.root().open_dataset("prior_pk");
    std::vector<double> t(d.element_count());
    d.read(t.data());
    std::ofstream table(scratch() / "pk.txt");
    for (size_t i = 0; i + 1 < t.size(); i += 2) table << t[i] << " " << 2 * t[i + 1] << "\n";
  }
  EXPECT_NE(result({"denoise.prior_power=file",
                    "denoise.prior_power_file=" + (scratch() / "pk.txt").string()},
                   "wf"),
            wf);
  const auto map = result({}, "map");
  EXPECT_NE(result({"denoise.map.init=zero"}, "map"), map);
  EXPECT_NE(result({"denoise.map.init=data"}, "map"), map);
  EXPECT_NE(result({"denoise.map.init=gaussian"}, "map"), map);
  EXPECT_NE(result({"denoise.map.max_iterations=3"}, "map"), map);
  EXPECT_NE(result({"denoise.map.tolerance=0.5"}, "map"), map);
  EXPECT_NE(result({"denoise.map.gradient_tolerance=10"}, "map"), map);
  EXPECT_NE(result({"denoise.map.memory=2"}, "map"), map);
  EXPECT_NE(result({"denoise.map.prior=gaussian"}, "map"), map);
  EXPECT_NE(result({"denoise.map.whiten=false"}, "map"), map);
  EXPECT_NE(result({"denoise.map.precondition=prior"}, "map"), map);
  EXPECT_NE(result({"denoise.map.prior_weight=0.5"}, "map"), map);
  EXPECT_NE(result({"denoise.map.y_max=0.3"}, "map"), map);
  EXPECT_NE(result({"denoise.map.y_min=-0.3"}, "map"), map);
  EXPECT_NE(result({"denoise.map.max_step_y=0.01"}, "map"), map);
  EXPECT_NE(result({"denoise.combined.k_split_hmpc=0.6"}, "combined"), result({}, "combined"));
  EXPECT_NE(json({"denoise.combined.k_split_hmpc=0",
                  "denoise.combined.validation={grid: " + truth_file(16, 3) + ", indices: [2]}"})
                .find("\"chosen_on\": \"validation"),
            std::string::npos);
}

// The keys that name inputs (checkpoint, mask and sigma files, real data) and the validation
// fields each change what comes out.
TEST(DenoiseSettings, InputKeysChangeTheResult) {
  const std::string out = (scratch() / "inputs" / "r.h5").string();
  const std::string yaml = base_yaml(log1p_checkpoint(), truth_file(16, 3), out);
  auto result = [&](const std::vector<std::string>& set, const std::string& name) {
    run_denoise(settings_of(yaml, set), nullptr);
    return read_cube(out, name);
  };
  const auto data = result({}, "data");
  const auto map = result({}, "map");
  // validation.indices: which fields are reconstructed (the log names them).
  const auto validation_log = [&](const std::string& indices) {
    DenoiseSettings s =
        settings_of(yaml, {"denoise.combined.k_split_hmpc=0", "denoise.map.max_iterations=2",
                           "denoise.combined.validation={grid: " + truth_file(16, 3) +
                               ", indices: " + indices + "}"});
    char* text = nullptr;
    size_t length = 0;
    std::FILE* log = open_memstream(&text, &length);
    run_denoise(s, log);
    std::fclose(log);
    const std::string out_text(text, length);
    std::free(text);
    return out_text;
  };
  EXPECT_NE(validation_log("[1]").find("validation field 1\n"), std::string::npos);
  EXPECT_EQ(validation_log("[2]").find("validation field 1\n"), std::string::npos);
  EXPECT_NE(result({"denoise.checkpoint=" + gaussian_checkpoint()}, "map"), map);

  // Files: a mask file (kind file), a per-voxel sigma map, real data with its mask and sigma.
  Grid half(16, 64.0, 0.5), sigma_map(16, 64.0, 0.5);
  for (size_t i = 0; i < half.size(); ++i) {
    half.values[i] = i < half.size() / 2 ? 1.0 : 0.0;
    sigma_map.values[i] = 0.5 + double(i % 3);
  }
  const std::string half_file = (scratch() / "half_mask.h5").string();
  const std::string sigma_file = (scratch() / "sigma_map.h5").string();
  write_grid(half_file, half);
  write_grid(sigma_file, sigma_map);
  EXPECT_EQ(result({"denoise.mask={kind: file, file: " + half_file + "}"}, "mask"), half.values);
  EXPECT_EQ(result({"denoise.noise.sigma_map=" + sigma_file}, "noise_sigma"), sigma_map.values);
  std::string data_yaml = yaml;
  const size_t t0 = data_yaml.find("  truth:"), t1 = data_yaml.find('\n', t0);
  data_yaml.replace(t0, t1 - t0, "  data: {grid: " + truth_file(16, 3) + "}");
  const auto data_run = [&](const std::vector<std::string>& set, const std::string& name) {
    run_denoise(settings_of(data_yaml, set), nullptr);
    return read_cube(out, name);
  };
  const auto data_wf = data_run({}, "wf");
  EXPECT_NE(data_run({}, "data"), data);  // the field itself, no noise drawn
  EXPECT_NE(data_run({"denoise.data.noise_sigma=0.3"}, "wf"), data_wf);
  EXPECT_EQ(data_run({"denoise.data.mask=" + half_file}, "mask"), half.values);
  EXPECT_EQ(data_run({"denoise.data.grid=" + sigma_file}, "data"), sigma_map.values);
}

// The identity preprocessing over the Gaussian flow: its P(k) comes from the base (std^2 P_y) and
// the MAP reproduces the Wiener filter.
TEST(DenoiseSettings, GaussianFlowGivesTheWienerFilter) {
  const std::string out = (scratch() / "gauss" / "r.h5").string();
  DenoiseSettings s =
      settings_of(base_yaml(gaussian_checkpoint(), truth_file(16, 3), out),
                  {"denoise.map.init=zero", "denoise.map.max_iterations=400",
                   "denoise.map.tolerance=1e-12", "denoise.map.gradient_tolerance=1e-6",
                   "denoise.map.y_min=-1e6", "denoise.map.y_max=1e6"});  // no wall: the WF exactly
  run_denoise(s, nullptr);
  const auto wf = read_cube(out, "wf"), map = read_cube(out, "map");
  double diff = 0, norm = 0;
  for (size_t i = 0; i < wf.size(); ++i) {
    diff += (wf[i] - map[i]) * (wf[i] - map[i]);
    norm += wf[i] * wf[i];
  }
  EXPECT_LT(std::sqrt(diff / norm), 1e-3);  // the flow runs in float32
  // The base alone (map.prior: gaussian) is the same density as this untrained flow.
  s.map.prior = "gaussian";
  run_denoise(s, nullptr);
  const auto base = read_cube(out, "map");
  diff = 0;
  for (size_t i = 0; i < wf.size(); ++i) diff += (base[i] - map[i]) * (base[i] - map[i]);
  EXPECT_LT(std::sqrt(diff / norm), 1e-3);
}

// A 32^3 observation with the 16^3 flow at the same cell size: the flow covers the whole
// periodic box.
TEST(DenoiseSettings, LargerBoxThanTheFlow) {
  const std::string out = (scratch() / "big" / "r.h5").string();
  // These fields are not standardised by the checkpoints' preprocessing: no range of y.
  const std::string wide_low = "denoise.map.y_min=-1e6", wide_high = "denoise.map.y_max=1e6";
  run_denoise(settings_of(base_yaml(log1p_checkpoint(), truth_file(32, 2), out),
                          {"denoise.map.max_iterations=3", wide_low, wide_high}),
              nullptr);
  EXPECT_EQ(read_cube(out, "map").size(), 32768u);
  // A flow over the standard normal base: the training box comes from the checkpoint's data.
  DenoiseSettings s = settings_of(base_yaml(normal_base_checkpoint(64.0), truth_file(32, 2), out),
                                  {"denoise.map.max_iterations=2", wide_low, wide_high});
  run_denoise(s, nullptr);
  EXPECT_EQ(read_cube(out, "map").size(), 32768u);
}

// large_box: tiles: 27 tiles of the 16^3 flow's grid (overlap 4: 3 per side) give another MAP than
// the flow over the whole box, with the WF's modes below the tile's fundamental 2 pi / 64 h/Mpc.
// An overlap as wide as a tile is refused with one line.
TEST(DenoiseSettings, LargerBoxByTiles) {
  const std::string whole = (scratch() / "tiles" / "whole.h5").string();
  const std::string tiled = (scratch() / "tiles" / "tiled.h5").string();
  const std::vector<std::string> set = {"denoise.map.max_iterations=3", "denoise.map.y_min=-1e6",
                                        "denoise.map.y_max=1e6"};
  std::vector<std::string> tiles_set = set;
  tiles_set.push_back("denoise.large_box=tiles");
  tiles_set.push_back("denoise.tiles.overlap=4");
  run_denoise(settings_of(base_yaml(log1p_checkpoint(), truth_file(32, 2), whole), set), nullptr);
  run_denoise(settings_of(base_yaml(log1p_checkpoint(), truth_file(32, 2), tiled), tiles_set),
              nullptr);
  const std::vector<double> a = read_cube(whole, "map"), b = read_cube(tiled, "map");
  const std::vector<double> wf = read_cube(tiled, "wf");
  ASSERT_EQ(b.size(), 32768u);
  double differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ = std::max(differ, std::fabs(a[i] - b[i]));
  EXPECT_GT(differ, 1e-2);
  EXPECT_NE(read_text((scratch() / "tiles" / "tiled_summary.json").string()).find("\"tiles\": 27"),
            std::string::npos);
  EXPECT_NE(read_text((scratch() / "tiles" / "whole_summary.json").string()).find("\"tiles\": 0"),
            std::string::npos);
  const double k_tile = 2 * M_PI / 64.0;
  const std::vector<double> b_low_wf = combine_by_wavenumber(wf, b, 32, 128.0, k_tile);
  const std::vector<double> a_low_wf = combine_by_wavenumber(wf, a, 32, 128.0, k_tile);
  double b_moved = 0, a_moved = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    b_moved = std::max(b_moved, std::fabs(b_low_wf[i] - b[i]));
    a_moved = std::max(a_moved, std::fabs(a_low_wf[i] - a[i]));
  }
  EXPECT_LT(b_moved, 1e-5);
  EXPECT_GT(a_moved, 1e-3);  // the check can fail: the whole box's MAP has its own large scales

  const fs::path config = scratch() / "tiles.yaml";
  std::ofstream(config) << base_yaml(log1p_checkpoint(), truth_file(32, 2),
                                     (scratch() / "tiles" / "bad.h5").string());
  const CommandResult r = run("denoise " + config.string() +
                              " --set denoise.large_box=tiles --set denoise.tiles.overlap=16");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(r.error, "fieldflow: " + config.string() +
                         ": denoise.tiles.overlap: 32^3 box, 16^3 tiles: an overlap of 16 voxels "
                         "must be >= 0 and below the tile's side\n");
  EXPECT_FALSE(fs::exists(scratch() / "tiles" / "bad.h5"));
}

TEST(DenoiseCli, BadConfigsGetOneLine) {
  const std::string truth = truth_file(16, 3);
  const std::string out = (scratch() / "bad" / "r.h5").string();
  auto failure = [&](const std::vector<std::string>& set, const std::string& checkpoint) {
    const fs::path config = scratch() / "bad.yaml";
    std::ofstream(config) << base_yaml(checkpoint, truth, out);
    std::string args = "denoise " + config.string();
    for (const std::string& s : set) args += " --set '" + s + "'";
    CommandResult r = run(args);
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_EQ(std::count(r.error.begin(), r.error.end(), '\n'), 1) << r.error;
    EXPECT_EQ(r.error.rfind("fieldflow: ", 0), 0u) << r.error;
    return r.error;
  };
  const std::string ck = gaussian_checkpoint();
  Grid small(8, 32.0);
  write_grid((scratch() / "mask8.h5").string(), small);
  EXPECT_NE(
      failure({"denoise.mask={kind: file, file: " + (scratch() / "mask8.h5").string() + "}"}, ck)
          .find("has shape 8x8x8, the field is 16x16x16"),
      std::string::npos);
  EXPECT_NE(failure({"denoise.noise.sigma=0"}, ck).find("denoise.noise.sigma"), std::string::npos);
  EXPECT_NE(failure({"denoise.noise.sigma=-1"}, ck).find("denoise.noise.sigma"), std::string::npos);
  const std::string other_box = checkpoint_file("box128.h5", Preprocessing{}, 0.0, 128.0);
  EXPECT_NE(failure({}, other_box).find("flow trained on 16^3 cells of 8 Mpc/h"),
            std::string::npos);
  // The box is the checkpoint's training data's, whatever the base.
  EXPECT_NE(
      failure({}, normal_base_checkpoint(128.0)).find("flow trained on 16^3 cells of 8 Mpc/h"),
      std::string::npos);
  EXPECT_NE(
      failure({"denoise.data={grid: " + truth + "}"}, ck).find("give truth or data, not both"),
      std::string::npos);
  EXPECT_NE(failure({"denoise.mask.fraction=1"}, ck)
                .find("denoise.mask.fraction: expected a number >= 0 and < 1, got 1"),
            std::string::npos);
  EXPECT_NE(failure({"denoise.posterior.target_accept=1"}, ck)
                .find("denoise.posterior.target_accept: expected a number > 0 and < 1"),
            std::string::npos);
  EXPECT_NE(
      failure({"denoise.mask.kind=file"}, ck).find("denoise.mask.file: kind file needs a file"),
      std::string::npos);
  EXPECT_NE(failure({"denoise.map.y_min=2", "denoise.map.y_max=1"}, ck)
                .find("denoise.map.y_max: must be above y_min"),
            std::string::npos);
  // Data that pull observed voxels far beyond the prior's range: the MAP is refused, nothing
  // is written.
  EXPECT_NE(failure({"denoise.noise.sigma=0.01", "denoise.map.y_max=0.3"}, ck)
                .find("map: the MAP left the prior's range y in ["),
            std::string::npos);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_NE(failure({"denoise.truth.index=3"}, ck).find("denoise.truth.index: 3 is out of range"),
            std::string::npos);
  EXPECT_NE(failure({"denoise.out=" + truth}, ck).find("is also an input"), std::string::npos);
  EXPECT_NE(failure({"denoise.combined.k_split_hmpc=0"}, ck).find("k_split_hmpc"),
            std::string::npos);
  EXPECT_NE(failure({"denoise.wiener.max_iterations=1"}, ck).find("wiener.max_iterations"),
            std::string::npos);
}

}  // namespace
}  // namespace ff
