// The reconstruction report: Wiener filter, flow MAP and the combined estimate against the truth
// (docs/report.md), from the HDF5 files of `fieldflow denoise`.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <numbers>

#include "ensemble.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/io/hdf5.hpp"
#include "fieldflow/report/document.hpp"
#include "fieldflow/report/report.hpp"
#include "fieldflow/stats/pdf.hpp"
#include "fieldflow/stats/power_spectrum.hpp"

namespace ff::report {

namespace fs = std::filesystem;

namespace {

const char* kKLabel = "k [h/Mpc]";

struct Result {
  std::string path;
  std::string checkpoint;  // the flow that made the MAP ("" when the file does not say)
  int n = 0;
  double box = 0, redshift = 0;
  Grid truth, data, mask, sigma;
  // wf, map, then combined and posterior_mean when present.
  std::vector<std::pair<std::string, Grid>> estimates;
  Grid posterior_std;  // n == 0: no posterior samples in this result
  // /posterior_pk: per k bin the posterior mean's P(k) and r, the samples' quantiles, the truth's.
  std::vector<std::string> posterior_columns;
  std::vector<std::vector<double>> posterior_table;  // one vector per column
  double k_split = 0;
  std::vector<std::pair<std::string, std::string>> solver;  // name, value
};

// "a, b, c" -> {a, b, c}
std::vector<std::string> split_columns(const std::string& text) {
  std::vector<std::string> out;
  std::string cell;
  for (char ch : text + ",") {
    if (ch == ',') {
      out.push_back(cell);
      cell.clear();
    } else if (ch != ' ') {
      cell += ch;
    }
  }
  return out;
}

Grid read_cube(const h5::File& file, const std::string& name, double box, int expect_n,
               const std::string& truth_name) {
  const h5::Dataset d = file.root().open_dataset(name);
  const auto shape = d.shape();
  if (shape.size() != 3 || shape[0] != shape[1] || shape[1] != shape[2])
    throw Error(file.path(), "/" + name + " is not a cubic [N,N,N] grid");
  const int n = int(shape[0]);
  if (expect_n > 0 && n != expect_n)
    throw Error(file.path(), "/" + name + " is " + std::to_string(n) + "^3 but /" + truth_name +
                                 " is " + std::to_string(expect_n) +
                                 "^3: a reconstruction whose grid differs from its truth");
  Grid g(n, box);
  d.read(g.values.data());
  for (double v : g.values)
    if (!std::isfinite(v)) throw Error(file.path(), "/" + name + " holds a non-finite value");
  return g;
}

Result read_result(const std::string& path) {
  const h5::File f = h5::File::open(path);
  Result r;
  r.path = path;
  r.box = f.root().read_attribute<double>("box_size");
  if (!(r.box > 0)) throw Error(path, "box_size must be positive");
  r.redshift = f.root().has_attribute("redshift") ? f.root().read_attribute<double>("redshift") : 0;
  if (f.root().has_attribute("checkpoint"))
    r.checkpoint = f.root().read_attribute_string("checkpoint");
  if (!f.root().has("truth"))
    throw Error(path, "has no /truth: the reconstruction report compares with a known truth");
  r.truth = read_cube(f, "truth", r.box, 0, "truth");
  r.n = r.truth.n;
  r.data = read_cube(f, "data", r.box, r.n, "truth");
  r.mask = read_cube(f, "mask", r.box, r.n, "truth");
  r.sigma = read_cube(f, "noise_sigma", r.box, r.n, "truth");
  for (const char* name : {"wf", "map", "combined", "posterior_mean"}) {
    if (!f.root().has(name)) {
      if (std::string(name) == "combined" || std::string(name) == "posterior_mean") continue;
      throw Error(path, std::string("has no /") + name);
    }
    r.estimates.push_back({name, read_cube(f, name, r.box, r.n, "truth")});
  }
  if (f.root().has("posterior_std"))
    r.posterior_std = read_cube(f, "posterior_std", r.box, r.n, "truth");
  if (f.root().has("posterior_pk")) {
    const h5::Dataset d = f.root().open_dataset("posterior_pk");
    const auto shape = d.shape();
    r.posterior_columns = split_columns(d.read_attribute_string("columns"));
    if (shape.size() != 2 || shape[1] != r.posterior_columns.size())
      throw Error(path, "/posterior_pk's shape does not match its attribute columns");
    std::vector<double> flat(shape[0] * shape[1]);
    d.read(flat.data());
    r.posterior_table.assign(shape[1], std::vector<double>(shape[0]));
    for (size_t b = 0; b < shape[0]; ++b)
      for (size_t j = 0; j < shape[1]; ++j) r.posterior_table[j][b] = flat[b * shape[1] + j];
  }
  if (f.root().has("combined")) {
    const h5::Dataset c = f.root().open_dataset("combined");
    if (c.has_attribute("k_split_hmpc")) r.k_split = c.read_attribute<double>("k_split_hmpc");
  }
  for (const char* name : {"wf", "map"}) {
    const h5::Dataset d = f.root().open_dataset(name);
    if (d.has_attribute("iterations"))
      r.solver.push_back(
          {std::string(name == std::string("wf") ? "Wiener filter CG" : "MAP L-BFGS") +
               " iterations",
           std::to_string(d.read_attribute<long>("iterations"))});
  }
  const h5::Dataset map = f.root().open_dataset("map");
  if (map.has_attribute("masked_voxels_beyond_training"))
    r.solver.push_back({"MAP masked voxels beyond the training range of y (docs/denoise.md)",
                        std::to_string(map.read_attribute<long>("masked_voxels_beyond_training"))});
  return r;
}

// The numeric leaves of a JSON object ("wf.seconds" = 1.2), for the summary table.
void flatten(const YAML::Node& node, const std::string& prefix,
             std::vector<std::pair<std::string, double>>& out) {
  if (node.IsMap()) {
    for (const auto& kv : node)
      flatten(
          kv.second,
          prefix.empty() ? kv.first.as<std::string>() : prefix + "." + kv.first.as<std::string>(),
          out);
  } else if (node.IsScalar()) {
    try {
      const double v = node.as<double>();
      if (std::isfinite(v)) out.push_back({prefix, v});
    } catch (const YAML::Exception&) {
    }
  }
}

const char* label_of(const std::string& name) {
  if (name == "wf") return "Wiener filter";
  if (name == "map") return "flow MAP";
  if (name == "combined") return "combined";
  if (name == "posterior_mean") return "posterior mean";
  if (name == "truth") return "truth";
  return "data";
}
const char* colour_of(const std::string& name) {
  if (name == "wf") return "C0";
  if (name == "map") return "C3";
  if (name == "combined") return "C2";
  if (name == "posterior_mean") return "C1";
  if (name == "truth") return "k";
  return "0.55";
}
const char* style_of(const std::string& name) {
  if (name == "data") return ":";
  if (name == "map") return "--";
  if (name == "combined") return "-.";
  return "-";
}

const Grid* estimate_of(const Result& r, const std::string& name) {
  for (const auto& e : r.estimates)
    if (e.first == name) return &e.second;
  return nullptr;
}

struct Set {  // mean and std columns of one quantity for each estimator
  std::vector<std::string> names;
  std::vector<Ensemble> parts;
  std::vector<std::vector<double>> store;
  explicit Set(std::vector<std::string> n, const std::string& what) : names(std::move(n)) {
    for (size_t i = 0; i < names.size(); ++i) parts.emplace_back(what);
  }
  Ensemble& operator[](const std::string& name) {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return parts[i];
    throw Error("report", "internal: no estimator " + name);
  }
  // k, then name_mean, name_std for each.
  std::vector<CsvColumn> columns() {
    store.clear();
    store.reserve(2 * names.size());
    std::vector<CsvColumn> c = {{"k", &parts[0].x()}};
    for (size_t i = 0; i < names.size(); ++i) {
      store.push_back(parts[i].mean());
      store.push_back(parts[i].std());
    }
    for (size_t i = 0; i < names.size(); ++i) {
      c.push_back({names[i] + "_mean", &store[2 * i]});
      c.push_back({names[i] + "_std", &store[2 * i + 1]});
    }
    return c;
  }
  // `legend` maps a name to its legend entry.
  template <typename Legend>
  std::vector<Series> series(const std::string& csv, const Legend& legend) const {
    std::vector<Series> s;
    for (const std::string& n : names)
      s.push_back({csv, "k", n + "_mean", n + "_std", legend(n), style_of(n), colour_of(n)});
    return s;
  }
};

double band_mean(const std::vector<double>& k, const std::vector<double>& v, double lo, double hi) {
  double sum = 0, count = 0;
  for (size_t i = 0; i < k.size(); ++i)
    if (k[i] >= lo && k[i] <= hi) sum += v[i], count += 1;
  return count > 0 ? sum / count : std::nan("");
}

}  // namespace

void write_reconstruction_report(const ReconstructionReport& c) {
  if (c.results.empty()) throw Error("report.inputs.results", "no denoise results given");
  progress("reconstruction report of " + std::to_string(c.results.size()) + " result(s) into " +
           c.out);
  std::vector<Result> results;
  for (const std::string& path : c.results) {
    results.push_back(read_result(path));
    const Result& r = results.back();
    const Result& first = results.front();
    if (r.n != first.n || r.box != first.box)
      throw Error(path, "grid " + std::to_string(r.n) + "^3 in a " + format_number(r.box) +
                            " Mpc/h box differs from " + std::to_string(first.n) + "^3 in " +
                            format_number(first.box) + " Mpc/h of " + first.path +
                            ": its P(k) is of another box");
    // Means over fields reconstructed with different flows would describe neither.
    if (r.checkpoint != first.checkpoint)
      throw Error(path, "was made with the flow " +
                            (r.checkpoint.empty() ? "(unknown)" : r.checkpoint) + " but " +
                            first.path + " with " +
                            (first.checkpoint.empty() ? "(unknown)" : first.checkpoint) +
                            ": one report per model");
    // The posterior mean may come with some fields only (samples are costly): it is averaged
    // over the fields that have it. The other estimates must match.
    if ((estimate_of(r, "combined") != nullptr) != (estimate_of(first, "combined") != nullptr))
      throw Error(path, "holds other estimates than " + first.path);
  }
  const Result& first = results.front();
  const int n = first.n;
  const double box = first.box;
  const double k_nyquist = std::numbers::pi * n / box;
  std::vector<std::string> est;
  std::vector<std::vector<size_t>> fields_of;  // per estimate: the fields that hold it
  for (const char* name : {"wf", "map", "combined", "posterior_mean"}) {
    std::vector<size_t> have;
    for (size_t f = 0; f < results.size(); ++f)
      if (estimate_of(results[f], name)) have.push_back(f);
    if (have.empty()) continue;
    est.push_back(name);
    fields_of.push_back(have);
  }
  // "posterior mean (2 of 8 fields)" when an estimate is not in every field.
  const auto legend = [&](const std::string& name) {
    std::string label = label_of(name);
    for (size_t e = 0; e < est.size(); ++e)
      if (est[e] == name && fields_of[e].size() < results.size())
        label += " (" + std::to_string(fields_of[e].size()) + " of " +
                 std::to_string(results.size()) + " fields)";
    return label;
  };

  ReportWriter w(c.out, "fieldflow reconstruction report");
  w.settings(c.settings_yaml);
  w.note(std::to_string(results.size()) + " reconstruction(s) of " + std::to_string(n) +
         "³ fields in a " + format_number(box) + " Mpc/h box, from " + first.path +
         (results.size() > 1 ? " and others" : "") +
         ". Curves are means over the fields, bands ±1σ over fields (none for a single field)." +
         (first.checkpoint.empty()
              ? std::string()
              : " Every flow estimate here was made with the flow " + first.checkpoint + "."));

  PowerSpectrumOptions po;
  po.mas = c.stats.mas;
  po.kbin_width = c.stats.kbin;
  std::vector<std::string> pk_names = {"truth", "data"};
  pk_names.insert(pk_names.end(), est.begin(), est.end());
  Set pk(pk_names, "P(k)"), rk(est, "r(k)"), transfer(est, "transfer"), residual(est, "P(k)");
  Set residual_rel(est, "P(k)");
  // Per estimate, one value per field that holds it (fields_of): the MSE over all voxels, the
  // observed and the masked ones; and over k_N/2…k_N the mean r, residual power and T.
  std::vector<std::vector<double>> mse_all(est.size()), mse_obs(est.size()), mse_mask(est.size());
  std::vector<std::vector<double>> r_high(est.size()), residual_high(est.size()),
      transfer_all(est.size());
  double noise_pk = 0;
  double pdf_lo = 0, pdf_hi = 0;
  {
    std::vector<const std::vector<double>*> all;
    for (const Result& r : results) {
      all.push_back(&r.truth.values);
      for (const auto& e : r.estimates) all.push_back(&e.second.values);
    }
    pdf_lo = percentile(all, 0.05);
    pdf_hi = percentile(all, 99.95);
  }
  PdfBinning bins{pdf_lo, pdf_hi > pdf_lo ? pdf_hi : pdf_lo + 1.0, c.stats.pdf_bins, false};
  std::vector<std::string> pdf_names = {"truth"};
  pdf_names.insert(pdf_names.end(), est.begin(), est.end());
  std::vector<Ensemble> pdf(pdf_names.size(), Ensemble("PDF"));
  std::vector<double> field_index;
  // Each field's r(k) per estimate, kept for the posterior figure of one field.
  std::vector<double> r_k;
  std::vector<std::map<std::string, std::vector<double>>> r_of_field(results.size());

  for (size_t f = 0; f < results.size(); ++f) {
    const Result& r = results[f];
    progress("field " + std::to_string(f + 1) + "/" + std::to_string(results.size()) + ": " +
             r.path);
    field_index.push_back(double(f));
    const PowerSpectrum pt = measure_power_spectrum(r.truth, po);
    pk["truth"].add(pt.k, pt.pk, r.path);
    const PowerSpectrum pd = measure_power_spectrum(r.data, po);
    pk["data"].add(pd.k, pd.pk, r.path);
    double sigma2 = 0, observed = 0;
    for (size_t i = 0; i < r.mask.size(); ++i)
      if (r.mask.values[i] > 0.5) sigma2 += r.sigma.values[i] * r.sigma.values[i], observed += 1;
    if (observed > 0) noise_pk += sigma2 / observed * std::pow(box / n, 3) / double(results.size());
    {
      const OnePointPdf p = one_point_pdf(std::span<const double>(r.truth.values), bins);
      pdf[0].add(p.x, p.density, r.path);
    }
    for (size_t e = 0; e < est.size(); ++e) {
      const std::string& name = est[e];
      const Grid* estimate = estimate_of(r, name);
      if (!estimate) continue;
      const Grid& g = *estimate;
      const CrossSpectrum x = measure_cross_spectrum(g, r.truth, po);
      pk[name].add(x.k, x.pk1, r.path);
      rk[name].add(x.k, x.r, r.path);
      r_k = x.k;
      r_of_field[f][name] = x.r;
      std::vector<double> t(x.k.size());
      for (size_t b = 0; b < t.size(); ++b) t[b] = std::sqrt(x.pk1[b] / x.pk2[b]);
      transfer[name].add(x.k, t, r.path);
      r_high[e].push_back(band_mean(x.k, x.r, k_nyquist / 2, k_nyquist));
      transfer_all[e].push_back(band_mean(x.k, t, 0, k_nyquist));
      Grid diff = g;
      double all = 0, obs = 0, mask = 0, n_obs = 0;
      for (size_t i = 0; i < diff.size(); ++i) {
        diff.values[i] -= r.truth.values[i];
        const double d2 = diff.values[i] * diff.values[i];
        all += d2;
        if (r.mask.values[i] > 0.5)
          obs += d2, n_obs += 1;
        else
          mask += d2;
      }
      const double total = double(diff.size());
      mse_all[e].push_back(all / total);
      mse_obs[e].push_back(n_obs > 0 ? obs / n_obs : 0.0);
      mse_mask[e].push_back(total - n_obs > 0 ? mask / (total - n_obs) : 0.0);
      const PowerSpectrum pr = measure_power_spectrum(diff, po);
      residual[name].add(pr.k, pr.pk, r.path);
      residual_high[e].push_back(band_mean(pr.k, pr.pk, k_nyquist / 2, k_nyquist));
      std::vector<double> rel(pr.pk.size());
      for (size_t b = 0; b < rel.size(); ++b) rel[b] = pr.pk[b] / pt.pk[b];
      residual_rel[name].add(pr.k, rel, r.path);
      const OnePointPdf p = one_point_pdf(std::span<const double>(g.values), bins);
      pdf[e + 1].add(p.x, p.density, r.path);
    }
  }

  // ---- P(k) ----
  w.csv("pk.csv", pk.columns());
  std::vector<Line> noise_line;
  if (noise_pk > 0) noise_line.push_back({"noise σ² (L/N)³", noise_pk});
  w.figure({"pk",
            "Power spectra of every field",
            "The Wiener filter and the MAP lose power where the noise (dotted line) exceeds the "
            "signal; the closer an estimate stays to the truth at high k, the more small-scale "
            "structure it recovered.",
            {{kKLabel,
              "P(k) [(Mpc/h)³]",
              true,
              true,
              pk.series("pk.csv", legend),
              noise_line,
              {{"k_N/2", k_nyquist / 2}},
              3.0}},
            "",
            {"pk.csv"}});
  // ---- r(k) ----
  w.csv("rk.csv", rk.columns());
  std::vector<Line> split;
  if (first.k_split > 0) split.push_back({"k_split", first.k_split});
  split.push_back({"k_N/2", k_nyquist / 2});
  w.figure(
      {"rk",
       "Cross-correlation with the truth",
       "r(k) = 1 is a perfect reconstruction; where the flow MAP's curve lies above the Wiener "
       "filter's, the learned prior recovered modes the Gaussian prior could not.",
       {{kKLabel, "r(k) with the truth", true, false, rk.series("rk.csv", legend), {}, split, 3.0}},
       "",
       {"rk.csv"}});
  // ---- transfer ----
  w.csv("transfer.csv", transfer.columns());
  w.figure(
      {"transfer",
       "Transfer functions",
       "√(P_rec/P_true) below 1 means the estimate lost amplitude (the Wiener filter by design, "
       "the MAP of a skewed posterior also); above 1 it added spurious power.",
       {{kKLabel,
         "T(k) = √(P_rec / P_truth)",
         true,
         false,
         transfer.series("transfer.csv", legend),
         {{"", 1.0}},
         split,
         3.0}},
       "",
       {"transfer.csv"}});
  // ---- residual power ----
  w.csv("residual.csv", residual.columns());
  w.csv("residual_relative.csv", residual_rel.columns());
  w.figure({"residual",
            "Residual power",
            "Power of the error (estimate − truth): lower is better; the bottom panel divides by "
            "the truth's P(k), so 1 means the estimate is no better than zero at that scale.",
            {{"",
              "P_res(k) [(Mpc/h)³]",
              true,
              true,
              residual.series("residual.csv", legend),
              noise_line,
              {},
              3.0},
             {kKLabel,
              "P_res / P_truth",
              true,
              false,
              residual_rel.series("residual_relative.csv", legend),
              {{"", 1.0}},
              split,
              1.8}},
            "",
            {"residual.csv", "residual_relative.csv"}});
  // ---- PDFs ----
  {
    std::vector<std::vector<double>> store;
    store.reserve(2 * pdf.size());
    std::vector<CsvColumn> cols = {{"delta", &pdf[0].x()}};
    for (size_t i = 0; i < pdf.size(); ++i) {
      store.push_back(pdf[i].mean());
      store.push_back(pdf[i].std());
    }
    std::vector<Series> series;
    for (size_t i = 0; i < pdf.size(); ++i) {
      cols.push_back({pdf_names[i] + "_mean", &store[2 * i]});
      cols.push_back({pdf_names[i] + "_std", &store[2 * i + 1]});
      series.push_back({"pdf.csv", "delta", pdf_names[i] + "_mean", pdf_names[i] + "_std",
                        legend(pdf_names[i]), style_of(pdf_names[i]), colour_of(pdf_names[i])});
    }
    w.csv("pdf.csv", cols);
    w.figure({"pdf",
              "One-point PDFs",
              "The truth's PDF is skewed (long tail to high δ, sharp cut at δ = −1); the Wiener "
              "filter's is Gaussian and narrower, and a good MAP follows the truth's skewness.",
              {{"δ", "dP/dδ", false, true, series, {}, {}, 3.0}},
              "",
              {"pdf.csv"}});
  }
  // ---- slices of the first field ----
  {
    const Result& r = first;
    std::vector<Image> images;
    std::vector<double> truth = slice_of(r.truth, c.stats.slice);
    std::vector<double> data = slice_of(r.data, c.stats.slice);
    const std::vector<double> mask = slice_of(r.mask, c.stats.slice);
    for (size_t i = 0; i < data.size(); ++i)
      if (mask[i] < 0.5) data[i] = std::nan("");  // shown grey
    images.push_back({"truth", "field", truth});
    images.push_back({"data (masked: grey)", "field", data});
    std::vector<std::vector<double>> res;
    for (const auto& e : r.estimates) {
      images.push_back({label_of(e.first), "field", slice_of(e.second, c.stats.slice)});
      std::vector<double> d = images.back().values;
      for (size_t i = 0; i < d.size(); ++i) d[i] -= truth[i];
      res.push_back(d);
    }
    for (size_t e = 0; e < res.size(); ++e)
      images.push_back(
          {std::string(label_of(r.estimates[e].first)) + " − truth", "residual", res[e]});
    const double lo = percentile({&truth}, 0.5), hi = percentile({&truth}, 99.5);
    std::vector<const std::vector<double>*> rp;
    for (const auto& d : res) rp.push_back(&d);
    const double rmax = std::max(std::abs(percentile(rp, 0.5)), std::abs(percentile(rp, 99.5)));
    std::vector<ImageScale> scales = {{"field", "δ", "viridis", lo, hi},
                                      {"residual", "estimate − truth", "RdBu_r", -rmax, rmax}};
    if (r.posterior_std.n > 0) {
      images.push_back({"posterior σ", "std", slice_of(r.posterior_std, c.stats.slice)});
      const double smax = percentile({&images.back().values}, 99.5);
      scales.push_back({"std", "posterior σ of δ", "magma", 0.0, smax > 0 ? smax : 1.0});
    }
    w.images("slices.json", n, box, "δ", scales, images, int(2 + r.estimates.size()));
    w.figure(
        {"slices",
         "Slices of " + r.path,
         "Fields share one colour scale and residuals another: look for structure in the masked "
         "regions (grey in the data) and for residuals that trace the filaments" +
             std::string(r.posterior_std.n > 0
                             ? "; the posterior σ shows where the data leave δ uncertain "
                               "(masked cubes, and dense peaks, where a log-normal-like field "
                               "varies most)."
                             : "."),
         {},
         "slices.json",
         {"slices.json"}});
  }
  // ---- posterior samples: the P(k) and r(k) intervals of the first field that has them ----
  for (size_t f = 0; f < results.size(); ++f) {
    const Result& r = results[f];
    if (r.posterior_table.empty()) continue;
    const auto column = [&](const std::string& name) -> const std::vector<double>* {
      for (size_t j = 0; j < r.posterior_columns.size(); ++j)
        if (r.posterior_columns[j] == name) return &r.posterior_table[j];
      return nullptr;
    };
    const std::vector<double>* k = column("k_hmpc");
    if (!k) throw Error(r.path, "/posterior_pk has no k_hmpc column");
    // An interval [lo, hi] as its centre and half-width: the plot fills it ("band" series).
    std::vector<std::vector<double>> store;
    store.reserve(16);
    std::vector<CsvColumn> cols = {{"k", k}};
    std::vector<Series> pk_series, r_series;
    const auto interval = [&](const std::string& quantity, const char* lo, const char* hi,
                              const std::string& label, std::vector<Series>& series) {
      const std::vector<double>* a = column("posterior_" + quantity + "_" + lo);
      const std::vector<double>* b = column("posterior_" + quantity + "_" + hi);
      if (!a || !b) return;
      std::vector<double> mid(k->size()), half(k->size());
      for (size_t i = 0; i < k->size(); ++i)
        mid[i] = 0.5 * ((*a)[i] + (*b)[i]), half[i] = 0.5 * ((*b)[i] - (*a)[i]);
      const std::string name = quantity + "_" + lo + "_" + hi;
      store.push_back(std::move(mid));
      cols.push_back({name + "_mid", &store.back()});
      store.push_back(std::move(half));
      cols.push_back({name + "_half", &store.back()});
      series.push_back({"posterior.csv", "k", name + "_mid", name + "_half", label, "band", "C1"});
    };
    interval("pk", "q025", "q975", "samples' 95% interval", pk_series);
    interval("pk", "q16", "q84", "samples' 68% interval", pk_series);
    interval("r", "q025", "q975", "samples' 95% interval", r_series);
    interval("r", "q16", "q84", "samples' 68% interval", r_series);
    const auto line = [&](const char* name, const char* label, const char* style,
                          const char* colour, std::vector<Series>& series) {
      if (const std::vector<double>* v = column(name)) {
        cols.push_back({name, v});
        series.push_back({"posterior.csv", "k", name, "", label, style, colour});
      }
    };
    line("pk_truth", "truth", "-", "k", pk_series);
    line("pk_of_mean", "posterior mean", "-", "C1", pk_series);
    line("r_of_mean", "posterior mean", "-", "C1", r_series);
    w.csv("posterior.csv", cols);
    // The Wiener filter's and the MAP's r(k) on this field, in the report's own bins.
    std::vector<CsvColumn> other_cols = {{"k", &r_k}};
    for (const char* name : {"wf", "map"}) {
      other_cols.push_back({std::string(name) + "_r", &r_of_field[f].at(name)});
      r_series.push_back({"posterior_field_r.csv", "k", std::string(name) + "_r", "",
                          label_of(name), style_of(name), colour_of(name)});
    }
    w.csv("posterior_field_r.csv", other_cols);
    w.figure({"posterior",
              "Posterior samples of " + r.path,
              "The truth's P(k) (black) should lie inside the samples' 95% interval in most k "
              "bins (calibration), and the posterior mean's r(k) should sit at or above the "
              "Wiener filter's in every bin.",
              {{"", "P(k) [(Mpc/h)³]", true, true, pk_series, noise_line, {}, 3.0},
               {kKLabel, "r(k) with the truth", true, false, r_series, {}, split, 2.4}},
              "",
              {"posterior.csv", "posterior_field_r.csv"}});
    break;
  }
  // ---- summary table ----
  {
    // per_field.csv: the estimates that every field holds (a column per field).
    std::vector<CsvColumn> cols = {{"field", &field_index}};
    std::vector<std::string> names;
    names.reserve(3 * est.size());
    for (size_t e = 0; e < est.size(); ++e) {
      if (fields_of[e].size() < results.size()) continue;
      names.push_back(est[e] + "_mse");
      cols.push_back({names.back(), &mse_all[e]});
      names.push_back(est[e] + "_mse_observed");
      cols.push_back({names.back(), &mse_obs[e]});
      names.push_back(est[e] + "_mse_masked");
      cols.push_back({names.back(), &mse_mask[e]});
    }
    w.csv("per_field.csv", cols);
    auto ms = [](const std::vector<double>& v) {  // one field: its value, no "± 0"
      Ensemble e("value");
      for (double x : v) e.add({0.0}, {x}, "field");
      return v.size() > 1 ? format_mean_std(e.mean()[0], e.std()[0]) : format_value(e.mean()[0]);
    };
    auto mean = [](const std::vector<double>& v) {
      double sum = 0;
      for (double x : v) sum += x;
      return sum / double(v.size());
    };
    std::vector<std::vector<std::string>> rows;
    for (size_t e = 0; e < est.size(); ++e) {
      // Residual power against the Wiener filter's on the same fields (est[0] is the WF, which
      // every field holds).
      double res = 0, res_wf = 0;
      for (size_t i = 0; i < fields_of[e].size(); ++i) {
        res += residual_high[e][i];
        res_wf += residual_high[0][fields_of[e][i]];
      }
      rows.push_back({legend(est[e]), ms(mse_all[e]), ms(mse_obs[e]), ms(mse_mask[e]),
                      format_value(mean(r_high[e])), format_value(res / res_wf),
                      format_value(mean(transfer_all[e]))});
    }
    w.table({"Summary",
             "Voxel mean squared errors (mean ± 1σ over " + std::to_string(results.size()) +
                 " field(s), or over those that hold the estimate; observed and masked voxels "
                 "apart), and over k_N/2…k_N = " +
                 format_number(k_nyquist / 2) + "…" + format_number(k_nyquist) +
                 " h/Mpc the mean r(k), the residual power relative to the Wiener filter's on the "
                 "same fields (below 1: better) and the mean transfer function up to k_N.",
             {"estimate", "MSE", "MSE observed", "MSE masked", "r (k_N/2…k_N)",
              "P_res / P_res,WF (k_N/2…k_N)", "mean T(k)"},
             rows,
             "per_field.csv"});
  }
  // ---- solver numbers: HDF5 attributes and the JSON summary beside each result ----
  {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> header = {"quantity"};
    std::vector<std::vector<std::pair<std::string, double>>> per;
    for (const Result& r : results) {
      const fs::path p(r.path);
      const fs::path json = p.parent_path() / (p.stem().string() + "_summary.json");
      std::vector<std::pair<std::string, double>> leaves;
      if (fs::exists(json)) {
        YAML::Node node;
        try {
          node = YAML::LoadFile(json.string());
        } catch (const YAML::Exception& e) {
          throw Error(json.string(), std::string("not valid JSON: ") + e.what());
        }
        flatten(node, "", leaves);
      }
      for (const auto& s : r.solver) leaves.push_back({s.first, std::stod(s.second)});
      if (r.k_split > 0) leaves.push_back({"combined: k_split [h/Mpc]", r.k_split});
      per.push_back(leaves);
    }
    // Every key in order of first appearance, mean ± std over the fields that have it (the
    // posterior's numbers may come with some fields only: "(2 of 8 fields)").
    std::vector<std::string> keys;
    for (const auto& leaves : per)
      for (const auto& leaf : leaves)
        if (std::find(keys.begin(), keys.end(), leaf.first) == keys.end())
          keys.push_back(leaf.first);
    for (const std::string& key : keys) {
      Ensemble e("value");
      for (const auto& leaves : per)
        for (const auto& [k2, v2] : leaves)
          if (k2 == key) {
            e.add({0.0}, {v2}, "field");
            break;
          }
      const std::string label = e.count() < per.size()
                                    ? key + " (" + std::to_string(e.count()) + " of " +
                                          std::to_string(per.size()) + " fields)"
                                    : key;
      rows.push_back({label, e.count() > 1 ? format_mean_std(e.mean()[0], e.std()[0])
                                           : format_value(e.mean()[0])});
    }
    if (!rows.empty())
      w.table({"Solvers and denoise's own numbers",
               "Read from the result files' attributes and the *_summary.json beside them (mean ± "
               "1σ over fields): solver iterations and residuals, seconds, the split wavenumber of "
               "the combined estimate.",
               {"quantity", results.size() > 1 ? "mean ± 1σ" : "value"},
               rows,
               ""});
  }
  progress("plotting");
  w.finish(c.plot);
  progress("wrote " + w.path("index.html"));
}

}  // namespace ff::report
