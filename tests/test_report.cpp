// report: a training report from a tiny flow run and a reconstruction report from tiny denoise
// results (input files written here in the documented formats) have every figure they list, every
// number table non-empty and finite, and an index.html that headless Chromium loads with no
// missing resource and no console error (screenshots kept in the build folder). Mismatched inputs
// are refused with one line; every report key changes the result.
#include <gtest/gtest.h>
#include <omp.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "error_of.hpp"
#include "fieldflow/core/config.hpp"
#include "fieldflow/core/provenance.hpp"
#include "fieldflow/core/rng.hpp"
#include "fieldflow/core/settings.hpp"
#include "fieldflow/flow/base.hpp"
#include "fieldflow/flow/checkpoint.hpp"
#include "fieldflow/flow/fields.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/io/csv.hpp"
#include "fieldflow/io/grid_file.hpp"
#include "fieldflow/io/hdf5.hpp"
#include "fieldflow/recon/denoise.hpp"
#include "fieldflow/report/report.hpp"
#include "shell.hpp"

using namespace ff;
namespace fs = std::filesystem;

namespace {

// Tiny grids: threads only add start-up cost here (and long barrier waits on a busy machine), for
// the library calls and the commands this test starts alike.
const bool single_threaded = [] {
  ::setenv("OMP_NUM_THREADS", "1", 1);
  omp_set_num_threads(1);
  return true;
}();

// A lognormal field of n^3 with a red spectrum: skewed like the real thing.
GridF lognormal_field(int n, double box, uint64_t seed) {
  std::vector<double> lambda(size_t(n) * n * (n / 2 + 1));
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      for (int c = 0; c <= n / 2; ++c) {
        const double wa = a <= n / 2 ? a : a - n, wb = b <= n / 2 ? b : b - n;
        const double k = std::sqrt(wa * wa + wb * wb + double(c) * c);
        lambda[(size_t(a) * n + b) * (n / 2 + 1) + c] = 0.5 * std::pow(std::max(k, 0.7), -1.2);
      }
  CorrelatedGaussian g(n, lambda);
  std::vector<double> u(size_t(n) * n * n);
  g.sample(u.data(), seed, 0, 1.0);
  double var = 0;
  for (double v : u) var += v * v / double(u.size());
  GridF f(n, box);
  for (size_t i = 0; i < u.size(); ++i) f.values[i] = float(std::exp(u[i] - var / 2) - 1.0);
  return f;
}

// Every CSV in the folder: a header and at least one row, every value finite.
void expect_tables_finite(const fs::path& dir) {
  int tables = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".csv") continue;
    ++tables;
    std::ifstream in(entry.path());
    std::string header, line;
    ASSERT_TRUE(std::getline(in, header)) << entry.path();
    int rows = 0;
    while (std::getline(in, line)) {
      ++rows;
      std::stringstream s(line);
      std::string cell;
      while (std::getline(s, cell, ',')) {
        const double v = std::strtod(cell.c_str(), nullptr);
        EXPECT_TRUE(std::isfinite(v)) << entry.path() << ": " << line;
      }
    }
    EXPECT_GT(rows, 0) << entry.path();
  }
  EXPECT_GT(tables, 3);
}

// Every figure of report.json has its PNG (non-trivial), every file it names exists, every
// src/href of index.html is a file in the folder.
std::vector<std::string> expect_figures(const fs::path& dir) {
  const YAML::Node manifest = YAML::LoadFile((dir / "report.json").string());
  // Provenance: what made the report.
  EXPECT_EQ(manifest["provenance"]["fieldflow_version"].as<std::string>(), fieldflow_version());
  EXPECT_EQ(manifest["provenance"]["git_commit"].as<std::string>(), fieldflow_git_commit());
  std::vector<std::string> names;
  for (const auto& f : manifest["figures"]) {
    const std::string png = f["png"].as<std::string>();
    names.push_back(f["name"].as<std::string>());
    EXPECT_TRUE(fs::exists(dir / png)) << png;
    if (fs::exists(dir / png)) {
      EXPECT_GT(fs::file_size(dir / png), 5000u) << png;
    }
    EXPECT_FALSE(f["caption"].as<std::string>().empty());
    for (const auto& p : f["panels"]) {
      EXPECT_FALSE(p["xlabel"].as<std::string>().empty() && p["ylabel"].as<std::string>().empty());
      for (const auto& s : p["series"]) {
        EXPECT_TRUE(fs::exists(dir / s["csv"].as<std::string>()));
        EXPECT_FALSE(s["label"].as<std::string>().empty());
      }
    }
  }
  const std::string html = read_text(dir / "index.html");
  const std::regex link("(src|href)=\"([^\"]+)\"");
  int links = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), link); it != std::sregex_iterator();
       ++it) {
    const std::string target = (*it)[2];
    EXPECT_EQ(target.find("://"), std::string::npos) << "not self-contained: " << target;
    EXPECT_TRUE(fs::exists(dir / target)) << target;
    ++links;
  }
  EXPECT_GT(links, int(names.size()));
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  return names;
}

