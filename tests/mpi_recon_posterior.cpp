// Posterior chains under `mpirun -np 2`, shared through train's Communicator (chain_sharing):
// two ranks give the samples of one process bit for bit, through sample_posterior and through
// run_denoise (what `fieldflow denoise` runs); a chain failing on one rank stops both, that rank
// reporting; a bad input before the sampling stops both, rank 0 reporting.
#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/flow.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/io/hdf5.hpp"
#include "fieldflow/recon/denoise.hpp"
#include "fieldflow/recon/map.hpp"
#include "fieldflow/recon/posterior.hpp"
#include "fieldflow/train/communicator.hpp"
#include "mpi_test.hpp"
#include "recon_test_data.hpp"

namespace ff {
namespace {

namespace fs = std::filesystem;

using namespace ff::mpi_test;

const std::vector<double> kK = {0.05, 0.1, 0.2, 0.4, 0.8, 1.6};
const std::vector<double> kP = {3000, 2500, 900, 200, 30, 4};

FlowSpec gaussian_spec(int n) {
  FlowSpec s;
  s.grid = n;
  s.levels = {{1, 1, 4, 4}, {1, 0, 4, 0}};
  s.base = BaseKind::correlated_gaussian;
  s.base_k_hmpc = kK;
  s.base_pk = kP;
  s.base_box_size_mpch = 64.0;
  s.seed = 5;
  return s;
}

PosteriorSettings few_draws() {
  PosteriorSettings s;
  s.chains = 3;  // rank 0 runs chains 0 and 2, rank 1 chain 1
  s.warmup = 10;
  s.samples = 8;
  s.leapfrog_steps = 3;
  s.thin = 2;
  return s;
}

// A latent target that fails on rank 1 (a chain's failure on one process).
class FailingOnRankOne final : public PosteriorSpace {
 public:
  explicit FailingOnRankOne(PosteriorSpace& inner) : inner_(inner) {}
  size_t dimension() const override { return inner_.dimension(); }
  double log_density_grad(const Eigen::VectorXd& q, Eigen::VectorXd& grad) override {
    if (world->rank() == 1) throw Error("posterior", "chain failed on rank 1");
    return inner_.log_density_grad(q, grad);
  }
  void to_y(const Eigen::VectorXd& q, double* y) override { inner_.to_y(q, y); }
  Eigen::VectorXd from_y(const std::vector<double>& y) override { return inner_.from_y(y); }
  std::vector<double> prior_eigenvalues() const override { return inner_.prior_eigenvalues(); }

 private:
  PosteriorSpace& inner_;
};

TEST(MpiPosterior, TwoRanksGiveTheSamplesOfOne) {
  ASSERT_EQ(world->size(), 2);
  MultiScaleFlow<double> flow(gaussian_spec(4));
  flow.perturb(4, 0.1);
  Grid truth(4, 64.0);
  flow.correlated_base()->sample(truth.values.data(), 61, 0, 1.0);
  const Observation obs = test::observe_through_cubes(truth, 0.3, 0.7, 61);
  const Preprocessing pre;
  LatentPosterior<double> space(flow, pre, obs);
  const std::vector<double> start(obs.size(), 0.0);
  const PosteriorSettings s = few_draws();
  const PosteriorResult shared = sample_posterior(space, pre, obs, start, s, chain_sharing(*world));
  const PosteriorResult single = sample_posterior(space, pre, obs, start, s, ChainSharing{});
  EXPECT_EQ(shared.mean, single.mean);
  EXPECT_EQ(shared.std, single.std);
  EXPECT_EQ(shared.kept, single.kept);
  EXPECT_EQ(shared.pk, single.pk);
  EXPECT_EQ(shared.r, single.r);
  EXPECT_EQ(shared.divergences, single.divergences);
  EXPECT_EQ(shared.acceptance_rate, single.acceptance_rate);

  FailingOnRankOne failing(space);
  const std::string got =
      outcome([&] { sample_posterior(failing, pre, obs, start, s, chain_sharing(*world)); });
  EXPECT_EQ(got, world->rank() == 1 ? "error: posterior: chain failed on rank 1" : "other rank");
}

TEST(MpiPosterior, DenoiseOnTwoRanksWritesWhatOneProcessWrites) {
  const fs::path dir = shared_dir("posterior_denoise");
  DenoiseSettings s;
  s.checkpoint = (dir / "gauss8.h5").string();
  s.truth_grid = (dir / "truth8.h5").string();
  if (world->rank() == 0) {
    MultiScaleFlow<float> flow(gaussian_spec(8));
    save_flow_checkpoint(s.checkpoint, flow, Preprocessing{}, TrainingData{64.0, 0.5});
    Grid g(8, 64.0, 0.5);
    flow.correlated_base()->sample(g.values.data(), 17, 0, 1.0);
    write_grid_stack(s.truth_grid, std::vector<Grid>{g});
  }
  world->barrier();
  s.mask.kind = "none";
  s.map.max_iterations = 5;
  s.k_split_hmpc = 0.3;
  s.posterior = few_draws();
  s.out = (dir / "two.h5").string();
  run_denoise(s, nullptr, chain_sharing(*world));
  world->barrier();
  if (world->rank() == 0) {
    DenoiseSettings one = s;
    one.out = (dir / "one.h5").string();
    run_denoise(one, nullptr);
    for (const char* name : {"posterior_mean", "posterior_std", "posterior_samples", "map"}) {
      const auto read = [&](const fs::path& path) {
        h5::File f = h5::File::open(path.string());
        h5::Dataset d = f.root().open_dataset(name);
        std::vector<double> v(d.element_count());
        d.read(v.data());
        return v;
      };
      EXPECT_EQ(read(dir / "two.h5"), read(dir / "one.h5")) << name;
    }
  }
  world->barrier();

  // A bad input fails on both ranks before the sampling: rank 0 reports, rank 1 stops quietly.
  DenoiseSettings bad = s;
  bad.truth_index = 3;
  bad.out = (dir / "bad.h5").string();
  const std::string got = outcome([&] { run_denoise(bad, nullptr, chain_sharing(*world)); });
  if (world->rank() == 0)
    EXPECT_NE(got.find("truth.index: 3 is out of range"), std::string::npos) << got;
  else
    EXPECT_EQ(got, "other rank");
  world->barrier();
  if (world->rank() == 0) fs::remove_all(dir);
}

}  // namespace
}  // namespace ff

int main(int argc, char** argv) {
  return ff::mpi_test::run_all_tests(argc, argv);
}
