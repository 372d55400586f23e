#pragma once
// A report folder: the CSV and JSON behind every figure, a manifest (report.json) that says how
// each figure is drawn from them, the PNGs that the plotting script draws from the manifest and
// those files only, and a self-contained index.html (inline CSS, relative links, no network).
//
// The plotting script is share/fieldflow/plot_report.py, found beside the executable
// (<exe dir>/share/fieldflow or <exe dir>/../share/fieldflow, the build and install layouts) or at
// $FIELDFLOW_PLOT_SCRIPT; users can rerun it: /usr/bin/python3 plot_report.py REPORT_DIR.
#include <string>
#include <utility>
#include <vector>

#include "fieldflow/core/provenance.hpp"
#include "fieldflow/io/csv.hpp"

namespace ff::report {

// One curve: column y against column x of a CSV in the report folder, with an optional ±1σ band.
struct Series {
  std::string csv, x, y;
  std::string band;  // column of the band's half-width ("" for none)
  std::string label;
  // matplotlib line style: "-", "--", ":", "-."; or "band": only the interval y ± band, filled.
  std::string style = "-";
  std::string color;  // matplotlib colour ("" for the default cycle)
};

struct Line {
  std::string label;
  double value = 0.0;
};

// Panels of one figure are stacked and share their x axis (e.g. P(k) over its ratio).
struct Panel {
  std::string xlabel, ylabel;
  bool xlog = false, ylog = false;
  std::vector<Series> series;
  std::vector<Line> hlines, vlines;
  double height = 3.0;  // relative height
};

// A grid of images (slices) with shared colour scales, from a JSON file in the folder.
struct ImageScale {
  std::string name, label, cmap;
  double vmin = 0.0, vmax = 1.0;
};
struct Image {
  std::string title;
  std::string scale;           // an ImageScale name
  std::vector<double> values;  // n x n, row-major (rows: first index); NaN: masked (grey)
};

struct Figure {
  std::string name;  // the PNG is name + ".png"
  std::string title;
  std::string caption;  // one sentence: what to look for
  std::vector<Panel> panels;
  std::string images;             // or: JSON of images written by ReportWriter::images
  std::vector<std::string> data;  // files behind the figure (linked from the page)
};

struct Table {
  std::string title, caption;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string file;  // the CSV or JSON with the same numbers
};

class ReportWriter {
 public:
  // Creates the folder. title heads the page.
  ReportWriter(std::string out_dir, std::string title);

  const std::string& dir() const { return dir_; }
  std::string path(const std::string& name) const;
  // Writes a CSV table (atomically) into the folder; refuses empty or non-finite columns.
  void csv(const std::string& name, const std::vector<CsvColumn>& columns);
  // Writes images of side n (extent box_size_mpch) with their scales as JSON.
  void images(const std::string& name, int n, double box_size_mpch, const std::string& quantity,
              const std::vector<ImageScale>& scales, const std::vector<Image>& images, int columns);
  // Writes text (JSON) into the folder.
  void text(const std::string& name, const std::string& content);
  void figure(Figure figure) { figures_.push_back(std::move(figure)); }
  void table(Table table) { tables_.push_back(std::move(table)); }
  void note(std::string paragraph) { notes_.push_back(std::move(paragraph)); }
  // The settings (YAML) that made the report, recorded with the version and commit in report.json
  // and named at the foot of the page.
  void settings(std::string yaml) { provenance_.settings = std::move(yaml); }

  // Writes report.json, runs the plotting script (when plot), checks every PNG is there, writes
  // index.html. Without plot, the page links the PNGs the script would draw.
  void finish(bool plot);

 private:
  std::string manifest() const;
  std::string html() const;
  std::string dir_, title_;
  std::vector<Figure> figures_;
  std::vector<Table> tables_;
  std::vector<std::string> notes_;
  Provenance provenance_ = provenance();
};

// The plotting script's path, or an Error saying where it was looked for.
std::string find_plot_script();
// Runs /usr/bin/python3 SCRIPT DIR; an Error when it cannot run or fails.
void run_plot_script(const std::string& script, const std::string& dir);

// Numbers in tables: 4 significant digits; "mean ± std".
std::string format_value(double value);
std::string format_mean_std(double mean, double std);

}  // namespace ff::report
