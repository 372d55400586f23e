// The reconstruction report: Wiener filter, flow MAP and the combined estimate against the truth
// (docs/report.md), from the HDF5 files of `fieldflow denoise`.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
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
  int n = 0;
  double box = 0, redshift = 0;
  Grid truth, data, mask, sigma;
  std::vector<std::pair<std::string, Grid>> estimates;  // wf, map, combined (if present)
  double k_split = 0;
  std::vector<std::pair<std::string, std::string>> solver;  // name, value
};

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
  if (!f.root().has("truth"))
    throw Error(path, "has no /truth: the reconstruction report compares with a known truth");
  r.truth = read_cube(f, "truth", r.box, 0, "truth");
  r.n = r.truth.n;
  r.data = read_cube(f, "data", r.box, r.n, "truth");
  r.mask = read_cube(f, "mask", r.box, r.n, "truth");
  r.sigma = read_cube(f, "noise_sigma", r.box, r.n, "truth");
  for (const char* name : {"wf", "map", "combined"}) {
    if (!f.root().has(name)) {
      if (std::string(name) == "combined") continue;
      throw Error(path, std::string("has no /") + name);
    }
    r.estimates.push_back({name, read_cube(f, name, r.box, r.n, "truth")});
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
  if (name == "truth") return "truth";
  return "data";
}
const char* colour_of(const std::string& name) {
  if (name == "wf") return "C0";
  if (name == "map") return "C3";
  if (name == "combined") return "C2";
  if (name == "truth") return "k";
  return "0.55";
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
  std::vector<Series> series(const std::string& csv, bool with_band = true) const {
    std::vector<Series> s;
    for (const std::string& n : names)
      s.push_back({csv, "k", n + "_mean", with_band ? n + "_std" : "", label_of(n),
                   n == "truth"
                       ? "-"
                       : (n == "data" ? ":" : (n == "map" ? "--" : (n == "combined" ? "-." : "-"))),
                   colour_of(n)});
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
    if (r.estimates.size() != first.estimates.size())
      throw Error(path, "holds other estimates than " + first.path);
  }
  const Result& first = results.front();
  const int n = first.n;
  const double box = first.box;
  const double k_nyquist = std::numbers::pi * n / box;
  std::vector<std::string> est;
  for (const auto& e : first.estimates) est.push_back(e.first);

  ReportWriter w(c.out, "fieldflow reconstruction report");
  w.settings(c.settings_yaml);
  w.note(std::to_string(results.size()) + " reconstruction(s) of " + std::to_string(n) +
         "³ fields in a " + format_number(box) + " Mpc/h box, from " + first.path +
         (results.size() > 1 ? " and others" : "") +
         ". Curves are means over the fields, bands ±1σ over fields (none for a single field).");

  PowerSpectrumOptions po;
  po.mas = c.stats.mas;
  po.kbin_width = c.stats.kbin;
  std::vector<std::string> pk_names = {"truth", "data"};
  pk_names.insert(pk_names.end(), est.begin(), est.end());
  Set pk(pk_names, "P(k)"), rk(est, "r(k)"), transfer(est, "transfer"), residual(est, "P(k)");
  Set residual_rel(est, "P(k)");
  // MSE per field: all voxels, observed ones, masked ones.
  std::vector<std::vector<double>> mse_all(est.size()), mse_obs(est.size()), mse_mask(est.size());
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
    for (size_t e = 0; e < r.estimates.size(); ++e) {
      const std::string& name = r.estimates[e].first;
      const Grid& g = r.estimates[e].second;
      const CrossSpectrum x = measure_cross_spectrum(g, r.truth, po);
      pk[name].add(x.k, x.pk1, r.path);
      rk[name].add(x.k, x.r, r.path);
      std::vector<double> t(x.k.size());
      for (size_t b = 0; b < t.size(); ++b) t[b] = std::sqrt(x.pk1[b] / x.pk2[b]);
      transfer[name].add(x.k, t, r.path);
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
              pk.series("pk.csv"),
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
       {{kKLabel, "r(k) with the truth", true, false, rk.series("rk.csv"), {}, split, 3.0}},
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
         transfer.series("transfer.csv"),
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
              residual.series("residual.csv"),
              noise_line,
              {},
              3.0},
             {kKLabel,
              "P_res / P_truth",
              true,
              false,
              residual_rel.series("residual_relative.csv"),
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
                        label_of(pdf_names[i]),
                        pdf_names[i] == "map" ? "--" : (pdf_names[i] == "combined" ? "-." : "-"),
                        colour_of(pdf_names[i])});
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
    w.images("slices.json", n, box, "δ",
             {{"field", "δ", "viridis", lo, hi},
              {"residual", "estimate − truth", "RdBu_r", -rmax, rmax}},
             images, int(2 + r.estimates.size()));
    w.figure(
        {"slices",
         "Slices of " + r.path,
         "Fields share one colour scale and residuals another: look for structure in the masked "
         "regions (grey in the data) and for residuals that trace the filaments.",
         {},
         "slices.json",
         {"slices.json"}});
  }
  // ---- summary table ----
  {
    std::vector<std::vector<double>> per_field_cols;
    std::vector<CsvColumn> cols = {{"field", &field_index}};
    std::vector<std::string> names;
    for (size_t e = 0; e < est.size(); ++e) {
      names.push_back(est[e] + "_mse");
      names.push_back(est[e] + "_mse_observed");
      names.push_back(est[e] + "_mse_masked");
    }
    for (size_t e = 0; e < est.size(); ++e) {
      cols.push_back({names[3 * e], &mse_all[e]});
      cols.push_back({names[3 * e + 1], &mse_obs[e]});
      cols.push_back({names[3 * e + 2], &mse_mask[e]});
    }
    w.csv("per_field.csv", cols);
    auto ms = [](const std::vector<double>& v) {
      Ensemble e("value");
      for (double x : v) e.add({0.0}, {x}, "field");
      return format_mean_std(e.mean()[0], e.std()[0]);
    };
    std::vector<std::vector<std::string>> rows;
    for (size_t e = 0; e < est.size(); ++e) {
      Ensemble& re = rk[est[e]];
      Ensemble& rr = residual[est[e]];
      Ensemble& rw = residual["wf"];
      Ensemble& tt = transfer[est[e]];
      rows.push_back({label_of(est[e]), ms(mse_all[e]), ms(mse_obs[e]), ms(mse_mask[e]),
                      format_value(band_mean(re.x(), re.mean(), k_nyquist / 2, k_nyquist)),
                      format_value(band_mean(rr.x(), rr.mean(), k_nyquist / 2, k_nyquist) /
                                   band_mean(rw.x(), rw.mean(), k_nyquist / 2, k_nyquist)),
                      format_value(band_mean(tt.x(), tt.mean(), 0, k_nyquist))});
    }
    w.table({"Summary",
             "Voxel mean squared errors (mean ± 1σ over " + std::to_string(results.size()) +
                 " field(s); observed and masked voxels apart), and over k_N/2…k_N = " +
                 format_number(k_nyquist / 2) + "…" + format_number(k_nyquist) +
                 " h/Mpc the mean r(k), the residual power relative to the Wiener filter's "
                 "(below 1: better) and the mean transfer function up to k_N.",
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
    // Keys present for every field, in the first field's order: mean ± std over fields.
    for (const auto& [key, value] : per[0]) {
      std::vector<double> v;
      for (const auto& leaves : per)
        for (const auto& [k2, v2] : leaves)
          if (k2 == key) {
            v.push_back(v2);
            break;
          }
      if (v.size() != per.size()) continue;
      Ensemble e("value");
      for (double x : v) e.add({0.0}, {x}, "field");
      rows.push_back({key, results.size() > 1 ? format_mean_std(e.mean()[0], e.std()[0])
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
