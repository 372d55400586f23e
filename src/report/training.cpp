// The training report: flow samples against real fields (docs/report.md).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numbers>
#include <sstream>

#include "ensemble.hpp"
#include "fieldflow/core/error.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/flow/base.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/fields.hpp"
#include "fieldflow/io/csv.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/report/document.hpp"
#include "fieldflow/report/report.hpp"
#include "fieldflow/stats/bispectrum.hpp"
#include "fieldflow/stats/pdf.hpp"
#include "fieldflow/stats/power_spectrum.hpp"

namespace ff::report {

namespace fs = std::filesystem;

namespace {

const char* kPkLabel = "P(k) [(Mpc/h)³]";
const char* kKLabel = "k [h/Mpc]";

std::string resolve_checkpoint(const TrainingReport& r) {
  if (!r.checkpoint.empty()) return r.checkpoint;
  const fs::path best = fs::path(r.run_dir) / "best.h5";
  if (fs::exists(best)) return best.string();
  return (fs::path(r.run_dir) / "checkpoint.h5").string();
}

// Up to max_fields fields of the flow's grid, all in one box: whole files (index -1) or members.
std::vector<GridF> read_fields(const std::vector<FieldRef>& refs, int max_fields, int n,
                               const std::string& checkpoint) {
  std::vector<GridF> fields;
  std::string first;
  double box = 0.0;
  for (const FieldRef& ref : refs) {
    const std::string& path = ref.path;
    const GridFileInfo info = inspect_grid_file(path);
    if (info.n != n)
      throw Error(path, "grid of " + std::to_string(info.n) + "^3, the flow " + checkpoint +
                            " models " + std::to_string(n) + "^3");
    if (first.empty()) {
      first = path;
      box = info.box_size_mpch;
    } else if (info.box_size_mpch != box) {
      throw Error(path, "box of " + format_number(info.box_size_mpch) + " Mpc/h differs from the " +
                            format_number(box) + " Mpc/h of " + first +
                            ": its P(k) is of another box");
    }
    if (ref.index >= 0 && int(fields.size()) < max_fields) {
      fields.push_back(read_grid_as<float>(path, ref.index));
      continue;
    }
    for (int i = 0; i < info.count && int(fields.size()) < max_fields; ++i)
      fields.push_back(read_grid_as<float>(path, i));
  }
  return fields;
}

// Whole files as members with index -1.
std::vector<FieldRef> whole_files(const std::vector<std::string>& paths) {
  std::vector<FieldRef> refs;
  for (const std::string& p : paths) refs.push_back({p, -1});
  return refs;
}

struct Columns {
  std::vector<double> mean, std;
};
Columns stats_of(const Ensemble& e) {
  return {e.mean(), e.std()};
}

}  // namespace

void write_training_report(const TrainingReport& r) {
  const std::string checkpoint = resolve_checkpoint(r);
  progress("training report of " + checkpoint + " into " + r.out);
  FlowCheckpoint loaded = load_flow_checkpoint(checkpoint);
  loaded.require_initialized();
  const FlowSpec& spec = loaded.flow->spec();
  const int n = spec.grid;
  const std::vector<FieldRef> field_refs =
      r.fields.empty() ? r.field_members : whole_files(r.fields);
  const std::vector<FieldRef> gaussian_refs =
      r.gaussian_fields.empty() ? r.gaussian_members : whole_files({r.gaussian_fields});
  const std::vector<GridF> fields = read_fields(field_refs, r.max_fields, n, checkpoint);
  if (fields.empty()) throw Error("report.inputs.fields", "no fields to compare with");
  const double box = fields[0].box_size_mpch;
  if (std::abs(loaded.data.box_size_mpch - box) > 1e-9 * box)
    throw Error(checkpoint, "the flow was trained on " + format_number(loaded.data.box_size_mpch) +
                                " Mpc/h boxes, the fields are in " + format_number(box) +
                                " Mpc/h: its P(k) is of another box");

  ReportWriter w(r.out, "fieldflow training report: " + checkpoint);
  w.settings(r.settings_yaml);
  w.note(
      "Flow " + checkpoint + " (" + std::to_string(n) + "³ grid, " +
      std::to_string(loaded.flow->parameter_count()) + " parameters, preprocessing " +
      to_string(loaded.preprocessing.transform) + ") against " + std::to_string(fields.size()) +
      " " + r.fields_name + " from " + field_refs[0].path +
      (field_refs.size() > 1 && field_refs.back().path != field_refs[0].path ? " and others" : "") +
      " in a " + format_number(box) + " Mpc/h box; " + std::to_string(r.samples.count) +
      " flow samples at temperature " + format_number(r.samples.temperature) + " (seed " +
      std::to_string(r.samples.seed) +
      "; δ against each sample's own mean density, as `fieldflow sample` by default" +
      (r.samples.mean_tolerance > 0
           ? "; only draws with |mean δ| ≤ " + format_number(r.samples.mean_tolerance) + " kept"
           : std::string()) +
      "). Bands are ±1σ over fields.");

  progress("drawing " + std::to_string(r.samples.count) + " samples");
  ff::SampleSettings drawing;
  drawing.count = r.samples.count;
  drawing.seed = r.samples.seed;
  drawing.temperature = r.samples.temperature;
  drawing.mean_tolerance = r.samples.mean_tolerance;
  const std::vector<GridF> samples = sample_fields(loaded, drawing);

  // ---- P(k) ----
  progress("power spectra");
  PowerSpectrumOptions po;
  po.mas = r.stats.mas;
  po.kbin_width = r.stats.kbin;
  Ensemble pk_fields("P(k)"), pk_samples("P(k)");
  for (size_t i = 0; i < fields.size(); ++i) {
    const PowerSpectrum p = measure_power_spectrum(fields[i], po);
    pk_fields.add(p.k, p.pk, "field " + std::to_string(i));
  }
  for (size_t i = 0; i < samples.size(); ++i) {
    const PowerSpectrum p = measure_power_spectrum(samples[i], po);
    pk_samples.add(p.k, p.pk, "sample " + std::to_string(i));
  }
  const Columns pf = stats_of(pk_fields), ps = stats_of(pk_samples);
  std::vector<double> ratio, ratio_std, one, fields_rel;
  for (size_t i = 0; i < pf.mean.size(); ++i) {
    ratio.push_back(ps.mean[i] / pf.mean[i]);
    ratio_std.push_back(ps.std[i] / pf.mean[i]);
    one.push_back(1.0);
    fields_rel.push_back(pf.std[i] / pf.mean[i]);
  }
  w.csv("pk.csv", {{"k", &pk_fields.x()},
                   {"fields_mean", &pf.mean},
                   {"fields_std", &pf.std},
                   {"samples_mean", &ps.mean},
                   {"samples_std", &ps.std},
                   {"ratio", &ratio},
                   {"ratio_std", &ratio_std},
                   {"one", &one},
                   {"fields_rel_std", &fields_rel}});
  Figure pk_fig{"pk",
                "Power spectrum: flow samples against real fields",
                "The samples' P(k) should lie inside the real fields' band at every k, and the "
                "ratio should stay within a few per cent of 1 below k_N/2 (dashed line).",
                {},
                "",
                {"pk.csv"}};
  Panel main_panel{"",
                   kPkLabel,
                   true,
                   true,
                   {{"pk.csv", "k", "fields_mean", "fields_std", "real fields", "-", "C0"},
                    {"pk.csv", "k", "samples_mean", "samples_std", "flow samples", "--", "C3"}},
                   {},
                   {},
                   3.0};
  if (!r.linear_pk.empty()) {
    const auto table = read_csv_columns(r.linear_pk, {"k", "pk"});
    std::vector<double> k, p;
    const double kmin = pk_fields.x().front(), kmax = pk_fields.x().back();
    for (size_t i = 0; i < table[0].size(); ++i)
      if (table[0][i] >= 0.8 * kmin && table[0][i] <= 1.2 * kmax) {
        k.push_back(table[0][i]);
        p.push_back(table[1][i]);
      }
    if (k.empty())
      throw Error(r.linear_pk, "no k in the fields' range " + format_number(kmin) + "–" +
                                   format_number(kmax) + " h/Mpc: a P(k) of another box?");
    w.csv("pk_linear.csv", {{"k", &k}, {"pk", &p}});
    main_panel.series.push_back({"pk_linear.csv", "k", "pk", "", "linear theory", ":", "0.3"});
    pk_fig.data.push_back("pk_linear.csv");
  }
  const double k_nyquist = std::numbers::pi * n / box;
  Panel ratio_panel{kKLabel,
                    "samples / fields",
                    true,
                    false,
                    {{"pk.csv", "k", "one", "fields_rel_std", "real fields' scatter", "-", "C0"},
                     {"pk.csv", "k", "ratio", "ratio_std", "flow samples", "--", "C3"}},
                    {},
                    {{"k_N/2", k_nyquist / 2}},
                    1.6};
  pk_fig.panels = {main_panel, ratio_panel};
  w.figure(pk_fig);

  // ---- one-point PDF ----
  progress("one-point PDFs");
  // The range of the real fields: sample voxels outside it are counted, not binned.
  double lo = fields[0].values[0], hi = lo;
  for (const GridF& g : fields)
    for (float v : g.values) {
      lo = std::min(lo, double(v));
      hi = std::max(hi, double(v));
    }
  PdfBinning bins;
  bins.bins = r.stats.pdf_bins;
  bins.log_one_plus = lo > -1.0;
  bins.lo = lo;
  bins.hi = hi > lo ? hi : lo + 1.0;
  Ensemble pdf_fields("PDF"), pdf_samples("PDF");
  double samples_outside = 0;
  for (size_t i = 0; i < fields.size(); ++i) {
    const OnePointPdf p = one_point_pdf(std::span<const float>(fields[i].values), bins);
    pdf_fields.add(p.x, p.density, "field " + std::to_string(i));
  }
  for (size_t i = 0; i < samples.size(); ++i) {
    const OnePointPdf p = one_point_pdf(std::span<const float>(samples[i].values), bins);
    pdf_samples.add(p.x, p.density, "sample " + std::to_string(i));
    samples_outside += (p.below + p.above) / double(samples.size());
  }
  const Columns df = stats_of(pdf_fields), ds = stats_of(pdf_samples);
  const std::string x_name = bins.log_one_plus ? "one_plus_delta" : "delta";
  w.csv("pdf.csv", {{x_name, &pdf_fields.x()},
                    {"fields_mean", &df.mean},
                    {"fields_std", &df.std},
                    {"samples_mean", &ds.mean},
                    {"samples_std", &ds.std}});
  w.figure({"pdf",
            "One-point PDF of δ",
            "The samples' PDF should follow the real fields' in the tails as well as the peak: "
            "the log axes show the rare empty and dense cells where flows usually fail.",
            {{bins.log_one_plus ? "1 + δ" : "δ",
              bins.log_one_plus ? "dP / dlog₁₀(1 + δ)" : "dP / dδ",
              bins.log_one_plus,
              true,
              {{"pdf.csv", x_name, "fields_mean", "fields_std", "real fields", "-", "C0"},
               {"pdf.csv", x_name, "samples_mean", "samples_std", "flow samples", "--", "C3"}},
              {},
              {},
              3.0}},
            "",
            {"pdf.csv"}});

  // ---- reduced bispectrum ----
  BispectrumOptions bo;
  bo.mas = r.stats.mas;
  bo.kbin_width = r.stats.kbin;
  progress("bispectra (" + std::to_string(fields.size() + samples.size()) + " fields of " +
           std::to_string(n) + "³)");
  EquilateralBispectrum estimator(n, box, bo);
  Ensemble q_fields("Q(k)"), q_samples("Q(k)");
  const size_t total = fields.size() + samples.size();
  for (size_t i = 0; i < total; ++i) {
    const bool real = i < fields.size();
    const size_t j = real ? i : i - fields.size();
    const Bispectrum b = estimator.measure(real ? fields[j] : samples[j]);
    (real ? q_fields : q_samples).add(b.k, b.qk, (real ? "field " : "sample ") + std::to_string(j));
    if (n >= 64 || (i + 1) % 8 == 0 || i + 1 == total)
      progress("  Q(k) " + std::to_string(i + 1) + "/" + std::to_string(total));
  }
  const Columns qf = stats_of(q_fields), qs = stats_of(q_samples);
  w.csv("bk.csv", {{"k", &q_fields.x()},
                   {"fields_q_mean", &qf.mean},
                   {"fields_q_std", &qf.std},
                   {"samples_q_mean", &qs.mean},
                   {"samples_q_std", &qs.std}});
  w.figure({"bk",
            "Equilateral reduced bispectrum Q(k)",
            "Q(k) measures the non-Gaussian structure that P(k) cannot see: a Gaussian field has "
            "Q = 0, so samples that match P(k) but sit below the real fields here have missed "
            "the filaments and halos.",
            {{kKLabel,
              "Q(k) = B / 3P²",
              true,
              false,
              {{"bk.csv", "k", "fields_q_mean", "fields_q_std", "real fields", "-", "C0"},
               {"bk.csv", "k", "samples_q_mean", "samples_q_std", "flow samples", "--", "C3"}},
              {{"Gaussian field", 0.0}},
              {},
              3.0}},
            "",
            {"bk.csv"}});

  // ---- slices ----
  progress("slices");
  const int shown = std::min<int>(3, int(std::min(fields.size(), samples.size())));
  std::vector<std::vector<double>> raw;
  bool positive = true;
  for (int i = 0; i < shown; ++i) raw.push_back(slice_of(fields[size_t(i)], r.stats.slice));
  for (int i = 0; i < shown; ++i) raw.push_back(slice_of(samples[size_t(i)], r.stats.slice));
  for (const auto& s : raw)
    for (double v : s) positive = positive && v > -1.0;
  for (auto& s : raw)
    for (double& v : s) v = positive ? std::log10(1.0 + v) : v;
  std::vector<const std::vector<double>*> all;
  for (const auto& s : raw) all.push_back(&s);
  const std::string quantity = positive ? "log₁₀(1 + δ)" : "δ";
  std::vector<Image> images;
  for (int i = 0; i < 2 * shown; ++i)
    images.push_back({(i < shown ? "real field " + std::to_string(i)
                                 : "flow sample " + std::to_string(i - shown)),
                      "field", raw[size_t(i)]});
  w.images("slices.json", n, box, quantity,
           {{"field", quantity, "viridis", percentile(all, 0.5), percentile(all, 99.5)}}, images,
           shown);
  w.figure({"slices",
            "Slices: real fields (top) and flow samples (bottom)",
            "On one colour scale, the samples should be indistinguishable from the real fields: "
            "the same contrast, the same sharp filaments and empty voids.",
            {},
            "slices.json",
            {"slices.json"}});

  // ---- loss curves ----
  const std::string log_path = (fs::path(r.run_dir) / "log.csv").string();
  if (fs::exists(log_path)) {
    progress("loss curves from " + log_path);
    const LooseTable log = read_loose_csv(log_path);
    const std::vector<double>* step = log.column("step");
    const std::vector<double>* loss = log.column("loss_bpv");
    if (!step || !loss) throw Error(log_path, "needs the columns step and loss_bpv");
    std::vector<double> s, l, smooth, vs, vl;
    for (size_t i = 0; i < step->size(); ++i)
      if (std::isfinite((*step)[i]) && std::isfinite((*loss)[i])) {
        s.push_back((*step)[i]);
        l.push_back((*loss)[i]);
      }
    if (s.empty()) throw Error(log_path, "no training steps logged");
    const size_t window = std::max<size_t>(1, s.size() / 50);
    for (size_t i = 0; i < s.size(); ++i) {
      const size_t a = i >= window ? i - window + 1 : 0;
      double sum = 0;
      for (size_t j = a; j <= i; ++j) sum += l[j];
      smooth.push_back(sum / double(i - a + 1));
    }
    w.csv("loss_train.csv", {{"step", &s}, {"loss_bpv", &l}, {"loss_bpv_smooth", &smooth}});
    Panel p{"training step", "loss [bits per voxel]", false, false, {}, {}, {}, 3.0};
    if (window > 1) {
      p.series.push_back(
          {"loss_train.csv", "step", "loss_bpv", "", "training (per step)", "-", "0.75"});
      p.series.push_back({"loss_train.csv", "step", "loss_bpv_smooth", "",
                          "training (mean of " + std::to_string(window) + " steps)", "-", "C0"});
    } else {
      p.series.push_back({"loss_train.csv", "step", "loss_bpv", "", "training", "-", "C0"});
    }
    Figure f{"loss",
             "Loss curves",
             "Training and validation loss should fall together; a validation loss that rises "
             "while the training loss falls is overfitting.",
             {},
             "",
             {"loss_train.csv"}};
    if (const std::vector<double>* val = log.column("val_bpv")) {
      for (size_t i = 0; i < step->size(); ++i)
        if (std::isfinite((*step)[i]) && std::isfinite((*val)[i])) {
          vs.push_back((*step)[i]);
          vl.push_back((*val)[i]);
        }
      if (!vs.empty()) {
        w.csv("loss_validation.csv", {{"step", &vs}, {"val_bpv", &vl}});
        p.series.push_back(
            {"loss_validation.csv", "step", "val_bpv", "", "validation", "-o", "C3"});
        f.data.push_back("loss_validation.csv");
      }
    }
    f.panels = {p};
    w.figure(f);
  } else {
    w.note("No loss curves: " + log_path + " does not exist.");
  }

  // ---- NLL table ----
  progress("test log-likelihoods");
  const std::vector<GridF> gauss_source =
      gaussian_refs.empty() ? std::vector<GridF>{}
                            : read_fields(gaussian_refs, r.max_fields, n, checkpoint);
  const std::vector<GridF>& source = gaussian_refs.empty() ? fields : gauss_source;
  if (source[0].box_size_mpch != box)
    throw Error(gaussian_refs[0].path, "box of " + format_number(source[0].box_size_mpch) +
                                           " Mpc/h differs from the fields' " + format_number(box) +
                                           " Mpc/h: its P(k) is of another box");
  // The Gaussian with the same P(k): P measured on the preprocessed fields (what the flow sees).
  Ensemble pk_pre("P(k)");
  for (size_t i = 0; i < source.size(); ++i) {
    GridF y = source[i];
    loaded.preprocessing.apply(y.values.data(), y.size());
    const PowerSpectrum p = measure_power_spectrum(y);
    pk_pre.add(p.k, p.pk, "Gaussian field " + std::to_string(i));
  }
  CorrelatedGaussian gauss = CorrelatedGaussian::from_power(n, box, pk_pre.x(), pk_pre.mean(), 0.0);
  const size_t voxels = size_t(n) * n * n;
  std::vector<double> index, nll_flow, nll_gauss, nll_normal;
  for (size_t i = 0; i < fields.size(); ++i) {
    nll_flow.push_back(nll_bits_per_voxel(field_log_density(loaded, fields[i]), voxels));
    GridF y = fields[i];
    const double log_jacobian = loaded.preprocessing.apply(y.values.data(), y.size());
    std::vector<double> yd(y.values.begin(), y.values.end());
    nll_gauss.push_back(nll_bits_per_voxel(gauss.log_prob(yd.data()) + log_jacobian, voxels));
    double sq = 0;
    for (double v : yd) sq += v * v;
    const double log_normal = -0.5 * sq - 0.5 * double(voxels) * std::log(2 * std::numbers::pi);
    nll_normal.push_back(nll_bits_per_voxel(log_normal + log_jacobian, voxels));
    index.push_back(double(i));
  }
  w.csv("nll.csv", {{"field", &index},
                    {"flow_bpv", &nll_flow},
                    {"gaussian_bpv", &nll_gauss},
                    {"standard_normal_bpv", &nll_normal}});
  auto mean_of = [](const std::vector<double>& v) {
    double m = 0;
    for (double x : v) m += x / double(v.size());
    return m;
  };
  const double gauss_mean = mean_of(nll_gauss);
  auto row = [&](const std::string& name, const std::vector<double>& v) {
    const double m = mean_of(v);
    double ss = 0;
    for (double x : v) ss += (x - m) * (x - m);
    const double se = v.size() > 1 ? std::sqrt(ss / double(v.size() - 1) / double(v.size())) : 0.0;
    return std::vector<std::string>{name, format_mean_std(m, se), format_value(m - gauss_mean)};
  };
  w.table({"Negative log-likelihood of the real fields",
           "Bits per voxel of δ (densities over δ, the preprocessing Jacobian included), mean ± "
           "standard error over " +
               std::to_string(fields.size()) +
               " fields; lower is better. The Gaussian has the P(k) of the preprocessed " +
               (gaussian_refs.empty()
                    ? std::string("fields themselves (an optimistic baseline)")
                    : gaussian_refs[0].path + (gaussian_refs.size() > 1 ? " and others" : "")) +
               ". A useful flow is clearly below the Gaussian.",
           {"model", "NLL [bits/voxel]", "minus Gaussian"},
           {row("flow", nll_flow), row("Gaussian, same P(k)", nll_gauss),
            row("standard normal", nll_normal)},
           "nll.csv"});

  // ---- headline numbers ----
  double worst = 0;
  for (size_t i = 0; i < ratio.size(); ++i)
    if (pk_fields.x()[i] < k_nyquist / 2) worst = std::max(worst, std::abs(ratio[i] - 1.0));
  double q_field = 0, q_sample = 0;
  for (size_t i = 0; i < qf.mean.size(); ++i)
    if (q_fields.x()[i] < k_nyquist / 2) q_field += qf.mean[i], q_sample += qs.mean[i];
  w.table({"Summary",
           "Headline numbers of the figures below.",
           {"quantity", "value"},
           {{"real fields / flow samples",
             std::to_string(fields.size()) + " / " + std::to_string(samples.size())},
            {"max |P_samples / P_fields − 1| for k < k_N/2", format_value(worst)},
            {"Σ Q_samples / Σ Q_fields for k < k_N/2",
             q_field != 0 ? format_value(q_sample / q_field) : "n/a"},
            {"fraction of sample voxels outside the real fields' range of δ",
             format_value(samples_outside)}},
           ""});
  progress("plotting");
  w.finish(r.plot);
  progress("wrote " + w.path("index.html"));
}

bool write_report_after_training(const TrainConfig& config, const TrainSummary& summary) {
  const std::string report_dir = config.train.run_dir + "/report";
  const bool finished =
      !summary.stop_signal && !summary.time_limit && summary.step >= config.train.steps;
  if (!config.train.report || !finished || summary.validation_fields.empty()) return false;
  if (summary.step == summary.first_step && std::filesystem::exists(report_dir + "/index.html"))
    return false;
  TrainingReport r;
  r.run_dir = config.train.run_dir;
  r.field_members = summary.validation_fields;
  r.gaussian_members = summary.training_fields;
  r.fields_name = "validation fields";
  r.out = report_dir;
  r.settings_yaml = config.yaml();
  write_training_report(r);
  return true;
}

}  // namespace ff::report
