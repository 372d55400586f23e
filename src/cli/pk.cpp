// fieldflow pk FIELD.h5 [--cross OTHER.h5] [--mas none|ngp|cic|tsc] [--kbin W] [--out pk.csv]
#include <cstdio>

#include "commands.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/io/csv.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/stats/power_spectrum.hpp"

namespace ff::cli {

namespace {
struct PkArgs {
  std::string field;
  std::string cross;
  std::string mas = "none";
  double kbin = 1.0;
  double shot_noise = 0.0;
  double particles = 0.0;
  int index = 0;
  std::string out;
};

void run_pk(const PkArgs& a) {
  PowerSpectrumOptions opts;
  opts.mas = parse_mass_assignment(a.mas);
  opts.kbin_width = a.kbin;
  const Grid field = read_grid(a.field, a.index);  // TODO(stats): float path
  if (a.particles > 0 && a.shot_noise > 0)
    throw Error("--shot-noise", "give either --shot-noise or --particles, not both");
  opts.shot_noise = a.particles > 0 ? field.box_size_mpch * field.box_size_mpch *
                                          field.box_size_mpch / a.particles
                                    : a.shot_noise;
  std::string csv;
  if (a.cross.empty()) {
    const PowerSpectrum p = measure_power_spectrum(field, opts);
    if (!a.out.empty()) {
      write_csv(a.out, {{"k", &p.k}, {"pk", &p.pk}, {"nmodes", &p.nmodes}});
      return;
    }
    csv = format_csv({{"k", &p.k}, {"pk", &p.pk}, {"nmodes", &p.nmodes}});
  } else {
    const Grid other = read_grid(a.cross, a.index);
    if (other.n != field.n || other.box_size_mpch != field.box_size_mpch)
      throw Error(a.cross, "grid size or box size differs from " + a.field);
    const CrossSpectrum c = measure_cross_spectrum(field, other, opts);
    const std::vector<CsvColumn> columns{{"k", &c.k},       {"pk1", &c.pk1}, {"pk2", &c.pk2},
                                         {"pk12", &c.pk12}, {"r", &c.r},     {"nmodes", &c.nmodes}};
    if (!a.out.empty()) {
      write_csv(a.out, columns);
      return;
    }
    csv = format_csv(columns);
  }
  std::fwrite(csv.data(), 1, csv.size(), stdout);
}
}  // namespace

void add_pk_command(CLI::App& app) {
  auto args = std::make_shared<PkArgs>();
  CLI::App* sub = app.add_subcommand(
      "pk", "Measure the power spectrum of a grid file (or the cross spectrum of two)");
  sub->add_option("field", args->field, "Grid file (HDF5, /delta)")->required();
  sub->add_option("--cross", args->cross, "Second grid file: write P1, P2, P12 and r = P12/sqrt(P1 P2)");
  sub->add_option("--mas", args->mas,
                  "Mass-assignment window to divide out: none (fields not painted), ngp, cic, tsc")
      ->default_val("none")
      ->check(CLI::IsMember({"none", "ngp", "cic", "tsc"}, CLI::ignore_case));
  sub->add_option("--kbin", args->kbin, "Bin width in units of the fundamental mode k_F = 2 pi / L")
      ->default_val(1.0)
      ->check(CLI::PositiveNumber);
  sub->add_option("--shot-noise", args->shot_noise,
                  "Subtract this shot noise, (Mpc/h)^3, from the auto spectra")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--particles", args->particles,
                  "Subtract the Poisson shot noise L^3 / NP of NP particles from the auto spectra")
      ->check(CLI::PositiveNumber);
  sub->add_option("--index", args->index, "Member of a stacked [M,N,N,N] file to use")
      ->default_val(0)
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--out", args->out, "Output CSV (default: standard output)");
  sub->callback([args] { run_pk(*args); });
}

}  // namespace ff::cli