// Opens index.html in headless Chromium: it must load with no console message and every file it
// fetched must exist (at --v=1 Chromium logs each file:// load, "FileURLLoader::Start: URL"; a
// missing image itself logs nothing). The screenshot is kept in the build folder.
void expect_chromium_clean(const fs::path& dir, const std::vector<std::string>& figures,
                           const std::string& artifact) {
  const char* chromium = "/usr/bin/chromium";
  if (::access(chromium, X_OK) != 0) GTEST_SKIP() << "chromium is not installed";
  const fs::path shots = fs::path(FIELDFLOW_BINARY).parent_path() / "test_artifacts";
  fs::create_directories(shots);
  const fs::path shot = shots / artifact;
  fs::remove(shot);
  // The whole report folder is kept beside the screenshot, to look at.
  const fs::path kept = shots / fs::path(artifact).stem();
  fs::remove_all(kept);
  fs::copy(dir, kept, fs::copy_options::recursive);
  const fs::path profile = dir.parent_path() / ("chromium-profile-" + artifact);
  const CommandResult c = run_command(
      "timeout 120 " + std::string(chromium) +
      " --headless --disable-gpu --no-sandbox --user-data-dir=" + profile.string() +
      " --window-size=1200,2600 --screenshot=" + shot.string() +
      " --enable-logging=stderr --v=1 file://" + fs::absolute(dir / "index.html").string());
  fs::remove_all(profile);
  EXPECT_EQ(c.status, 0) << c.output.substr(0, 4000);
  EXPECT_TRUE(fs::exists(shot));
  EXPECT_EQ(c.output.find(":CONSOLE"), std::string::npos) << "console message in the log";
  // Chromium's own background fetches fail without a network (gaia, net::ERR_NAME_NOT_RESOLVED);
  // a failed load of the page's files would name a file:// URL.
  const std::regex failed("net::ERR_[A-Z_]+[^\\n]*file://");
  EXPECT_FALSE(std::regex_search(c.output, failed)) << "failed load in the log";
  const std::regex load("FileURLLoader::Start: file://([^\\s]+)");
  std::set<std::string> loaded;
  for (auto it = std::sregex_iterator(c.output.begin(), c.output.end(), load);
       it != std::sregex_iterator(); ++it) {
    const std::string path = (*it)[1];
    EXPECT_TRUE(fs::exists(path)) << "Chromium could not load " << path;
    loaded.insert(fs::path(path).filename().string());
  }
  EXPECT_TRUE(loaded.count("index.html"));
  for (const std::string& f : figures)
    EXPECT_TRUE(loaded.count(f + ".png")) << f << ".png not loaded";
}

