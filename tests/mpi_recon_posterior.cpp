// Posterior chains shared over MPI ranks give the same samples, mean and diagnostics as one rank
// running them all (run under mpirun -np 2; chain c's randomness depends on (seed, c) only).
#include <gtest/gtest.h>

#include "fieldflow/flow/flow.hpp"
#include "fieldflow/recon/map.hpp"
#include "fieldflow/recon/observation.hpp"
#include "fieldflow/recon/posterior.hpp"
#include "fieldflow/train/communicator.hpp"

namespace ff {
namespace {

Communicator* world = nullptr;

TEST(MpiPosterior, ChainsOnTwoRanksEqualChainsOnOne) {
  ASSERT_EQ(world->size(), 2);
  FlowSpec spec;
  spec.grid = 4;
  spec.levels = {{1, 1, 4, 4}, {1, 0, 4, 0}};
  spec.base = BaseKind::correlated_gaussian;
  spec.base_k_hmpc = {0.05, 0.2, 0.8, 1.6};
  spec.base_pk = {3000, 900, 30, 4};
  spec.base_box_size_mpch = 64.0;
  MultiScaleFlow<double> flow(spec);
  flow.perturb(4, 0.1);
  Grid truth(4, 64.0);
  flow.correlated_base()->sample(truth.values.data(), 3, 0, 1.0);
  MaskSettings ms;
  ms.fraction = 0.3;
  ms.size = 2;
  const Observation obs =
      observe(truth, make_mask(4, ms), std::vector<double>(truth.size(), 0.7), 5);
  Preprocessing p;
  LatentPosterior<double> space(flow, p, obs);
  PosteriorSettings s;
  s.chains = 3;  // rank 0 runs chains 0 and 2, rank 1 chain 1
  s.warmup = 10;
  s.samples = 8;
  s.leapfrog_steps = 3;
  s.thin = 2;
  const std::vector<double> start(obs.size(), 0.0);
  const PosteriorResult shared = sample_posterior(space, p, obs, start, s, *world);
  Communicator alone(false);
  const PosteriorResult single = sample_posterior(space, p, obs, start, s, alone);
  EXPECT_EQ(shared.mean, single.mean);
  EXPECT_EQ(shared.std, single.std);
  EXPECT_EQ(shared.kept, single.kept);
  EXPECT_EQ(shared.pk, single.pk);
  EXPECT_EQ(shared.r, single.r);
  EXPECT_EQ(shared.pk_ess, single.pk_ess);
  EXPECT_EQ(shared.divergences, single.divergences);
  EXPECT_EQ(shared.acceptance_rate, single.acceptance_rate);
}

}  // namespace
}  // namespace ff

int main(int argc, char** argv) {
  ff::Communicator comm;
  ff::world = &comm;
  ::testing::InitGoogleTest(&argc, argv);
  if (comm.rank() != 0) delete ::testing::UnitTest::GetInstance()->listeners().Release(
      ::testing::UnitTest::GetInstance()->listeners().default_result_printer());
  const int failed = RUN_ALL_TESTS();
  // Every rank's verdict counts.
  double any = failed ? 1.0 : 0.0;
  comm.sum(&any, 1);
  return any > 0 ? 1 : 0;
}
