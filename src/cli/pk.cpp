// fieldflow pk FIELD.h5 [--cross OTHER.h5] [--mas none|ngp|cic|tsc] [--kbin W]
//              [--index I | --all] [--out pk.csv]
#include <cmath>
#include <cstdio>
#include <memory>

#include "commands.hpp"
#include "field_stats.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/fft.hpp"
#include "fieldflow/core/memory.hpp"
#include "fieldflow/io/atomic_file.hpp"
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
  bool all = false;  // every member of a stack, one table with an index column
  std::string out;
};

// Float32 files go through the single-precision FFT (bins still accumulate in double). With --all
// every member in turn, in one table whose first column is the member's index; else a.index alone.
template <typename T>
void measure(const PkArgs& a, const PowerSpectrumOptions& opts, int n, int members) {
  // The transform buffer (n^3 values plus padding), two fields and two transforms for --cross.
  const double fields = a.cross.empty() ? 1.0 : 4.0;
  require_memory(fields * double(n) * n * (n + 2) * sizeof(T), a.field,
                 "the power spectrum of this " + std::to_string(n) + "^3 grid");
  const std::vector<std::string> names =
      a.cross.empty() ? std::vector<std::string>{"index", "k", "pk", "nmodes"}
                      : std::vector<std::string>{"index", "k", "pk1", "pk2", "pk12", "r", "nmodes"};
  std::vector<std::vector<double>> table(names.size());
  auto append = [&](int index, const std::vector<const std::vector<double>*>& columns) {
    table[0].insert(table[0].end(), columns[0]->size(), double(index));
    for (size_t c = 0; c < columns.size(); ++c)
      table[c + 1].insert(table[c + 1].end(), columns[c]->begin(), columns[c]->end());
  };
  std::unique_ptr<RealFft3d<T>> fft;
  for (int index = a.all ? 0 : a.index; index <= (a.all ? members - 1 : a.index); ++index) {
    if (a.cross.empty()) {
      // The field is read straight into the transform's buffer: no copy, no second allocation.
      if (!fft) fft = std::make_unique<RealFft3d<T>>(n);
      const GridFileInfo info = read_grid_into(a.field, index, n, fft->real());
      const PowerSpectrum p = measure_power_spectrum_in_place(*fft, info.box_size_mpch, opts);
      append(index, {&p.k, &p.pk, &p.nmodes});
    } else {
      const BasicGrid<T> field = read_grid_as<T>(a.field, index);
      const BasicGrid<T> other = read_grid_as<T>(a.cross, index);
      const CrossSpectrum c = measure_cross_spectrum(field, other, opts);
      append(index, {&c.k, &c.pk1, &c.pk2, &c.pk12, &c.r, &c.nmodes});
    }
  }
  std::vector<CsvColumn> csv;
  for (size_t c = a.all ? 0 : 1; c < names.size(); ++c) csv.push_back({names[c], &table[c]});
  emit_csv(a.out, csv);
}

void run_pk(const PkArgs& a) {
  refuse_output_that_is_input(a.out, {a.field, a.cross});
  PowerSpectrumOptions opts;
  opts.mas = parse_mass_assignment(a.mas);
  opts.kbin_width = a.kbin;
  const GridFileInfo info = inspect_for_fourier(a.field, a.index);
  bool all_float32 = info.precision == GridPrecision::float32;
  if (!a.cross.empty()) {
    const GridFileInfo other = inspect_for_fourier(a.cross, a.index);
    if (other.n != info.n)
      throw Error(a.cross, "grid size " + std::to_string(other.n) + " differs from " +
                               std::to_string(info.n) + " in " + a.field);
    if (other.box_size_mpch != info.box_size_mpch)
      throw Error(a.cross, "box size " + std::to_string(other.box_size_mpch) +
                               " Mpc/h differs from " + std::to_string(info.box_size_mpch) +
                               " Mpc/h in " + a.field);
    if (a.all && other.count != info.count)
      throw Error(a.cross, "--all: " + std::to_string(other.count) + " field(s), " + a.field +
                               " has " + std::to_string(info.count));
    all_float32 = all_float32 && other.precision == GridPrecision::float32;
  }
  const double volume = info.box_size_mpch * info.box_size_mpch * info.box_size_mpch;
  opts.shot_noise = a.particles > 0 ? volume / a.particles : a.shot_noise;
  about_input(a.field, {"power spectrum", "cross spectrum"}, [&] {
    if (all_float32)
      measure<float>(a, opts, info.n, info.count);
    else
      measure<double>(a, opts, info.n, info.count);
  });
}
}  // namespace

void add_pk_command(CLI::App& app) {
  auto args = std::make_shared<PkArgs>();
  CLI::App* sub = app.add_subcommand(
      "pk", "Measure the power spectrum of a grid file (or the cross spectrum of two)");
  sub->footer(
      "Output CSV: k,pk,nmodes (or k,pk1,pk2,pk12,r,nmodes with --cross; --all puts index\n"
      "first); k in h/Mpc, P in (Mpc/h)^3, P(k) = (L^3/N^6) |delta_k|^2 averaged over\n"
      "i <= |k|/(W k_F) < i+1, k <= k_N.\n"
      "See docs/statistics.md.");
  sub->add_option("field", args->field, "Grid file (HDF5, /delta)")->required();
  sub->add_option("--cross", args->cross,
                  "Second grid file: write P1, P2, P12 and r = P12/sqrt(P1 P2)");
  sub->add_option("--mas", args->mas,
                  "Mass-assignment window to divide out: none (fields not painted), ngp, cic, tsc")
      ->default_val("none")
      ->check(CLI::IsMember({"none", "ngp", "cic", "tsc"}, CLI::ignore_case));
  sub->add_option("--kbin", args->kbin, "Bin width in units of the fundamental mode k_F = 2 pi / L")
      ->default_val(1.0)
      ->check(positive_number());
  CLI::Option* shot = sub->add_option("--shot-noise", args->shot_noise,
                                      "Subtract this shot noise, (Mpc/h)^3, from the auto spectra")
                          ->check(non_negative_number());
  sub->add_option("--particles", args->particles,
                  "Subtract the Poisson shot noise L^3 / NP of NP particles from the auto spectra")
      ->check(positive_number())
      ->excludes(shot);
  CLI::Option* index =
      sub->add_option("--index", args->index, "Member of a stacked [M,N,N,N] file to use")
          ->default_val(0)
          ->check(whole_number(0, 2147483647));
  sub->add_flag("--all", args->all,
                "Every member of a stacked file (with --cross, member i of each): one table "
                "with the member's index as the first column")
      ->excludes(index);
  sub->add_option("--out", args->out, "Output CSV (default: standard output)");
  sub->callback([args] { run_about(args->field, [&] { run_pk(*args); }); });
}

}  // namespace ff::cli
