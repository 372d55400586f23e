// Simulations on disk: the snapshot's header, units and contents read back through the project's
// own reader, the grid painted from it, bit-identical reruns, resuming, the set stacks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>

#include "fieldflow/core/error.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/io/snapshot.hpp"
#include "fieldflow/sim/simulation_set.hpp"
#include "fieldflow/stats/paint.hpp"

namespace fs = std::filesystem;

namespace {

ff::SimulationSettings small_settings(const std::string& dir) {
  ff::SimulationSettings s;
  s.particles_per_side = 16;
  s.box_size_mpch = 64.0;
  s.pm.steps = 4;
  s.paint_grid = 8;
  s.output_redshifts = {0.0, 1.0};
  s.output_dir = dir;
  return s;
}

fs::path temp_dir(const std::string& name) {
  // The process id keeps concurrent runs of this test (other build folders) apart.
  const fs::path p = fs::temp_directory_path() /
                     ("fieldflow_test_sim_output_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

TEST(SimOutput, SnapshotHeaderUnitsAndContents) {
  const auto dir = temp_dir("snapshot");
  const auto s = small_settings(dir.string());
  const ff::Simulator sim(s);
  // The same simulation in memory, to compare the files with.
  std::vector<ff::Particles> states(2);
  std::vector<ff::Grid> grids(2);
  sim.simulate(5, [&](int o, const ff::Particles& p, const ff::Grid& d) {
    states[size_t(o)] = p;
    grids[size_t(o)] = d;
  });
  sim.run("train", 0, 5);
  ASSERT_TRUE(ff::simulation_complete(s, "train", 0));
  const std::vector<double> z = ff::sorted_output_redshifts(s);
  ASSERT_EQ(z, (std::vector<double>{1.0, 0.0}));
  const double n = 16.0 * 16 * 16;
  for (int o = 0; o < 2; ++o) {
    const std::string base = ff::snapshot_base(s, "train", 0, o);
    ASSERT_TRUE(fs::exists(base + ".hdf5"));
    ff::SnapshotReader r(base + ".hdf5");
    const auto& h = r.header();
    EXPECT_EQ(r.length_unit(), ff::LengthUnit::kpc_h);
    EXPECT_DOUBLE_EQ(h.box_size_file_units, 64000.0);
    EXPECT_DOUBLE_EQ(h.box_size_mpch, 64.0);
    EXPECT_NEAR(h.redshift, z[size_t(o)], 1e-12);
    EXPECT_NEAR(h.time, 1.0 / (1.0 + z[size_t(o)]), 1e-12);
    EXPECT_DOUBLE_EQ(h.omega_m, 0.3175);
    EXPECT_DOUBLE_EQ(h.omega_lambda, 1.0 - 0.3175);
    EXPECT_DOUBLE_EQ(h.hubble_param, 0.6711);
    EXPECT_EQ(r.particle_count(), uint64_t(n));
    // Total mass = Omega_m rho_crit L^3 (rho_crit = 2.775e11 h^2 Msun / Mpc^3).
    EXPECT_NEAR(r.particle_mass() * n / (0.3175 * 27.7536627 * 64 * 64 * 64), 1.0, 1e-12);
    const auto x = r.read_positions_mpch();
    const auto v = r.read_velocities();
    const auto ids = r.read_ids();
    const ff::Particles& p = states[size_t(o)];
    ASSERT_EQ(x.size(), p.size());
    double worst_x = 0, worst_v = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(ids[i], p.ids[i]);
      for (int d = 0; d < 3; ++d) {
        double dx = std::abs(x[i][d] - p.position_mpch[i][d]);
        dx = std::min(dx, 64.0 - dx);  // float32 kpc/h may round a coordinate across the wrap
        worst_x = std::max(worst_x, dx);
        // Gadget's convention: stored = v_pec / sqrt(a), v_pec = a dx/dt = 100 p / a km/s.
        const double expect = 100.0 * p.momentum[i][d] / std::pow(p.a, 1.5);
        worst_v = std::max(worst_v, std::abs(v[i][d] - expect) / (1.0 + std::abs(expect)));
      }
    }
    EXPECT_LT(worst_x, 64.0 * 1e-6);  // float32 of kpc/h values up to 64000
    EXPECT_LT(worst_v, 1e-6);
    // The grid file is the painted snapshot, as `fieldflow paint --mas cic` would make it.
    const ff::Grid g = ff::read_grid(ff::delta_path(s, "train", 0, o));
    EXPECT_EQ(g.n, 8);
    EXPECT_DOUBLE_EQ(g.box_size_mpch, 64.0);
    EXPECT_NEAR(g.redshift, z[size_t(o)], 1e-12);
    ff::Painter painter(8, 64.0, ff::MassAssignment::cic);
    painter.add(x);
    const ff::Grid from_file = painter.delta();
    for (size_t i = 0; i < g.size(); ++i) {
      ASSERT_NEAR(g.values[i], grids[size_t(o)].values[i], 1e-6 * (1 + std::abs(g.values[i])));
      ASSERT_NEAR(g.values[i], from_file.values[i], 1e-4 * (1 + std::abs(g.values[i])));
    }
  }
  // Velocities of the ICs are linear theory's: v_pec = a H f (x - q) for Zel'dovich.
  const ff::Cosmology& c = sim.cosmology();
  const double a = 0.05;
  const auto ic = ff::lpt_initial_conditions(c, sim.power(), 16, 64.0, 5, a, ff::LptOrder::first);
  const double factor = 100.0 * a * c.hubble_e(a) * c.growth_rate(a);  // km/s per Mpc/h
  for (size_t i = 0; i < ic.size(); i += 97) {
    const int qi = int(i / 256), qj = int(i / 16 % 16), qk = int(i % 16);
    const double q[3] = {qi * 4.0, qj * 4.0, qk * 4.0};
    for (int d = 0; d < 3; ++d) {
      double dx = ic.position_mpch[i][d] - q[d];
      dx -= 64.0 * std::round(dx / 64.0);
      const double v_pec = ff::gadget_velocity(ic.momentum[i], a)[d] * std::sqrt(a);
      EXPECT_NEAR(v_pec, factor * dx, 1e-9 * (1 + std::abs(v_pec)));
    }
  }
  fs::remove_all(dir);
}

TEST(SimOutput, BitIdenticalRerunAndStacks) {
  const auto dir_a = temp_dir("rerun_a"), dir_b = temp_dir("rerun_b");
  auto sa = small_settings(dir_a.string()), sb = small_settings(dir_b.string());
  sa.output_redshifts = sb.output_redshifts = {0.0};
  const ff::Simulator a(sa), b(sb);
  for (int i = 0; i < 3; ++i) {
    a.run("train", i, 10 + uint64_t(i));
    b.run("train", i, 10 + uint64_t(i));
  }
  // Same seed, same contents to the bit: every header value and every stored number. (The files'
  // bytes also hold HDF5's object modification times, which differ from second to second.)
  auto same_bits = [](const auto& x, const auto& y) {
    return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(x[0])) == 0;
  };
  for (int i = 0; i < 3; ++i) {
    ff::SnapshotReader ra(ff::snapshot_base(sa, "train", i, 0) + ".hdf5");
    ff::SnapshotReader rb(ff::snapshot_base(sb, "train", i, 0) + ".hdf5");
    EXPECT_TRUE(same_bits(ra.header().mass_table, rb.header().mass_table));
    EXPECT_EQ(ra.header().time, rb.header().time);
    EXPECT_TRUE(same_bits(ra.read_positions_mpch(), rb.read_positions_mpch())) << i;
    EXPECT_TRUE(same_bits(ra.read_velocities(), rb.read_velocities())) << i;
    EXPECT_TRUE(same_bits(ra.read_ids(), rb.read_ids())) << i;
    EXPECT_TRUE(same_bits(ff::read_grid_as<float>(ff::delta_path(sa, "train", i, 0)).values,
                          ff::read_grid_as<float>(ff::delta_path(sb, "train", i, 0)).values));
  }
  // Different seeds differ.
  EXPECT_FALSE(same_bits(ff::read_grid_as<float>(ff::delta_path(sa, "train", 0, 0)).values,
                         ff::read_grid_as<float>(ff::delta_path(sa, "train", 1, 0)).values));
  // The stack holds the three grids in order.
  ff::write_set_stacks(sa, {"train", 3, 10});
  const auto info = ff::inspect_grid_file(ff::stack_path(sa, "train", 0));
  EXPECT_EQ(info.count, 3);
  EXPECT_EQ(info.n, 8);
  for (int i = 0; i < 3; ++i) {
    const ff::GridF one = ff::read_grid_as<float>(ff::delta_path(sa, "train", i, 0));
    const ff::GridF stacked = ff::read_grid_as<float>(ff::stack_path(sa, "train", 0), i);
    EXPECT_TRUE(same_bits(one.values, stacked.values)) << i;
  }
  // A missing grid makes the simulation unfinished again.
  fs::remove(ff::delta_path(sa, "train", 1, 0));
  EXPECT_FALSE(ff::simulation_complete(sa, "train", 1));
  EXPECT_TRUE(ff::simulation_complete(sa, "train", 2));
  fs::remove_all(dir_a);
  fs::remove_all(dir_b);
}

TEST(SimOutput, ParticleMassAndValidation) {
  // 512^3 particles in 1 Gpc/h at Omega_m = 0.3175: Quijote's 6.565e11 Msun/h.
  EXPECT_NEAR(ff::particle_mass_1e10_msun_h(0.3175, 1000.0, 512ull * 512 * 512), 65.65, 0.01);
  auto s = small_settings("unused");
  s.output_redshifts = {25.0};
  EXPECT_THROW(ff::validate(s, "sim.yaml"), ff::Error);
  s = small_settings("unused");
  s.particles_per_side = 15;
  try {
    ff::validate(s, "sim.yaml");
    FAIL();
  } catch (const ff::Error& e) {
    EXPECT_NE(std::string(e.what()).find("sim.yaml: simulation.particles_per_side"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
