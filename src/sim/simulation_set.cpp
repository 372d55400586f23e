#include "fieldflow/sim/simulation_set.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "fieldflow/core/error.hpp"
#include "fieldflow/io/grid_file.hpp"

namespace ff {

namespace {
std::string three(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%03d", i);
  return buf;
}
std::string four(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d", i);
  return buf;
}
}  // namespace

std::vector<double> sorted_output_redshifts(const SimulationSettings& s) {
  std::vector<double> z = s.output_redshifts;
  std::sort(z.begin(), z.end(), std::greater<double>());
  z.erase(std::unique(z.begin(), z.end()), z.end());
  return z;
}

std::string simulation_dir(const SimulationSettings& s, const std::string& set, int index) {
  return s.output_dir + "/" + set + "/sim_" + four(index);
}
std::string snapshot_base(const SimulationSettings& s, const std::string& set, int index,
                          int output) {
  return simulation_dir(s, set, index) + "/snap_" + three(output);
}
std::string delta_path(const SimulationSettings& s, const std::string& set, int index, int output) {
  return simulation_dir(s, set, index) + "/delta_" + three(output) + ".h5";
}
std::string stack_path(const SimulationSettings& s, const std::string& set, int output) {
  const int outputs = int(sorted_output_redshifts(s).size());
  if (output == outputs - 1) return s.output_dir + "/" + set + ".h5";
  return s.output_dir + "/" + set + "_" + three(output) + ".h5";
}

bool simulation_complete(const SimulationSettings& s, const std::string& set, int index) {
  namespace fs = std::filesystem;
  const int outputs = int(sorted_output_redshifts(s).size());
  for (int o = 0; o < outputs; ++o) {
    if (!fs::exists(delta_path(s, set, index, o))) return false;
    if (s.write_snapshots) {
      const std::string base = snapshot_base(s, set, index, o);
      const int files = s.snapshot.num_files;
      for (int f = 0; f < files; ++f)
        if (!fs::exists(files == 1 ? base + ".hdf5" : base + "." + std::to_string(f) + ".hdf5"))
          return false;
    }
  }
  return true;
}

double particle_mass_1e10_msun_h(double omega_m, double box, uint64_t particles) {
  constexpr double rho_crit = 27.7536627;  // 1e10 Msun/h per (Mpc/h)^3
  return omega_m * rho_crit * box * box * box / double(particles);
}

LinearPower Simulator::make_power(const SimulationSettings& s) {
  validate(s, "simulation");  // first: the members below rely on valid settings
  if (s.transfer == TransferKind::table)
    return LinearPower(s.cosmology, read_power_table(s.power_table), s.table_sigma8);
  return LinearPower(s.cosmology, s.transfer);
}

Simulator::Simulator(const SimulationSettings& settings)
    : settings_(settings),
      cosmology_(settings.cosmology),
      power_(make_power(settings)),
      provenance_(provenance(simulation_settings_yaml(settings))) {}

void Simulator::simulate(uint64_t seed,
                         const std::function<void(int, const Particles&, const Grid&)>& on_output,
                         ForceTiming* timing) const {
  const auto& s = settings_;
  const std::vector<double> z = sorted_output_redshifts(s);
  std::vector<double> a(z.size());
  for (size_t i = 0; i < z.size(); ++i) a[i] = 1.0 / (1.0 + z[i]);
  Particles particles =
      lpt_initial_conditions(cosmology_, power_, s.particles_per_side, s.box_size_mpch, seed,
                             1.0 / (1.0 + s.z_start), s.lpt, s.fixed_amplitude);
  evolve(
      cosmology_, particles, a, s.pm,
      [&](int output, const Particles& p) {
        Painter painter(s.paint_grid, s.box_size_mpch, s.paint_mas, s.paint_interlaced);
        painter.add(p.position_mpch);
        Grid delta = painter.delta();
        delta.redshift = z[size_t(output)];
        on_output(output, p, delta);
      },
      timing);
}

Simulator::Result Simulator::run(const std::string& set, int index, uint64_t seed) const {
  const double t0 = omp_get_wtime();
  const auto& s = settings_;
  const std::vector<double> z = sorted_output_redshifts(s);
  // Grids wait until every snapshot is written: their existence marks the simulation finished.
  std::vector<Grid> grids(z.size());
  Result result;
  simulate(
      seed,
      [&](int output, const Particles& p, const Grid& delta) {
        if (s.write_snapshots) {
          SnapshotHeader h;
          h.box_size_mpch = s.box_size_mpch;
          h.redshift = z[size_t(output)];
          h.time = p.a;
          h.omega_m = s.cosmology.omega_m;
          h.omega_lambda = 1.0 - s.cosmology.omega_m;
          h.hubble_param = s.cosmology.h;
          h.mass_table[1] =
              particle_mass_1e10_msun_h(s.cosmology.omega_m, s.box_size_mpch, p.size());
          std::vector<std::array<double, 3>> velocities(p.size());
#pragma omp parallel for schedule(static)
          for (size_t i = 0; i < p.size(); ++i) velocities[i] = gadget_velocity(p.momentum[i], p.a);
          write_snapshot(snapshot_base(s, set, index, output), h, p.position_mpch, velocities,
                         p.ids, s.snapshot, provenance_);
        }
        grids[size_t(output)] = delta;
      },
      &result.timing);
  for (size_t o = 0; o < z.size(); ++o)
    write_grid(delta_path(s, set, index, int(o)), grids[o], GridPrecision::float32, provenance_);
  result.seconds = omp_get_wtime() - t0;
  return result;
}

void write_set_stacks(const SimulationSettings& s, const SimulationSetSpec& set) {
  if (set.count <= 0) return;
  const int outputs = int(sorted_output_redshifts(s).size());
  for (int o = 0; o < outputs; ++o) {
    std::vector<GridF> grids;
    grids.reserve(size_t(set.count));
    for (int i = 0; i < set.count; ++i)
      grids.push_back(read_grid_as<float>(delta_path(s, set.name, i, o)));
    write_grid_stack(stack_path(s, set.name, o), grids, GridPrecision::float32,
                     provenance(simulation_settings_yaml(s)));
  }
}

}  // namespace ff
