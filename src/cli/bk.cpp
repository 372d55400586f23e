// fieldflow bk FIELD.h5 [--mas none|ngp|cic|tsc] [--kbin W] [--index I] [--out bk.csv]:
// the equilateral bispectrum B(k) and reduced bispectrum Q(k) (docs/statistics.md "Bispectrum").
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "commands.hpp"
#include "field_stats.hpp"
#include "fieldflow/core/grid.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/stats/bispectrum.hpp"

namespace ff::cli {

namespace {
struct BkArgs {
  std::string field;
  std::string mas = "none";
  double kbin = 1.0;
  int index = 0;
  std::string out;
};

void run_bk(const BkArgs& a) {
  refuse_output_that_is_input(a.out, {a.field});
  BispectrumOptions opts;
  opts.mas = parse_mass_assignment(a.mas);
  opts.kbin_width = a.kbin;
  const GridFileInfo info = inspect_for_fourier(a.field, a.index);
  const Grid field = read_grid(a.field, a.index);  // the estimator works in double
  // Progress at most every two seconds, for grids where it takes that long: on standard output
  // when the table goes to a file (so that an error stays the only line on standard error), on
  // standard error when the table itself is standard output.
  FILE* progress_to = a.out.empty() ? stderr : stdout;
  const auto start = std::chrono::steady_clock::now();
  auto last = start;
  const BispectrumProgress progress = [&](int done, int total) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::seconds(2) && done < total) return;
    if (done == total && now - start < std::chrono::seconds(2)) return;
    last = now;
    std::fprintf(progress_to, "bk: %d/%d shells, %.1f s\n", done, total,
                 std::chrono::duration<double>(now - start).count());
    std::fflush(progress_to);
  };
  EquilateralBispectrum estimator(info.n, info.box_size_mpch, opts, progress);
  const Bispectrum b = estimator.measure(field, a.field.c_str());
  emit_csv(
      a.out,
      {{"k", &b.k}, {"bk", &b.bk}, {"qk", &b.qk}, {"pk", &b.pk}, {"ntriangles", &b.ntriangles}});
}
}  // namespace

void add_bk_command(CLI::App& app) {
  auto args = std::make_shared<BkArgs>();
  CLI::App* sub = app.add_subcommand(
      "bk", "Measure the equilateral bispectrum B(k) and reduced bispectrum Q(k) of a grid file");
  sub->footer(
      "Output CSV: k,bk,qk,pk,ntriangles; k (shell centre) in h/Mpc, B in (Mpc/h)^6, P in\n"
      "(Mpc/h)^3, Q = B/(3 P^2). FFT shell estimator in Pylians3's convention: shells\n"
      "|k| in [k_i - W k_F, k_i + W k_F), k_i = i W k_F <= k_N. See docs/statistics.md.");
  sub->add_option("field", args->field, "Grid file (HDF5, /delta)")->required();
  sub->add_option("--mas", args->mas,
                  "Mass-assignment window to divide out: none (fields not painted), ngp, cic, tsc")
      ->default_val("none")
      ->check(CLI::IsMember({"none", "ngp", "cic", "tsc"}, CLI::ignore_case));
  // Every shell costs a pass of FFTs: below a quarter of k_F the shells hold no new triangles and
  // their number (N / 2W) becomes absurd (--kbin 5e-8: 1.6e8 passes).
  sub->add_option("--kbin", args->kbin,
                  "Shell spacing and half-width in units of the fundamental mode k_F = 2 pi / L")
      ->default_val(1.0)
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            char* end = nullptr;
            const double w = std::strtod(text.c_str(), &end);
            if (text.empty() || *end != '\0' || !std::isfinite(w) || !(w >= 0.25))
              return "expected a shell width of at least 0.25 (units of k_F), got " + text;
            return "";
          },
          "NUMBER >= 0.25"));
  sub->add_option("--index", args->index, "Member of a stacked [M,N,N,N] file to use")
      ->default_val(0)
      ->check(whole_number(0, 2147483647));
  sub->add_option("--out", args->out, "Output CSV (default: standard output)");
  sub->callback([args] { run_about(args->field, [&] { run_bk(*args); }); });
}

}  // namespace ff::cli
