// fieldflow paint SNAPSHOT --grid N [--mas cic] [--interlace] [--length-unit auto] --out grid.h5
#include "fieldflow/stats/paint.hpp"

#include <chrono>
#include <cstdio>

#include "commands.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/memory.hpp"
#include "fieldflow/core/provenance.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/io/snapshot.hpp"

namespace ff::cli {

namespace {
struct PaintArgs {
  std::string snapshot;
  int grid = 0;
  std::string mas = "cic";
  bool interlace = false;
  std::string length_unit = "auto";
  std::string precision = "float32";
  std::string out;
};

void run_paint(const PaintArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  const MassAssignment mas = parse_mass_assignment(a.mas);
  if (a.interlace && a.grid % 2 != 0)
    throw UsageError("--grid",
                     "interlacing needs an even grid size, got " + std::to_string(a.grid));
  SnapshotReader reader(a.snapshot, parse_length_unit(a.length_unit));
  refuse_output_that_is_input(a.out, reader.files());
  // The painted mesh(es) in double, plus the written copy: refuse before allocating.
  const double cells = double(a.grid) * a.grid * a.grid;
  require_memory(cells * 8.0 * (a.interlace ? 3 : 2), "--grid",
                 "a " + std::to_string(a.grid) + "^3 grid");
  const auto& h = reader.header();
  std::printf(
      "fieldflow paint: %zu file(s), %llu particles, box %.6g Mpc/h, z = %.4g; "
      "lengths in %s (%s)\n",
      reader.files().size(), static_cast<unsigned long long>(reader.particle_count()),
      h.box_size_mpch, h.redshift, to_string(reader.length_unit()),
      reader.length_unit_reason().c_str());
  Painter painter(a.grid, h.box_size_mpch, mas, a.interlace);
  if (reader.particle_count() == 0) throw Error(a.snapshot, "holds no particles to paint");
  about_input(a.snapshot, {"paint"}, [&] {
    reader.for_each_position_chunk([&](auto chunk) { painter.add(chunk); },
                                   Painter::preferred_chunk);
  });
  Grid delta = painter.release_delta();
  delta.redshift = h.redshift;
  // The options actually used (the length unit resolved), as the grid's provenance.
  YAML::Node used;
  used["paint"]["snapshot"] = a.snapshot;
  used["paint"]["grid"] = a.grid;
  used["paint"]["mas"] = to_string(mas);
  used["paint"]["interlace"] = a.interlace;
  used["paint"]["length_unit"] = to_string(reader.length_unit());
  used["paint"]["precision"] = a.precision;
  YAML::Emitter yaml;
  yaml << used;
  write_grid(a.out, delta,
             a.precision == "float64" ? GridPrecision::float64 : GridPrecision::float32,
             provenance(std::string(yaml.c_str()) + "\n"));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("fieldflow paint: %d^3 %s%s grid written to %s (%.2f s)\n", a.grid, to_string(mas),
              a.interlace ? " interlaced" : "", printable(a.out).c_str(), seconds);
}
}  // namespace

void add_paint_command(CLI::App& app) {
  auto args = std::make_shared<PaintArgs>();
  CLI::App* sub = app.add_subcommand(
      "paint", "Paint a Gadget/Quijote HDF5 snapshot onto a periodic grid of delta = rho/mean - 1");
  sub->footer(
      "Grid point (i,j,k) sits at (i,j,k) L/N (as in Pylians3 and nbodykit); the file holds\n"
      "delta = rho/mean - 1. Measure it with: fieldflow pk OUT.h5 --mas <the same scheme>.\n"
      "See docs/statistics.md.");
  sub->add_option("snapshot", args->snapshot,
                  "Snapshot: snap_004, snap_004.hdf5 or snap_004.0.hdf5 (all files are read)")
      ->required();
  sub->add_option("--grid", args->grid, "Grid points per side")
      ->required()
      ->check(whole_number(2, 4096));
  sub->add_option("--mas", args->mas, "Mass assignment: ngp, cic or tsc")
      ->default_val("cic")
      ->check(CLI::IsMember({"ngp", "cic", "tsc"}, CLI::ignore_case));
  sub->add_flag("--interlace", args->interlace,
                "Interlace a half-cell-shifted mesh to suppress aliasing (Sefusatti et al. 2016)");
  sub->add_option("--length-unit", args->length_unit,
                  "Unit of the stored positions: auto, kpc/h or mpc/h")
      ->default_val("auto")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            try {
              parse_length_unit(text);
            } catch (const Error& e) {
              return e.problem();
            }
            return "";
          },
          "UNIT"));
  sub->add_option("--precision", args->precision, "Stored precision of /delta")
      ->default_val("float32")
      ->check(CLI::IsMember({"float32", "float64"}));
  sub->add_option("--out", args->out, "Output grid file (HDF5)")->required();
  sub->callback([args] { run_about(args->snapshot, [&] { run_paint(*args); }); });
}

}  // namespace ff::cli