struct Workspace {
  fs::path dir;
  Workspace() {
    dir = fs::temp_directory_path() / ("ff_report_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir / "run");
  }
  ~Workspace() { fs::remove_all(dir); }
};

// A tiny "training run": a perturbed 8^3 flow with log1p preprocessing saved as best.h5, a
// log.csv in train's format (val_bpv only on validation steps) and a stack of real fields.
void make_training_run(const fs::path& dir) {
  FlowSpec spec;
  spec.grid = 8;
  spec.levels = {{2, 2, 4, 5}, {2, 0, 3, 0}};
  spec.mixing = MixingKind::orthogonal;
  MultiScaleFlow<float> flow(spec);
  flow.perturb(2, 0.05);
  const Preprocessing prep{PreprocessTransform::log1p, -0.1, 0.45};
  save_flow_checkpoint((dir / "run" / "best.h5").string(), flow, prep, TrainingData{64.0, 0.0});
  std::ostringstream log;
  log << "step,epoch,loss_bpv,grad_norm,lr,fields_per_s,seconds,val_bpv\n";
  for (int s = 1; s <= 60; ++s) {
    log << s << "," << s / 20 << "," << 2.0 + 1.0 / s << ",0.5,0.001,40," << 0.1 * s << ",";
    if (s % 20 == 0) log << 2.1 + 1.0 / s;
    log << "\n";
  }
  atomic_write_text((dir / "run" / "log.csv").string(), log.str());
  std::vector<GridF> fields;
  for (int i = 0; i < 4; ++i) fields.push_back(lognormal_field(8, 64.0, 10 + i));
  write_grid_stack((dir / "test.h5").string(), fields);
  std::vector<GridF> other;
  for (int i = 0; i < 2; ++i) other.push_back(lognormal_field(8, 128.0, 20 + i));
  write_grid_stack((dir / "other_box.h5").string(), other);
  std::vector<GridF> train;
  for (int i = 0; i < 3; ++i) train.push_back(lognormal_field(8, 64.0, 30 + i));
  write_grid_stack((dir / "train.h5").string(), train);
  std::ofstream((dir / "linear.csv")) << "k,pk\n0.05,300\n0.1,200\n0.2,100\n0.4,40\n0.8,10\n";
}

report::TrainingReport training_settings(const fs::path& dir, const std::string& out) {
  report::TrainingReport t;
  t.run_dir = (dir / "run").string();
  t.fields = {(dir / "test.h5").string()};
  t.samples.count = 3;
  t.samples.seed = 5;
  t.out = (dir / out).string();
  t.plot = false;
  return t;
}

void write_cube(h5::Group& root, const std::string& name, const std::vector<float>& v, int n) {
  const hsize_t N = hsize_t(n);
  h5::Dataset d = root.create_dataset(name, h5::ElementType::float32, {N, N, N});
  d.write(v.data());
}

// A denoise result in the format of issue 10 / docs/denoise.md: /truth /data /mask /noise_sigma
// /wf /map /combined (k_split_hmpc), /prior_pk, root box_size and redshift; beside it the
// *_summary.json. With `posterior`: /posterior_mean (0.95 truth), /posterior_std and a
// /posterior_pk table whose intervals hold the truth's P(k), as docs/posterior.md describes.
void make_result(const fs::path& path, int n, double box, uint64_t seed, int wf_n = 0,
                 bool posterior = false) {
  const GridF truth = lognormal_field(n, box, seed);
  const size_t N = truth.size();
  std::vector<float> data(N), mask(N), sigma(N, 0.5f), wf(N), map(N), combined(N);
  CounterRng rng(seed + 99);
  for (size_t i = 0; i < N; ++i) {
    mask[i] = (i / (size_t(n) * n)) % 4 == 1 ? 0.0f : 1.0f;  // every fourth x-plane masked
    const double noise = 0.5 * rng.normal(i);
    data[i] = mask[i] * float(truth.values[i] + noise);
    wf[i] = float(0.6 * truth.values[i] + 0.2 * noise * mask[i]);
    map[i] = float(0.8 * truth.values[i] + 0.15 * noise * mask[i]);
    combined[i] = float(0.75 * truth.values[i] + 0.15 * noise * mask[i]);
  }
  h5::File f = h5::File::create(path.string());
  h5::Group& root = f.root();
  root.write_attribute("box_size", box);
  root.write_attribute("redshift", 0.0);
  write_cube(root, "truth", truth.values, n);
  write_cube(root, "data", data, n);
  write_cube(root, "mask", mask, n);
  write_cube(root, "noise_sigma", sigma, n);
  if (wf_n == 0) {
    write_cube(root, "wf", wf, n);
  } else {
    write_cube(root, "wf", std::vector<float>(size_t(wf_n) * wf_n * wf_n, 0.0f), wf_n);
  }
  write_cube(root, "map", map, n);
  write_cube(root, "combined", combined, n);
  root.open_dataset("combined").write_attribute("k_split_hmpc", 0.3);
  root.open_dataset("wf").write_attribute("iterations", int64_t(17));
  root.open_dataset("map").write_attribute("iterations", int64_t(120));
  h5::Dataset pk = root.create_dataset("prior_pk", h5::ElementType::float64, {3, 2});
  const std::vector<double> table = {0.1, 100, 0.2, 50, 0.4, 20};
  pk.write(table.data());
  if (posterior) {
    std::vector<float> mean(N), std(N, 0.3f);
    for (size_t i = 0; i < N; ++i) mean[i] = float(0.95 * truth.values[i]);
    write_cube(root, "posterior_mean", mean, n);
    write_cube(root, "posterior_std", std, n);
    const std::vector<std::string> columns = {"k_hmpc",           "nmodes",
                                              "pk_of_mean",       "r_of_mean",
                                              "pk_truth",         "posterior_pk_q025",
                                              "posterior_pk_q16", "posterior_pk_q50",
                                              "posterior_pk_q84", "posterior_pk_q975",
                                              "posterior_r_q025", "posterior_r_q16",
                                              "posterior_r_q50",  "posterior_r_q84",
                                              "posterior_r_q975"};
    const std::vector<double> level = {0.8, 0.9, 1.0, 1.1, 1.2};
    std::vector<double> rows;
    for (int b = 1; b <= 4; ++b) {
      const double k = 0.1 * b, p = 100.0 / k;
      for (double v : {k, 10.0 * b, 0.9 * p, 0.9, p}) rows.push_back(v);
      for (double l : level) rows.push_back(l * p);
      for (double l : level) rows.push_back(0.6 + 0.25 * l);
    }
    h5::Dataset post =
        root.create_dataset("posterior_pk", h5::ElementType::float64, {4, hsize_t(columns.size())});
    post.write(rows.data());
    std::string header;
    for (const auto& c : columns) header += (header.empty() ? "" : ", ") + c;
    post.write_attribute_string("columns", header);
  }
  f.close();
  const fs::path json = path.parent_path() / (path.stem().string() + "_summary.json");
  std::ofstream(json) << "{\"n\": " << n << ", \"wf\": {\"iterations\": 17, \"seconds\": 0.25},"
                      << " \"map\": {\"iterations\": 120, \"stop\": \"gradient\", \"seconds\": 1.5}"
                      << (posterior ? ", \"posterior\": {\"coverage68\": 0.7}" : "") << "}\n";
}

}  // namespace

