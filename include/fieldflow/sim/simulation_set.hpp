#pragma once
// Sets of simulations on disk: what `fieldflow simulate` makes (docs/simulate.md).
//
//   <output_dir>/<set>/sim_<iiii>/snap_<ooo>.hdf5   Gadget-4-style snapshot per output redshift
//   <output_dir>/<set>/sim_<iiii>/delta_<ooo>.h5    its painted delta grid (grid file format)
//   <output_dir>/<set>.h5                           stack [M, N, N, N] of the last output's grids
//   <output_dir>/<set>_<ooo>.h5                     stack per output (only with several outputs)
//
//   <output_dir>/settings.yaml                      the settings of the folder (resume check)
//
// Simulation i of a set uses seed first_seed + i. Its grids are written after its snapshots, each
// file atomically, so a simulation is finished exactly when all its files exist; a rerun skips it,
// and only when the folder's settings.yaml agrees on every must_match key (docs/simulate.md).
// Every key is declared once, in simulation_settings_table() (src/sim/simulation_settings.cpp).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "fieldflow/core/provenance.hpp"
#include "fieldflow/io/snapshot.hpp"
#include "fieldflow/sim/cosmology.hpp"
#include "fieldflow/sim/initial_conditions.hpp"
#include "fieldflow/sim/linear_power.hpp"
#include "fieldflow/sim/particle_mesh.hpp"
#include "fieldflow/stats/paint.hpp"

namespace ff {

class Config;
template <class S>
class SettingsTable;

struct SimulationSetSpec {
  std::string name;  // "train", "test"
  int count = 0;
  uint64_t first_seed = 1;
};

// The sets `simulate` makes; their seed ranges must not overlap.
struct SimulationSets {
  SimulationSetSpec train{"train", 256, 1};
  SimulationSetSpec test{"test", 256, 1000001};
  std::vector<SimulationSetSpec> all() const { return {train, test}; }
};

// Defaults in simulation_settings_table(); the initialisers below repeat them for settings made in
// code, and a test checks that the two agree.
struct SimulationSettings {
  CosmologyParams cosmology;
  TransferKind transfer = TransferKind::eh98;
  std::string power_table;   // when transfer == table
  bool table_sigma8 = true;  // rescale the table to cosmology.sigma8
  int particles_per_side = 64;
  double box_size_mpch = 128.0;
  double z_start = 19.0;
  std::vector<double> output_redshifts{0.0};
  PmOptions pm;
  LptOrder lpt = LptOrder::second;
  bool fixed_amplitude = false;
  int paint_grid = 32;
  MassAssignment paint_mas = MassAssignment::cic;
  bool paint_interlaced = false;
  bool write_snapshots = true;
  SnapshotWriteOptions snapshot;
  std::string output_dir = "out/simulations";
  SimulationSets sets;
};

// The declaration of every key of configs/simulate.yaml (docs/simulate.md's table comes from it).
const SettingsTable<SimulationSettings>& simulation_settings_table();
// The whole config file (unknown keys refused); errors name the file and the key's path.
SimulationSettings read_simulation_settings(Config& config);
// Range and consistency checks of settings made in code; errors name `source` and the key.
void validate(const SimulationSettings& s, const std::string& source);
// The settings as YAML text (the settings.yaml of the folder, the provenance of every file).
std::string simulation_settings_yaml(const SimulationSettings& s);

// <output_dir>/settings.yaml
std::string settings_path(const SimulationSettings& s);
// Resuming into output_dir is allowed only with the settings it was made with: throws an Error
// naming the first must_match key that differs from the folder's settings.yaml, or a folder that
// holds simulations but no settings.yaml. Reads only (every rank may call it).
void check_resume(const SimulationSettings& s);
// Writes <output_dir>/settings.yaml (atomically; one rank).
void record_settings(const SimulationSettings& s);

// Output redshifts sorted from high to low: output index o is the o-th snapshot in time.
std::vector<double> sorted_output_redshifts(const SimulationSettings& s);

std::string simulation_dir(const SimulationSettings& s, const std::string& set, int index);
std::string snapshot_base(const SimulationSettings& s, const std::string& set, int index,
                          int output);
std::string delta_path(const SimulationSettings& s, const std::string& set, int index, int output);
std::string stack_path(const SimulationSettings& s, const std::string& set, int output);

// All files of simulation `index` exist (snapshots if written, and every delta grid).
bool simulation_complete(const SimulationSettings& s, const std::string& set, int index);

// Particle mass in 1e10 Msun/h: Omega_m rho_crit L^3 / N, rho_crit = 27.7536627 in these units
// per (Mpc/h)^3.
double particle_mass_1e10_msun_h(double omega_m, double box_size_mpch, uint64_t particles);

// Everything one simulation needs that does not change between simulations.
class Simulator {
 public:
  explicit Simulator(const SimulationSettings& settings);
  const SimulationSettings& settings() const { return settings_; }
  const Cosmology& cosmology() const { return cosmology_; }
  const LinearPower& power() const { return power_; }

  struct Result {
    double seconds = 0;
    ForceTiming timing;
  };
  // Runs simulation `index` of `set` with `seed` and writes its files.
  Result run(const std::string& set, int index, uint64_t seed) const;
  // The same without files: hands each output (index, particles, painted delta) to a callback.
  void simulate(uint64_t seed,
                const std::function<void(int, const Particles&, const Grid&)>& on_output,
                ForceTiming* timing = nullptr) const;

 private:
  static LinearPower make_power(const SimulationSettings& s);
  SimulationSettings settings_;
  Cosmology cosmology_;
  LinearPower power_;
  Provenance provenance_;  // of every file: this build and the settings
};

// Writes <set>.h5 (and <set>_<ooo>.h5 for several outputs) from the simulations' delta grids.
void write_set_stacks(const SimulationSettings& s, const SimulationSetSpec& set);

}  // namespace ff
