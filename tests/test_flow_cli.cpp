// `fieldflow sample` and `fieldflow logp` end to end, on a checkpoint written here from C++: the
// samples are finite fields of the flow's grid with the training data's box and redshift, logp
// prints the density the library computes, and both refuse, in one line, a checkpoint with
// uninitialised actnorms; logp refuses grids of another size or box.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "fieldflow/core/rng.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/fields.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/io/provenance.hpp"
#include "shell.hpp"

namespace ff {
namespace {

namespace fs = std::filesystem;

CommandResult run(const std::string& args) {
  return run_command(std::string(FIELDFLOW_BINARY) + " " + args);
}

TEST(FlowCli, SampleThenLogp) {
  const fs::path dir = fs::temp_directory_path() / ("ff_flow_cli_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  FlowSpec spec;
  spec.grid = 8;
  spec.levels = {{2, 2, 4, 5}, {2, 0, 3, 0}};
  spec.mixing = MixingKind::orthogonal;
  MultiScaleFlow<float> flow(spec);
  flow.perturb(2, 0.05);
  const Preprocessing prep{PreprocessTransform::log1p, 0.1, 2.0, 1e-3};
  const fs::path ckpt = dir / "flow.h5";
  save_flow_checkpoint(ckpt.string(), flow, prep, TrainingData{100.0, 1.5});

  const fs::path config = dir / "sample.yaml";
  std::ofstream(config) << "sample:\n  checkpoint: " << ckpt.string() << "\n  count: 3\n  seed: 5\n"
                        << "  temperature: 0.8\n  out: " << (dir / "samples.h5").string() << "\n";
  const CommandResult sample = run("sample " + config.string());
  ASSERT_EQ(sample.status, 0) << sample.output;
  const auto grids = read_grid_stack_as<float>((dir / "samples.h5").string());
  ASSERT_EQ(grids.size(), 3u);
  // Provenance: the sample settings actually used, the version and the commit.
  const Provenance made = read_provenance((dir / "samples.h5").string());
  EXPECT_NE(made.settings.find("  temperature: 0.8\n"), std::string::npos) << made.settings;
  EXPECT_EQ(made.git_commit, fieldflow_git_commit());
  for (const auto& g : grids) {
    EXPECT_EQ(g.n, 8);
    EXPECT_EQ(g.box_size_mpch, 100.0);  // the checkpoint's, not a default
    EXPECT_EQ(g.redshift, 1.5);
    for (float v : g.values) ASSERT_TRUE(std::isfinite(v));
  }
  EXPECT_NE(grids[0].values, grids[1].values);
  EXPECT_NE(made.settings.find("  zero_mean: true\n"), std::string::npos) << made.settings;

  // sample.zero_mean: by default each sample's delta is against its own mean density (mean 0,
  // as painted fields); false writes the flow's values as drawn, whose mean scatters.
  const CommandResult as_drawn = run("sample " + config.string() + " --set sample.zero_mean=false" +
                                     " --set sample.out=" + (dir / "as_drawn.h5").string());
  ASSERT_EQ(as_drawn.status, 0) << as_drawn.output;
  const auto drawn = read_grid_stack_as<float>((dir / "as_drawn.h5").string());
  ASSERT_EQ(drawn.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    double mean = 0, drawn_mean = 0;
    for (size_t v = 0; v < grids[i].size(); ++v) {
      mean += grids[i].values[v] / double(grids[i].size());
      drawn_mean += drawn[i].values[v] / double(grids[i].size());
    }
    EXPECT_NEAR(mean, 0.0, 1e-6);
    EXPECT_GT(std::abs(drawn_mean), 1e-3) << i;
    const double scale = (1 + prep.eps) / (1 + prep.eps + drawn_mean);
    for (size_t v = 0; v < grids[i].size(); v += 7)
      EXPECT_NEAR(grids[i].values[v], (1 + prep.eps + drawn[i].values[v]) * scale - 1 - prep.eps,
                  1e-5 * (1 + std::abs(grids[i].values[v])));
  }

  // sample.mean_tolerance: the kept samples are, in order, the draws of the unconditioned stream
  // whose mean delta lies within the tolerance (here the median |mean| of 40 draws).
  const auto mean_of = [](const GridF& g) {
    double m = 0;
    for (float v : g.values) m += v;
    return m / double(g.size());
  };
  ASSERT_EQ(run("sample " + config.string() + " --set sample.zero_mean=false --set " +
                "sample.count=40 --set sample.out=" + (dir / "stream.h5").string())
                .status,
            0);
  const auto stream = read_grid_stack_as<float>((dir / "stream.h5").string());
  std::vector<double> size_of_mean;
  for (const auto& g : stream) size_of_mean.push_back(std::abs(mean_of(g)));
  std::vector<double> sorted = size_of_mean;
  std::sort(sorted.begin(), sorted.end());
  const double tolerance = sorted[20];
  std::vector<size_t> within;
  for (size_t i = 0; i < stream.size(); ++i)
    if (size_of_mean[i] <= tolerance) within.push_back(i);
  ASSERT_GE(within.size(), 5u);
  char tolerance_text[64];
  std::snprintf(tolerance_text, sizeof tolerance_text, "%.17g", tolerance);
  const CommandResult conditioned =
      run("sample " + config.string() + " --set sample.zero_mean=false --set sample.count=5" +
          " --set sample.mean_tolerance=" + tolerance_text +
          " --set sample.out=" + (dir / "conditioned.h5").string());
  ASSERT_EQ(conditioned.status, 0) << conditioned.output;
  EXPECT_NE(conditioned.output.find("(" + std::to_string(within[4] + 1) + " draws, "),
            std::string::npos)
      << conditioned.output;
  const auto kept = read_grid_stack_as<float>((dir / "conditioned.h5").string());
  ASSERT_EQ(kept.size(), 5u);
  for (size_t j = 0; j < kept.size(); ++j) {
    EXPECT_EQ(kept[j].values, stream[within[j]].values) << j;
    EXPECT_LE(std::abs(mean_of(kept[j])), tolerance * (1 + 1e-9));
  }
  // With zero_mean as well, the same draws against their own mean density.
  const CommandResult both = run("sample " + config.string() + " --set sample.count=5" +
                                 " --set sample.mean_tolerance=" + tolerance_text +
                                 " --set sample.out=" + (dir / "both.h5").string());
  ASSERT_EQ(both.status, 0) << both.output;
  const auto both_grids = read_grid_stack_as<float>((dir / "both.h5").string());
  for (size_t j = 0; j < both_grids.size(); ++j) {
    std::vector<float> expected = kept[j].values;
    set_mean_delta_zero(expected, prep.eps);
    EXPECT_EQ(both_grids[j].values, expected) << j;
  }
  // A tolerance no draw meets is refused in one line after 1000 + 100 count draws.
  const CommandResult impossible =
      run("sample " + config.string() + " --set sample.count=1 --set sample.mean_tolerance=1e-12" +
          " --set sample.out=" + (dir / "none.h5").string());
  EXPECT_NE(impossible.status, 0);
  EXPECT_NE(impossible.output.find("sample.mean_tolerance 1e-12 kept 0 of 1100 draws"),
            std::string::npos)
      << impossible.output;
  EXPECT_FALSE(fs::exists(dir / "none.h5"));

  const CommandResult logp =
      run("logp --checkpoint " + ckpt.string() + " " + (dir / "samples.h5").string() + " --out " +
          (dir / "logp.csv").string());
  ASSERT_EQ(logp.status, 0) << logp.output;
  std::ifstream csv(dir / "logp.csv");
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "file,index,logp_nats,nll_bits_per_voxel");
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(std::getline(csv, line));
    double file, index, nats, bits;
    ASSERT_EQ(std::sscanf(line.c_str(), "%lf,%lf,%lf,%lf", &file, &index, &nats, &bits), 4) << line;
    EXPECT_EQ(index, i);
    GridF g = grids[i];
    const double jac = prep.apply(g.values.data(), g.size());
    Tensor<float> x(1, 8, 1);
    std::copy(g.values.begin(), g.values.end(), x.data.begin());
    const double expected = flow.log_prob(x)[0] + jac;
    EXPECT_NEAR(nats, expected, 1e-6 * std::abs(expected));
    EXPECT_NEAR(bits, -expected / (std::log(2.0) * 512), 1e-6 * std::abs(bits));
  }