TEST(Report, TrainingReportHasEveryFigureAndLoadsInChromium) {
  Workspace ws;
  make_training_run(ws.dir);
  report::TrainingReport t = training_settings(ws.dir, "training");
  t.plot = true;
  t.linear_pk = (ws.dir / "linear.csv").string();
  report::write_training_report(t);
  const fs::path out = ws.dir / "training";
  const std::vector<std::string> names = expect_figures(out);
  const std::set<std::string> have(names.begin(), names.end());
  for (const char* f : {"pk", "pdf", "bk", "slices", "loss"}) EXPECT_TRUE(have.count(f)) << f;
  expect_tables_finite(out);
  // Validation points come only from the rows that have them.
  const auto val = read_csv_columns((out / "loss_validation.csv").string(), {"step", "val_bpv"});
  EXPECT_EQ(val[0], (std::vector<double>{20, 40, 60}));
  const auto nll = read_csv_columns((out / "nll.csv").string(),
                                    {"flow_bpv", "gaussian_bpv", "standard_normal_bpv"});
  EXPECT_EQ(nll[0].size(), 4u);
  expect_chromium_clean(out, names, "report_training.png");
}

TEST(Report, ReconstructionReportHasEveryFigureAndLoadsInChromium) {
  Workspace ws;
  make_result(ws.dir / "a.h5", 16, 100.0, 1);
  make_result(ws.dir / "b.h5", 16, 100.0, 2, 0, true);  // posterior samples for b only
  report::ReconstructionReport c;
  c.results = {(ws.dir / "a.h5").string(), (ws.dir / "b.h5").string()};
  c.out = (ws.dir / "recon").string();
  report::write_reconstruction_report(c);
  const fs::path out = ws.dir / "recon";
  const std::vector<std::string> names = expect_figures(out);
  const std::set<std::string> have(names.begin(), names.end());
  for (const char* f : {"pk", "rk", "transfer", "residual", "pdf", "slices", "posterior"})
    EXPECT_TRUE(have.count(f)) << f;
  expect_tables_finite(out);
  // The numbers are the truth's: r of the wf = 0.6 truth + noise is below the map's 0.8 truth.
  const auto rk = read_csv_columns((out / "rk.csv").string(), {"wf_mean", "map_mean"});
  const auto pf = read_csv_columns((out / "per_field.csv").string(), {"wf_mse", "map_mse"});
  ASSERT_EQ(pf[0].size(), 2u);
  EXPECT_GT(pf[0][0], pf[1][0]);
  const std::string html = read_text(out / "index.html");
  EXPECT_NE(html.find("Wiener filter CG iterations"), std::string::npos);
  EXPECT_NE(html.find("map.seconds"), std::string::npos);
  // The posterior mean of one field: an estimate in every figure, averaged over that field only.
  const auto post = read_csv_columns((out / "rk.csv").string(), {"posterior_mean_mean"});
  EXPECT_FALSE(post[0].empty());
  EXPECT_NE(html.find("posterior mean (1 of 2 fields)"), std::string::npos);
  EXPECT_NE(html.find("posterior.coverage68 (1 of 2 fields)"), std::string::npos);
  EXPECT_EQ(read_text(out / "per_field.csv").find("posterior"), std::string::npos);
  // Its intervals come from /posterior_pk: the 68% band is [q16, q84] = [0.9, 1.1] x P_truth.
  const auto band = read_csv_columns((out / "posterior.csv").string(),
                                     {"pk_q16_q84_mid", "pk_q16_q84_half", "pk_truth"});
  ASSERT_EQ(band[0].size(), 4u);
  for (size_t b = 0; b < 4; ++b) {
    EXPECT_NEAR(band[0][b], band[2][b], 1e-9 * band[2][b]);
    EXPECT_NEAR(band[1][b], 0.1 * band[2][b], 1e-9 * band[2][b]);
  }
  expect_chromium_clean(out, names, "report_reconstruction.png");
}

