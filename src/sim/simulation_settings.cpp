// The keys of `fieldflow simulate`'s config, declared once (docs/simulate.md's table comes from
// here), and the resume check of an output folder against its settings.yaml.
#include <filesystem>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/provenance.hpp"
#include "fieldflow/core/settings.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/sim/simulation_set.hpp"

namespace ff {

namespace {

using S = SimulationSettings;

SettingsTable<SimulationSetSpec> set_table(const std::string& name, long long count,
                                           long long first_seed) {
  using T = SimulationSetSpec;
  return SettingsTable<T>(name, "One set of simulations.")
      .integer("count", &T::count, count, Range::between(0, 9999),
               "simulations in the " + name + " set (a rerun with more adds the missing ones)",
               Resume::may_change)
      .integer("first_seed", &T::first_seed, first_seed, Range::non_negative(),
               "simulation i of the set uses seed first_seed + i");
}

const SettingsTable<SimulationSets>& sets_table() {
  static const auto table =
      SettingsTable<SimulationSets>("sets", "The training and test sets.")
          .section("train", &SimulationSets::train, set_table("train", 256, 1))
          .section("test", &SimulationSets::test, set_table("test", 256, 1000001))
          .check([](const SimulationSets& s, const Reject& reject) {
            // A test simulation must never repeat a training one.
            const auto& tr = s.train;
            const auto& te = s.test;
            if (tr.count > 0 && te.count > 0 && tr.first_seed < te.first_seed + te.count &&
                te.first_seed < tr.first_seed + tr.count)
              reject("test.first_seed", "the seeds of train [" + std::to_string(tr.first_seed) +
                                            ", " + std::to_string(tr.first_seed + tr.count) +
                                            ") and test [" + std::to_string(te.first_seed) + ", " +
                                            std::to_string(te.first_seed + te.count) + ") overlap");
          });
  return table;
}

SettingsTable<S> power_table() {
  return SettingsTable<S>("power", "The linear power spectrum of the initial conditions.")
      .choice("transfer", &S::transfer, TransferKind::eh98,
              {{"eh98", TransferKind::eh98},
               {"eh98_nowiggle", TransferKind::eh98_no_wiggle},
               {"table", TransferKind::table}},
              "EH98 transfer function with baryon wiggles, without, or a tabulated P(k)")
      .text("table", &S::power_table, "",
            "transfer: table: file of two columns k [h/Mpc], P [(Mpc/h)^3] (CAMB, CLASS)")
      .flag("normalise_sigma8", &S::table_sigma8, true,
            "rescale a table to cosmology.sigma8 (EH98 is always normalised)")
      .check([](const S& s, const Reject& reject) {
        if (s.transfer == TransferKind::table && s.power_table.empty())
          reject("table", "transfer: table needs the path of a two-column (k, P) file");
      });
}

SettingsTable<S> simulation_table() {
  return SettingsTable<S>("simulation", "The particle-mesh simulation.")
      .integer("particles_per_side", &S::particles_per_side, 64, Range::between(4, 2048).even(),
               "particles per side of the cubic lattice")
      .number("box_size", &S::box_size_mpch, 128.0, Range::positive(), "box side in Mpc/h")
      .number("z_start", &S::z_start, 19.0, Range::between(0, 999).open_below(),
              "redshift of the 2LPT (or Zel'dovich) initial conditions")
      .numbers("output_redshifts", &S::output_redshifts, {0.0}, Range::non_negative(),
               "one snapshot and one grid per redshift, each below z_start")
      .integer("steps", nested(&S::pm, &PmOptions::steps), 20, Range::between(1, 100000),
               "KDK steps, linear in a, from z_start to the lowest output redshift")
      .integer("mesh_factor", nested(&S::pm, &PmOptions::mesh_factor), 2, Range::between(1, 4),
               "force mesh = mesh_factor x particles_per_side cells per side")
      .choice("gradient", nested(&S::pm, &PmOptions::gradient), GradientKind::fd4,
              {{"fd4", GradientKind::fd4}, {"spectral", GradientKind::spectral}},
              "force gradient: FastPM's 4-point difference (2 FFTs per step) or spectral (4)")
      .integer("compensation", nested(&S::pm, &PmOptions::compensation), 1, Range::between(0, 2),
               "divide the CIC window out of the force: 0 no, 1 paint, 2 paint and read-out")
      .choice("lpt_order", &S::lpt, LptOrder::second,
              {{"1", LptOrder::first}, {"2", LptOrder::second}},
              "initial conditions: 1 Zel'dovich, 2 2LPT")
      .flag("fixed_amplitude", &S::fixed_amplitude, false,
            "|delta_k| fixed to sqrt(P), random phases only (Angulo & Pontzen 2016)")
      .check([](const S& s, const Reject& reject) {
        for (double z : s.output_redshifts)
          if (!(z < s.z_start))
            reject("output_redshifts", "every output redshift must be below z_start (" +
                                           format_number(s.z_start) + "), got " + format_number(z));
      });
}

SettingsTable<S> paint_table() {
  return SettingsTable<S>("paint", "The delta grids painted from the particles.")
      .integer("grid", &S::paint_grid, 32, Range::between(2, 2048).even(), "grid cells per side")
      .choice("mas", &S::paint_mas, MassAssignment::cic,
              {{"ngp", MassAssignment::ngp},
               {"cic", MassAssignment::cic},
               {"tsc", MassAssignment::tsc}},
              "mass assignment")
      .flag("interlace", &S::paint_interlaced, false,
            "average with a grid shifted by half a cell (less aliasing)");
}

SettingsTable<S> snapshots_table() {
  return SettingsTable<S>("snapshots", "The Gadget-4-style HDF5 snapshots.")
      .flag("write", &S::write_snapshots, true,
            "write snapshots (false keeps only the grids); a rerun writes missing ones",
            Resume::may_change)
      .choice("length_unit", nested(&S::snapshot, &SnapshotWriteOptions::unit), LengthUnit::kpc_h,
              {{"kpc/h", LengthUnit::kpc_h}, {"mpc/h", LengthUnit::mpc_h}},
              "unit of Coordinates: kpc/h as Gadget and Quijote, or mpc/h")
      .choice("precision", nested(&S::snapshot, &SnapshotWriteOptions::double_precision), false,
              {{"float32", false}, {"float64", true}}, "floating-point type of the particle data")
      .integer("files", nested(&S::snapshot, &SnapshotWriteOptions::num_files), 1,
               Range::between(1, 1024), "split each snapshot over this many files")
      .flag("blosc", nested(&S::snapshot, &SnapshotWriteOptions::blosc_compression), false,
            "Quijote-style Blosc compression (needs the HDF5 Blosc filter plugin)");
}

}  // namespace

const SettingsTable<SimulationSettings>& simulation_settings_table() {
  static const auto table =
      SettingsTable<S>("simulation settings", "The config of `fieldflow simulate`.")
          .text("output_dir", &S::output_dir, "out/simulations",
                "folder of the simulations, grids and stacks", Resume::may_change)
          .section("cosmology", &S::cosmology, cosmology_table())
          .section("power", power_table())
          .section("simulation", simulation_table())
          .section("paint", paint_table())
          .section("snapshots", snapshots_table())
          .section("sets", &S::sets, sets_table());
  return table;
}

SimulationSettings read_simulation_settings(Config& config) {
  SimulationSettings s = simulation_settings_table().read(config.root());
  config.finish();
  return s;
}

void validate(const SimulationSettings& s, const std::string& source) {
  simulation_settings_table().validate(s, source);
}

std::string simulation_settings_yaml(const SimulationSettings& s) {
  return simulation_settings_table().dump_text(s);
}

std::string settings_path(const SimulationSettings& s) {
  return s.output_dir + "/settings.yaml";
}

void check_resume(const SimulationSettings& s) {
  namespace fs = std::filesystem;
  const std::string path = settings_path(s);
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    // Simulations without a settings.yaml: made by a fieldflow before the resume check.
    for (const auto& set : s.sets.all())
      if (fs::exists(simulation_dir(s, set.name, 0), ec))
        throw Error(s.output_dir,
                    "holds simulations but no settings.yaml, so a resume cannot be "
                    "checked; choose another output_dir");
    return;
  }
  Config stored_config = Config::load(path);
  const SimulationSettings stored = read_simulation_settings(stored_config);
  if (const auto d = simulation_settings_table().first_resume_difference(stored, s))
    throw Error(path, d->key + ": " + d->stored + " in this folder, " + d->requested +
                          " requested; resume with the same settings or choose another output_dir");
}

void record_settings(const SimulationSettings& s) {
  const Provenance p = provenance();
  atomic_write_text(settings_path(s),
                    "# The settings of this folder, written by fieldflow " + p.version +
                        " (commit " + p.git_commit +
                        ").\n# fieldflow simulate resumes here only with the same values of the "
                        "keys marked \"must match\" in docs/simulate.md.\n" +
                        simulation_settings_yaml(s));
}

}  // namespace ff
