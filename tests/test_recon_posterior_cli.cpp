// `fieldflow denoise` with a `posterior:` section, end to end through the executable: with the
// identity flow over a correlated-Gaussian base, identity preprocessing and no mask, the posterior
// is Gaussian and its mean is the Wiener filter's closed form S(S+N)^-1 d: the written
// /posterior_mean matches the written /wf voxel by voxel within the Monte Carlo error estimated
// from the written samples. The outputs' layout (HDF5, CSV columns, JSON), and no posterior
// outputs when samples is 0.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/io/hdf5.hpp"
#include "fieldflow/recon/mcmc_diagnostics.hpp"
#include "shell.hpp"

namespace ff {
namespace {

namespace fs = std::filesystem;

fs::path scratch() {
  static const fs::path dir = [] {
    const fs::path d =
        fs::temp_directory_path() / ("ff_posterior_cli_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

std::vector<double> read_dataset(const std::string& path, const std::string& name) {
  h5::File f = h5::File::open(path);
  h5::Dataset d = f.root().open_dataset(name);
  std::vector<double> v(d.element_count());
  d.read(v.data());
  return v;
}

// An 8^3 identity flow over a correlated base (box 64 Mpc/h) and a truth drawn from that base.
struct Files {
  std::string checkpoint, truth;
  Files() {
    FlowSpec spec;
    spec.grid = 8;
    spec.levels = {{1, 1, 4, 4}, {1, 0, 4, 0}};
    spec.base = BaseKind::correlated_gaussian;
    spec.base_k_hmpc = {0.05, 0.1, 0.2, 0.4, 0.8, 1.6};
    spec.base_pk = {3000, 2500, 900, 200, 30, 4};
    spec.base_box_size_mpch = 64.0;
    MultiScaleFlow<float> flow(spec);
    checkpoint = (scratch() / "gauss8.h5").string();
    TrainingData data;
    data.box_size_mpch = 64.0;
    data.redshift = 0.5;
    save_flow_checkpoint(checkpoint, flow, Preprocessing{}, data);
    Grid g(8, 64.0, 0.5);
    flow.correlated_base()->sample(g.values.data(), 17, 0, 1.0);
    truth = (scratch() / "truth8.h5").string();
    write_grid_stack(truth, std::vector<Grid>{g});
  }
};

std::string config(const Files& f, const std::string& out, const std::string& posterior) {
  const fs::path p = scratch() / (fs::path(out).stem().string() + ".yaml");
  std::ofstream(p) << "denoise:\n  checkpoint: " << f.checkpoint << "\n  truth: {grid: " << f.truth
                   << ", index: 0}\n  noise: {sigma: 1.0, seed: 1}\n  mask: {kind: none}\n"
                   << "  map: {max_iterations: 20}\n  combined: {k_split_hmpc: 0.3}\n"
                   << "  report: false\n  posterior: " << posterior << "\n  out: " << out << "\n";
  return p.string();
}

TEST(DenoisePosterior, GaussianPosteriorMeanIsTheWienerFilterThroughTheCommand) {
  const Files files;
  const std::string out = (scratch() / "post.h5").string();
  const CommandResult r = run_command(
      "OMP_NUM_THREADS=1 " + std::string(FIELDFLOW_BINARY) + " denoise " +
      config(files, out,
             "{samples: 300, warmup: 80, chains: 2, leapfrog_steps: 3, thin: 1, seed: 5}"));
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("denoise: posterior in latent space: 2 chains x 300 samples"),
            std::string::npos)
      << r.output;

  const std::vector<double> wf = read_dataset(out, "wf");
  const std::vector<double> mean = read_dataset(out, "posterior_mean");
  const std::vector<double> sd = read_dataset(out, "posterior_std");
  const std::vector<double> samples = read_dataset(out, "posterior_samples");
  h5::File f = h5::File::open(out);
  const std::vector<int64_t> chain =
      f.root().open_dataset("posterior_samples").read_attribute_array<int64_t>("chain");
  const size_t size = wf.size(), kept = samples.size() / size;
  ASSERT_EQ(kept, 600u);
  ASSERT_EQ(chain.size(), kept);
  // z-scores of the mean against the WF (float32 files: the sd is far above their rounding).
  double sum_sq = 0, worst = 0;
  for (size_t i = 0; i < size; ++i) {
    Chains voxel(2);
    for (size_t s = 0; s < kept; ++s) voxel[size_t(chain[s])].push_back(samples[s * size + i]);
    const double z = (mean[i] - wf[i]) / (sd[i] / std::sqrt(effective_sample_size(voxel)));
    sum_sq += z * z;
    worst = std::max(worst, std::abs(z));
  }
  EXPECT_LT(sum_sq / double(size), 1.6);
  EXPECT_GT(sum_sq / double(size), 0.4);
  EXPECT_LT(worst, 5.0);

  // The layout.
  const h5::Dataset m = f.root().open_dataset("posterior_mean");
  EXPECT_EQ(m.read_attribute_string("space"), "latent");
  EXPECT_EQ(m.read_attribute<int64_t>("divergences"), 0);
  EXPECT_EQ(f.root().open_dataset("posterior_pk").read_attribute_string("columns").substr(0, 47),
            "k_hmpc, nmodes, pk_of_mean, r_of_mean, pk_truth");
  const std::string stem = (scratch() / "post").string();
  const std::string csv = read_text(stem + "_metrics.csv");
  for (const char* column : {"posterior_mean_r", "posterior_mean_residual_pk", "posterior_pk_q025",
                             "posterior_r_q975", "posterior_pk_rhat", "posterior_pk_ess"})
    EXPECT_NE(csv.find(column), std::string::npos) << column;
  const std::string json = read_text(stem + "_summary.json");
  EXPECT_NE(json.find("\"posterior\": {\"space\": \"latent\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"coverage68\""), std::string::npos) << json;

  // samples 0 (the default): no posterior outputs.
  const std::string plain = (scratch() / "plain.h5").string();
  ASSERT_EQ(run_command(std::string(FIELDFLOW_BINARY) + " denoise " +
                        config(files, plain, "{samples: 0}"))
                .status,
            0);
  EXPECT_FALSE(h5::File::open(plain).root().has("posterior_mean"));
  // (the MAP's "precondition": "posterior" is a value, not the section)
  EXPECT_EQ(read_text((scratch() / "plain").string() + "_summary.json").find("\"posterior\":"),
            std::string::npos);
}

}  // namespace
}  // namespace ff