TEST(Report, MismatchedInputsAreRefused) {
  Workspace ws;
  make_result(ws.dir / "a.h5", 16, 100.0, 1);
  make_result(ws.dir / "big.h5", 16, 200.0, 3);
  make_result(ws.dir / "bad.h5", 16, 100.0, 4, 8);
  report::ReconstructionReport c;
  c.out = (ws.dir / "recon").string();
  c.plot = false;
  c.results = {(ws.dir / "bad.h5").string()};
  EXPECT_EQ(error_of([&] { report::write_reconstruction_report(c); }),
            (ws.dir / "bad.h5").string() +
                ": /wf is 8^3 but /truth is 16^3: a reconstruction whose grid differs from its "
                "truth");
  c.results = {(ws.dir / "a.h5").string(), (ws.dir / "big.h5").string()};
  EXPECT_EQ(error_of([&] { report::write_reconstruction_report(c); }),
            (ws.dir / "big.h5").string() + ": grid 16^3 in a 200 Mpc/h box differs from 16^3 in " +
                "100 Mpc/h of " + (ws.dir / "a.h5").string() + ": its P(k) is of another box");
  // Fields reconstructed with two flows are not averaged together.
  make_result(ws.dir / "other_flow.h5", 16, 100.0, 5);
  h5::File::open((ws.dir / "other_flow.h5").string(), true)
      .root()
      .write_attribute_string("checkpoint", "models/long.h5");
  c.results = {(ws.dir / "a.h5").string(), (ws.dir / "other_flow.h5").string()};
  EXPECT_EQ(error_of([&] { report::write_reconstruction_report(c); }),
            (ws.dir / "other_flow.h5").string() + ": was made with the flow models/long.h5 but " +
                (ws.dir / "a.h5").string() + " with (unknown): one report per model");
  make_training_run(ws.dir);
  report::TrainingReport t = training_settings(ws.dir, "training");
  t.fields = {(ws.dir / "test.h5").string(), (ws.dir / "other_box.h5").string()};
  EXPECT_EQ(error_of([&] { report::write_training_report(t); }),
            (ws.dir / "other_box.h5").string() +
                ": box of 128 Mpc/h differs from the 64 Mpc/h of " + (ws.dir / "test.h5").string() +
                ": its P(k) is of another box");
  t = training_settings(ws.dir, "training");
  t.gaussian_fields = (ws.dir / "other_box.h5").string();
  EXPECT_NE(error_of([&] { report::write_training_report(t); }).find("of another box"),
            std::string::npos);
}

