#include "fieldflow/report/document.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "fieldflow/core/error.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/io/json.hpp"

extern char** environ;

namespace ff::report {

namespace fs = std::filesystem;

std::string format_value(double value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", value);
  return buf;
}

std::string format_mean_std(double mean, double std) {
  return format_value(mean) + " ± " + format_value(std);
}

namespace {

std::string html_escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

std::string json_lines(const std::vector<Line>& lines) {
  std::string out = "[";
  for (size_t i = 0; i < lines.size(); ++i)
    out += (i ? ", " : "") + std::string("{\"label\": ") + json_string(lines[i].label) +
           ", \"value\": " + json_number(lines[i].value) + "}";
  return out + "]";
}

std::string json_panel(const Panel& p) {
  std::ostringstream o;
  o << "{\"xlabel\": " << json_string(p.xlabel) << ", \"ylabel\": " << json_string(p.ylabel)
    << ", \"xlog\": " << (p.xlog ? "true" : "false")
    << ", \"ylog\": " << (p.ylog ? "true" : "false") << ", \"height\": " << json_number(p.height)
    << ", \"hlines\": " << json_lines(p.hlines) << ", \"vlines\": " << json_lines(p.vlines)
    << ", \"series\": [";
  for (size_t i = 0; i < p.series.size(); ++i) {
    const Series& s = p.series[i];
    o << (i ? ", " : "") << "{\"csv\": " << json_string(s.csv) << ", \"x\": " << json_string(s.x)
      << ", \"y\": " << json_string(s.y) << ", \"band\": " << json_string(s.band)
      << ", \"label\": " << json_string(s.label) << ", \"style\": " << json_string(s.style)
      << ", \"color\": " << json_string(s.color) << "}";
  }
  o << "]}";
  return o.str();
}

// Every column the figures read must exist in its CSV: a typo would only show in Python.
void check_series_columns(const ReportWriter& w, const Figure& f) {
  for (const Panel& p : f.panels)
    for (const Series& s : p.series) {
      std::vector<std::string> names = {s.x, s.y};
      if (!s.band.empty()) names.push_back(s.band);
      read_csv_columns(w.path(s.csv), names);  // throws naming the file and column
    }
}

}  // namespace

ReportWriter::ReportWriter(std::string out_dir, std::string title)
    : dir_(std::move(out_dir)), title_(std::move(title)) {
  if (dir_.empty()) throw Error("report.out", "needs a folder name");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw Error(dir_, "cannot create the report folder: " + ec.message());
}

std::string ReportWriter::path(const std::string& name) const {
  return (fs::path(dir_) / name).string();
}

void ReportWriter::csv(const std::string& name, const std::vector<CsvColumn>& columns) {
  for (const CsvColumn& c : columns) {
    if (c.second->empty()) throw Error(path(name), "column " + c.first + " is empty");
    for (double v : *c.second)
      if (!std::isfinite(v))
        throw Error(path(name), "column " + c.first + " holds a non-finite value");
  }
  write_csv(path(name), columns);
}

void ReportWriter::text(const std::string& name, const std::string& content) {
  atomic_write_text(path(name), content);
}

void ReportWriter::images(const std::string& name, int n, double box_size_mpch,
                          const std::string& quantity, const std::vector<ImageScale>& scales,
                          const std::vector<Image>& images, int columns) {
  std::ostringstream o;
  o << "{\"n\": " << n << ", \"box_size_mpch\": " << json_number(box_size_mpch)
    << ", \"quantity\": " << json_string(quantity) << ", \"columns\": " << columns
    << ", \"scales\": [";
  for (size_t i = 0; i < scales.size(); ++i)
    o << (i ? ", " : "") << "{\"name\": " << json_string(scales[i].name)
      << ", \"label\": " << json_string(scales[i].label)
      << ", \"cmap\": " << json_string(scales[i].cmap)
      << ", \"vmin\": " << json_number(scales[i].vmin)
      << ", \"vmax\": " << json_number(scales[i].vmax) << "}";
  o << "], \"images\": [";
  for (size_t i = 0; i < images.size(); ++i) {
    if (images[i].values.size() != size_t(n) * n)
      throw Error(path(name), "image " + images[i].title + " is not " + std::to_string(n) + "^2");
    o << (i ? ",\n" : "\n") << "{\"title\": " << json_string(images[i].title)
      << ", \"scale\": " << json_string(images[i].scale) << ", \"values\": [";
    for (int r = 0; r < n; ++r) {
      o << (r ? ", [" : "[");
      for (int c = 0; c < n; ++c)
        o << (c ? ", " : "") << json_number(images[i].values[size_t(r) * n + c]);
      o << "]";
    }
    o << "]}";
  }
  o << "]}\n";
  text(name, o.str());
}

std::string ReportWriter::manifest() const {
  std::ostringstream o;
  o << "{\"title\": " << json_string(title_) << ",\n \"figures\": [";
  for (size_t i = 0; i < figures_.size(); ++i) {
    const Figure& f = figures_[i];
    o << (i ? ",\n  " : "\n  ") << "{\"name\": " << json_string(f.name)
      << ", \"png\": " << json_string(f.name + ".png") << ", \"title\": " << json_string(f.title)
      << ", \"caption\": " << json_string(f.caption) << ", \"images\": " << json_string(f.images)
      << ", \"panels\": [";
    for (size_t p = 0; p < f.panels.size(); ++p) o << (p ? ", " : "") << json_panel(f.panels[p]);
    o << "]}";
  }
  o << "\n ],\n \"provenance\": {\"fieldflow_version\": " << json_string(provenance_.version)
    << ", \"git_commit\": " << json_string(provenance_.git_commit)
    << ", \"settings\": " << json_string(provenance_.settings) << "}}\n";
  return o.str();
}

std::string ReportWriter::html() const {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"
    << html_escape(title_) << "</title>\n<style>\n"
    << "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}\n"
    << "h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}\n"
    << "figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}\n"
    << "figcaption{margin-top:.4em;font-size:.95em}figcaption .data{color:#555;font-size:.9em}\n"
    << "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.25em .6em;"
       "text-align:right}th{background:#eee}td:first-child,th:first-child{text-align:left}\n"
    << "p.note{color:#333}\n</style>\n</head>\n<body>\n<h1>" << html_escape(title_) << "</h1>\n";
  for (const std::string& n : notes_) o << "<p class=\"note\">" << html_escape(n) << "</p>\n";
  for (const Table& t : tables_) {
    o << "<h2>" << html_escape(t.title) << "</h2>\n<p>" << html_escape(t.caption);
    if (!t.file.empty())
      o << " <span class=\"data\">Numbers: <a href=\"" << html_escape(t.file) << "\">"
        << html_escape(t.file) << "</a>.</span>";
    o << "</p>\n<table>\n<tr>";
    for (const std::string& h : t.header) o << "<th>" << html_escape(h) << "</th>";
    o << "</tr>\n";
    for (const auto& row : t.rows) {
      o << "<tr>";
      for (const std::string& cell : row) o << "<td>" << html_escape(cell) << "</td>";
      o << "</tr>\n";
    }
    o << "</table>\n";
  }
  for (const Figure& f : figures_) {
    o << "<h2 id=\"" << html_escape(f.name) << "\">" << html_escape(f.title) << "</h2>\n<figure>\n"
      << "<img src=\"" << html_escape(f.name) << ".png\" alt=\"" << html_escape(f.title)
      << "\">\n<figcaption>" << html_escape(f.caption);
    if (!f.data.empty()) {
      o << " <span class=\"data\">Numbers:";
      for (size_t i = 0; i < f.data.size(); ++i)
        o << (i ? ", " : " ") << "<a href=\"" << html_escape(f.data[i]) << "\">"
          << html_escape(f.data[i]) << "</a>";
      o << ".</span>";
    }
    o << "</figcaption>\n</figure>\n";
  }
  o << "<p class=\"note\">Figures drawn by plot_report.py from <a "
       "href=\"report.json\">report.json</a>"
       " and the files it names; rerun: <code>python3 plot_report.py &lt;this "
       "folder&gt;</code>. Made by fieldflow "
    << html_escape(provenance_.version) << " (commit " << html_escape(provenance_.git_commit) << ")"
    << (provenance_.settings.empty() ? "" : "; its settings are in report.json") << ".</p>\n"
    << "</body>\n</html>\n";
  return o.str();
}

void ReportWriter::finish(bool plot) {
  for (const Figure& f : figures_) check_series_columns(*this, f);
  text("report.json", manifest());
  if (plot) {
    run_plot_script(find_plot_script(), dir_);
    for (const Figure& f : figures_)
      if (!fs::exists(path(f.name + ".png")))
        throw Error(path(f.name + ".png"), "the plotting script did not draw this figure");
  }
  text("index.html", html());
}

std::string find_plot_script() {
  if (const char* env = std::getenv("FIELDFLOW_PLOT_SCRIPT"); env && *env) {
    if (!fs::is_regular_file(env))
      throw Error(env, "plotting script (from FIELDFLOW_PLOT_SCRIPT) not found");
    return env;
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  std::vector<fs::path> candidates;
  if (!ec) {
    candidates.push_back(exe.parent_path() / "share/fieldflow/plot_report.py");
    candidates.push_back(exe.parent_path().parent_path() / "share/fieldflow/plot_report.py");
  }
  for (const fs::path& c : candidates)
    if (fs::is_regular_file(c)) return c.string();
  std::string looked;
  for (const fs::path& c : candidates) looked += (looked.empty() ? "" : ", ") + c.string();
  throw Error("plot_report.py", "plotting script not found (looked in " + looked +
                                    "; set FIELDFLOW_PLOT_SCRIPT or reinstall)");
}

void run_plot_script(const std::string& script, const std::string& dir) {
  const char* python = "/usr/bin/python3";
  if (::access(python, X_OK) != 0)
    throw Error(python,
                "not found: the report's figures need Debian's python3 and python3-matplotlib");
  std::fflush(stdout);
  std::fflush(stderr);
  std::vector<std::string> args = {python, script, dir};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawn(&pid, python, nullptr, nullptr, argv.data(), environ) != 0)
    throw Error(python, "cannot start the plotting script " + script);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw Error(script, "lost the plotting script's process");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error(script, "the plotting script failed (exit status " +
                            std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) +
                            "; its message is above)");
}

}  // namespace ff::report
