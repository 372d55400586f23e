#include "ensemble.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/text.hpp"

namespace ff::report {

void Ensemble::add(const std::vector<double>& x, const std::vector<double>& y,
                   const std::string& source) {
  if (x.size() != y.size()) throw Error(source, what_ + ": x and y differ in length");
  if (values_.empty()) {
    x_ = x;
    first_ = source;
  } else {
    bool same = x.size() == x_.size();
    for (size_t i = 0; same && i < x.size(); ++i)
      same = std::abs(x[i] - x_[i]) <= 1e-9 * std::max(std::abs(x_[i]), 1e-300);
    if (!same)
      throw Error(source, what_ + " bins (" + std::to_string(x.size()) + " from " +
                              format_number(x.empty() ? 0 : x.front()) + ") differ from those of " +
                              first_ + " (" + std::to_string(x_.size()) + " from " +
                              format_number(x_.empty() ? 0 : x_.front()) +
                              "): a field of another box or grid");
  }
  values_.push_back(y);
}

std::vector<double> Ensemble::mean() const {
  std::vector<double> m(x_.size(), 0.0);
  for (const auto& v : values_)
    for (size_t i = 0; i < m.size(); ++i) m[i] += v[i] / double(values_.size());
  return m;
}

std::vector<double> Ensemble::std() const {
  const std::vector<double> m = mean();
  std::vector<double> s(x_.size(), 0.0);
  if (values_.size() < 2) return s;
  for (const auto& v : values_)
    for (size_t i = 0; i < s.size(); ++i) s[i] += (v[i] - m[i]) * (v[i] - m[i]);
  for (double& e : s) e = std::sqrt(e / double(values_.size() - 1));
  return s;
}

template <typename T>
std::vector<double> slice_of(const BasicGrid<T>& field, int index) {
  const int n = field.n;
  const int i = index < 0 ? n / 2 : index;
  if (i >= n)
    throw Error("report.stats.slice",
                "index " + std::to_string(i) + " is outside the grid of " + std::to_string(n));
  std::vector<double> out(size_t(n) * n);
  for (int j = 0; j < n; ++j)
    for (int k = 0; k < n; ++k) out[size_t(j) * n + k] = double(field(i, j, k));
  return out;
}
template std::vector<double> slice_of(const BasicGrid<float>&, int);
template std::vector<double> slice_of(const BasicGrid<double>&, int);

double percentile(const std::vector<const std::vector<double>*>& arrays, double q) {
  std::vector<double> all;
  for (const auto* a : arrays)
    for (double v : *a)
      if (std::isfinite(v)) all.push_back(v);
  if (all.empty()) return 0.0;
  const size_t at = std::min(all.size() - 1, size_t(q / 100.0 * double(all.size() - 1) + 0.5));
  std::nth_element(all.begin(), all.begin() + long(at), all.end());
  return all[at];
}

void progress(const std::string& message) {
  std::printf("report: %s\n", message.c_str());
  std::fflush(stdout);
}

const std::vector<double>* LooseTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return &columns[i];
  return nullptr;
}

LooseTable read_loose_csv(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path, "cannot open");
  LooseTable t;
  std::string line;
  if (!std::getline(in, line)) throw Error(path, "empty file, expected a header line");
  auto split = [](const std::string& text) {
    std::vector<std::string> cells;
    std::stringstream s(text);
    std::string cell;
    while (std::getline(s, cell, ',')) cells.push_back(cell);
    if (!text.empty() && text.back() == ',') cells.push_back("");
    return cells;
  };
  t.header = split(line);
  for (auto& h : t.header)
    while (!h.empty() && (h.back() == '\r' || h.back() == ' ')) h.pop_back();
  t.columns.resize(t.header.size());
  int number = 1;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty() || line == "\r") continue;
    const std::vector<std::string> cells = split(line);
    if (cells.size() > t.header.size())
      throw Error(path, "line " + std::to_string(number) + " has more fields than the header");
    for (size_t c = 0; c < t.header.size(); ++c) {
      double v = std::nan("");
      if (c < cells.size() && !cells[c].empty() && cells[c] != "\r") {
        char* end = nullptr;
        v = std::strtod(cells[c].c_str(), &end);
        if (end == cells[c].c_str())
          throw Error(path, "line " + std::to_string(number) + ": " + t.header[c] +
                                " is not a number: " + cells[c]);
      }
      t.columns[c].push_back(v);
    }
  }
  return t;
}

}  // namespace ff::report