TEST(Report, CommandLineAndMissingPlotScript) {
  Workspace ws;
  make_result(ws.dir / "a.h5", 16, 100.0, 1);
  make_result(ws.dir / "bad.h5", 16, 100.0, 4, 8);
  const fs::path config = ws.dir / "report.yaml";
  std::ofstream(config) << "report:\n  kind: reconstruction\n  out: " << (ws.dir / "r").string()
                        << "\n  inputs: {results: [" << (ws.dir / "a.h5").string() << "]}\n";
  const std::string bin = FIELDFLOW_BINARY;
  const CommandResult ok =
      run_command("env -u FIELDFLOW_PLOT_SCRIPT " + bin + " report " + config.string());
  EXPECT_EQ(ok.status, 0) << ok.output;
  EXPECT_TRUE(fs::exists(ws.dir / "r" / "rk.png")) << ok.output;
  EXPECT_NE(ok.output.find("report: field 1/1"), std::string::npos) << ok.output;  // progress
  // Mismatched input: one line, status 1.
  const CommandResult bad =
      run_command(bin + " report " + config.string() + " --set report.inputs.results=[" +
                  (ws.dir / "bad.h5").string() + "]");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.output.find("fieldflow: " + (ws.dir / "bad.h5").string() +
                            ": /wf is 8^3 but /truth is 16^3"),
            std::string::npos)
      << bad.output;
  // An executable without share/fieldflow beside it: one clear line, no crash.
  const fs::path lonely = ws.dir / "bin" / "fieldflow";
  fs::create_directories(lonely.parent_path());
  fs::copy_file(bin, lonely);
  const CommandResult none =
      run_command("env -u FIELDFLOW_PLOT_SCRIPT " + lonely.string() + " report " + config.string());
  EXPECT_EQ(none.status, 1);
  EXPECT_NE(none.output.find("fieldflow: plot_report.py: plotting script not found (looked in "),
            std::string::npos)
      << none.output;
  size_t error_lines = 0;
  for (size_t at = 0; (at = none.output.find("fieldflow:", at)) != std::string::npos; ++at)
    ++error_lines;
  EXPECT_EQ(error_lines, 1u) << none.output;
  // plot: false writes the numbers and the page, no PNG.
  const CommandResult numbers =
      run_command(bin + " report " + config.string() +
                  " --set report.plot=false --set report.out=" + (ws.dir / "n").string());
  EXPECT_EQ(numbers.status, 0) << numbers.output;
  EXPECT_TRUE(fs::exists(ws.dir / "n" / "rk.csv"));
  EXPECT_FALSE(fs::exists(ws.dir / "n" / "rk.png"));
}