  // A damaged checkpoint: one line naming it, exit status 1.
  {
    std::string bytes;
    std::ifstream in(ckpt, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
    std::ofstream(dir / "cut.h5", std::ios::binary)
        .write(bytes.data(), std::streamsize(bytes.size() / 2));
  }
  const CommandResult bad =
      run("logp --checkpoint " + (dir / "cut.h5").string() + " " + (dir / "samples.h5").string());
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find("fieldflow: " + (dir / "cut.h5").string()), std::string::npos)
      << bad.output;
  // Grids of another box or size: one line naming the grid.
  GridF other_box = grids[0];
  other_box.box_size_mpch = 128;
  write_grid((dir / "box128.h5").string(), other_box);
  write_grid((dir / "n4.h5").string(), GridF(4, 100.0, 1.5));
  for (const char* name : {"box128.h5", "n4.h5"}) {
    const CommandResult refused =
        run("logp --checkpoint " + ckpt.string() + " " + (dir / name).string());
    EXPECT_EQ(refused.status, 1);
    EXPECT_EQ(refused.output.find("fieldflow: " + (dir / name).string() + ": "), 0u)
        << refused.output;
    EXPECT_EQ(std::count(refused.output.begin(), refused.output.end(), '\n'), 1) << refused.output;
  }
  EXPECT_NE(run("logp --checkpoint " + ckpt.string() + " " + (dir / "box128.h5").string())
                .output.find("trained on boxes of 100"),
            std::string::npos);

  // A checkpoint saved before its actnorms were initialised: both commands refuse it.
  FlowSpec with_actnorm = spec;
  with_actnorm.actnorm = true;
  MultiScaleFlow<float> raw(with_actnorm);
  const fs::path uninitialised = dir / "uninitialised.h5";
  save_flow_checkpoint(uninitialised.string(), raw, prep, TrainingData{100.0, 1.5});
  std::ofstream(dir / "sample_raw.yaml")
      << "sample:\n  checkpoint: " << uninitialised.string()
      << "\n  out: " << (dir / "raw_samples.h5").string() << "\n";
  for (const std::string& args :
       {"logp --checkpoint " + uninitialised.string() + " " + (dir / "samples.h5").string(),
        "sample " + (dir / "sample_raw.yaml").string()}) {
    const CommandResult refused = run(args);
    EXPECT_EQ(refused.status, 1) << args;
    EXPECT_EQ(refused.output.find("fieldflow: " + uninitialised.string() + ": actnorm "), 0u)
        << refused.output;
    EXPECT_EQ(std::count(refused.output.begin(), refused.output.end(), '\n'), 1) << refused.output;
  }
  EXPECT_FALSE(fs::exists(dir / "raw_samples.h5"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace ff