// Every key of the report: section changes what is written.
TEST(Report, EveryKeyChangesTheResult) {
  Workspace ws;
  make_training_run(ws.dir);
  const auto base_t = training_settings(ws.dir, "t0");
  report::write_training_report(base_t);
  auto file = [&](const std::string& out, const std::string& name) {
    return read_text(ws.dir / out / name);
  };
  auto variant = [&](const std::string& name, auto change) {
    report::TrainingReport t = training_settings(ws.dir, name);
    change(t);
    report::write_training_report(t);
  };
  variant("count", [](auto& t) { t.samples.count = 2; });
  EXPECT_NE(file("t0", "pk.csv"), file("count", "pk.csv"));
  variant("temperature", [](auto& t) { t.samples.temperature = 0.5; });
  EXPECT_NE(file("t0", "pk.csv"), file("temperature", "pk.csv"));
  variant("seed", [](auto& t) { t.samples.seed = 6; });
  EXPECT_NE(file("t0", "pk.csv"), file("seed", "pk.csv"));
  {  // mean_tolerance: half the first draw's |mean delta|, so that draw is not kept
    FlowCheckpoint run = load_flow_checkpoint((ws.dir / "run" / "best.h5").string());
    const GridF first = sample_field(run, base_t.samples.seed, 0, 1.0, false);
    const double tolerance = 0.5 * std::abs(mean_delta(first.values));
    variant("mean_tolerance", [&](auto& t) { t.samples.mean_tolerance = tolerance; });
    EXPECT_NE(file("t0", "pk.csv"), file("mean_tolerance", "pk.csv"));
  }
  variant("max_fields", [](auto& t) { t.max_fields = 2; });
  EXPECT_NE(file("t0", "nll.csv"), file("max_fields", "nll.csv"));
  variant("gaussian", [&](auto& t) { t.gaussian_fields = (ws.dir / "train.h5").string(); });
  EXPECT_NE(file("t0", "nll.csv"), file("gaussian", "nll.csv"));
  variant("linear", [&](auto& t) { t.linear_pk = (ws.dir / "linear.csv").string(); });
  EXPECT_TRUE(fs::exists(ws.dir / "linear" / "pk_linear.csv"));
  EXPECT_FALSE(fs::exists(ws.dir / "t0" / "pk_linear.csv"));
  variant("checkpoint", [&](auto& t) {
    fs::copy_file(ws.dir / "run" / "best.h5", ws.dir / "other.h5");
    FlowCheckpoint c = load_flow_checkpoint((ws.dir / "other.h5").string());
    c.flow->perturb(9, 0.05);
    save_flow_checkpoint((ws.dir / "other.h5").string(), *c.flow, c.preprocessing, c.data);
    t.checkpoint = (ws.dir / "other.h5").string();
  });
  EXPECT_NE(file("t0", "nll.csv"), file("checkpoint", "nll.csv"));
  variant("mas", [](auto& t) { t.stats.mas = MassAssignment::cic; });
  EXPECT_NE(file("t0", "pk.csv"), file("mas", "pk.csv"));
  variant("kbin", [](auto& t) { t.stats.kbin = 2.0; });
  EXPECT_NE(file("t0", "pk.csv"), file("kbin", "pk.csv"));
  EXPECT_NE(file("t0", "bk.csv"), file("kbin", "bk.csv"));
  variant("pdf_bins", [](auto& t) { t.stats.pdf_bins = 12; });
  EXPECT_NE(file("t0", "pdf.csv"), file("pdf_bins", "pdf.csv"));
  variant("slice", [](auto& t) { t.stats.slice = 1; });
  EXPECT_NE(file("t0", "slices.json"), file("slice", "slices.json"));
  variant("run_dir", [&](auto& t) {
    fs::create_directories(ws.dir / "run2");
    fs::copy_file(ws.dir / "run" / "best.h5", ws.dir / "run2" / "checkpoint.h5");
    t.run_dir = (ws.dir / "run2").string();  // no best.h5, no log.csv
  });
  EXPECT_FALSE(fs::exists(ws.dir / "run_dir" / "loss_train.csv"));
  EXPECT_TRUE(fs::exists(ws.dir / "t0" / "loss_train.csv"));

  // The YAML section reads into these fields; unknown keys are refused by the caller's finish().
  Config config = Config::parse(
      "report:\n  kind: training\n  out: o\n  plot: false\n  inputs: {run_dir: r, checkpoint: c,"
      " fields: [f1, f2], max_fields: 3, gaussian_fields: g, linear_pk: l}\n  samples: {count: 4,"
      " temperature: 0.7, seed: 9}\n  stats: {mas: tsc, kbin: 1.5, pdf_bins: 7, slice: 2}\n",
      "test");
  const report::ReportSettings read = report::read_report_settings(config.root().section("report"));
  config.finish();
  EXPECT_EQ(read.kind, "training");
  const report::TrainingReport t = report::training_report(read);
  EXPECT_EQ(t.run_dir, "r");
  EXPECT_EQ(t.fields, (std::vector<std::string>{"f1", "f2"}));
  EXPECT_EQ(t.checkpoint, "c");
  EXPECT_EQ(t.max_fields, 3);
  EXPECT_EQ(t.gaussian_fields, "g");
  EXPECT_EQ(t.linear_pk, "l");
  EXPECT_EQ(t.samples.count, 4);
  EXPECT_EQ(t.samples.temperature, 0.7);
  EXPECT_EQ(t.samples.seed, 9u);
  EXPECT_EQ(t.stats.mas, MassAssignment::tsc);
  EXPECT_EQ(t.stats.kbin, 1.5);
  EXPECT_EQ(t.stats.pdf_bins, 7);
  EXPECT_EQ(t.stats.slice, 2);
  EXPECT_FALSE(t.plot);
  EXPECT_EQ(t.out, "o");
  // The settings recorded with the report read back to the same settings.
  Config again = Config::parse(t.settings_yaml, "dump");
  EXPECT_FALSE(report::report_settings_table().first_difference(
      report::read_report_settings(again.root().section("report")), read));

  const auto error_in = [](const std::string& yaml) {
    return error_of([&] {
      Config c = Config::parse(yaml, "bad.yaml");
      report::read_report_settings(c.root().section("report"));
      c.finish();
    });
  };
  EXPECT_EQ(error_in("report:\n  kind: training\n  out: o\n  inputs: {fields: [f]}\n"),
            "bad.yaml: report.inputs.run_dir: required when kind is training");
  EXPECT_EQ(error_in("report:\n  kind: training\n  out: o\n  inputs: {run_dir: r, fields: f,"
                     " results: [a]}\n"),
            "bad.yaml: report.inputs.results: only for kind: reconstruction");
  EXPECT_EQ(error_in("report:\n  kind: reconstruction\n  out: o\n  inputs: {results: [a],"
                     " run_dir: r}\n"),
            "bad.yaml: report.inputs: run_dir, checkpoint, fields, max_fields, gaussian_fields and"
            " linear_pk are only for kind: training");
  EXPECT_EQ(error_in("report:\n  kind: reconstruction\n  out: o\n  inputs: {results: [a]}\n"
                     "  samples: {count: 3}\n"),
            "bad.yaml: report.samples: only for kind: training");
  EXPECT_EQ(error_in("report:\n  kind: reconstruction\n  out: o\n  inputs: {}\n"),
            "bad.yaml: report.inputs.results: required when kind is reconstruction");
  EXPECT_EQ(error_in("report:\n  kind: movie\n  out: o\n"),
            "bad.yaml: report.kind: expected one of training, reconstruction, got movie");
  EXPECT_EQ(error_in("report:\n  kind: training\n  out: o\n  stats: {kbin: 0}\n"
                     "  inputs: {run_dir: r, fields: f}\n"),
            "bad.yaml: report.stats.kbin: expected a number > 0, got 0");
}

// The report reads what `fieldflow denoise` really writes (run here on the tiny flow).
TEST(Report, ReadsARealDenoiseResult) {
  Workspace ws;
  make_training_run(ws.dir);
  DenoiseSettings d;
  d.checkpoint = (ws.dir / "run" / "best.h5").string();
  d.truth_grid = (ws.dir / "test.h5").string();
  d.noise_sigma = 0.5;
  d.mask.size = 2;
  d.mask.fraction = 0.3;
  d.prior_power = "file";
  d.prior_power_file = (ws.dir / "linear.csv").string();
  d.map.max_iterations = 5;
  d.k_split_hmpc = 0.3;
  d.posterior.samples = 4;  // a few draws: the layout, not the statistics
  d.posterior.warmup = 4;
  d.posterior.chains = 1;
  d.posterior.leapfrog_steps = 2;
  d.out = (ws.dir / "denoise" / "result.h5").string();
  run_denoise(d, nullptr);
  report::ReconstructionReport c;
  c.results = {d.out};
  c.out = (ws.dir / "recon").string();
  c.plot = false;
  report::write_reconstruction_report(c);
  expect_tables_finite(ws.dir / "recon");
  const std::string html = read_text(ws.dir / "recon" / "index.html");
  EXPECT_NE(html.find("Wiener filter CG iterations"), std::string::npos);
  EXPECT_NE(html.find("combined: k_split [h/Mpc]"), std::string::npos);
  EXPECT_NE(html.find("made with the flow " + d.checkpoint), std::string::npos);
  // The posterior mean is an estimate, and its samples' intervals have their figure.
  EXPECT_FALSE(
      read_csv_columns((ws.dir / "recon" / "rk.csv").string(), {"posterior_mean_mean"})[0].empty());
  const auto post = read_csv_columns((ws.dir / "recon" / "posterior.csv").string(),
                                     {"pk_truth", "pk_q025_q975_half", "r_of_mean"});
  EXPECT_FALSE(post[0].empty());
  EXPECT_NE(html.find("posterior.acceptance_rate"), std::string::npos);

  // The command line writes the same report beside its result, unless denoise.report is false.
  const fs::path config = ws.dir / "denoise.yaml";
  std::ofstream(config) << "denoise:\n  checkpoint: " << d.checkpoint
                        << "\n  truth: {grid: " << d.truth_grid
                        << "}\n  noise: {sigma: 0.5}\n  mask: {size: 2, fraction: "
                        << "0.3}\n  prior_power: file\n  prior_power_file: " << d.prior_power_file
                        << "\n  map: {max_iterations: 5}\n  combined: {k_split_hmpc: 0.3}\n"
                        << "  out: " << (ws.dir / "cli" / "result.h5").string() << "\n";
  const std::string bin = FIELDFLOW_BINARY;
  const CommandResult with = run_command(bin + " denoise " + config.string());
  EXPECT_EQ(with.status, 0) << with.output;
  EXPECT_TRUE(fs::exists(ws.dir / "cli" / "result_report" / "index.html")) << with.output;
  EXPECT_TRUE(fs::exists(ws.dir / "cli" / "result_report" / "rk.png"));
  const CommandResult without = run_command(
      bin + " denoise " + config.string() +
      " --set denoise.report=false --set denoise.out=" + (ws.dir / "cli2" / "result.h5").string());
  EXPECT_EQ(without.status, 0) << without.output;
  EXPECT_TRUE(fs::exists(ws.dir / "cli2" / "result.h5"));
  EXPECT_FALSE(fs::exists(ws.dir / "cli2" / "result_report"));
}
