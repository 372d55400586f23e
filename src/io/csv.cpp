#include "fieldflow/io/csv.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "fieldflow/core/error.hpp"
#include "fieldflow/io/atomic_file.hpp"

namespace ff {

std::string format_csv(const std::vector<CsvColumn>& columns) {
  std::string out;
  size_t rows = columns.empty() ? 0 : columns[0].second->size();
  for (size_t c = 0; c < columns.size(); ++c) {
    if (columns[c].second->size() != rows)
      throw Error("CSV", "column " + columns[c].first + " has a different length");
    out += (c ? "," : "") + columns[c].first;
  }
  out += '\n';
  char buf[32];
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < columns.size(); ++c) {
      std::snprintf(buf, sizeof buf, "%.9g", (*columns[c].second)[r]);
      if (c) out += ',';
      out += buf;
    }
    out += '\n';
  }
  return out;
}

void write_csv(const std::string& path, const std::vector<CsvColumn>& columns) {
  atomic_write_text(path, format_csv(columns));
}

namespace {
std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::stringstream ss(line);
  std::string field;
  while (std::getline(ss, field, ',')) {
    const auto first = field.find_first_not_of(" \t\r");
    const auto last = field.find_last_not_of(" \t\r");
    fields.push_back(first == std::string::npos ? "" : field.substr(first, last - first + 1));
  }
  if (!line.empty() && line.back() == ',') fields.push_back("");
  return fields;
}
}  // namespace

std::vector<std::vector<double>> read_csv_columns(const std::string& path,
                                                  const std::vector<std::string>& names) {
  std::ifstream in(path);
  if (!in) throw Error(path, "cannot open CSV file");
  std::string line;
  if (!std::getline(in, line)) throw Error(path, "empty file, expected a header line");
  const std::vector<std::string> header = split_fields(line);
  std::vector<size_t> index;
  for (const std::string& name : names) {
    const auto it = std::find(header.begin(), header.end(), name);
    if (it == header.end()) throw Error(path, "no column \"" + name + "\" in the header");
    index.push_back(size_t(it - header.begin()));
  }
  std::vector<std::vector<double>> columns(names.size());
  for (int number = 2; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::vector<std::string> fields = split_fields(line);
    const std::string where = "line " + std::to_string(number);
    if (fields.size() != header.size())
      throw Error(path, where + ": " + std::to_string(fields.size()) + " fields, the header has " +
                            std::to_string(header.size()));
    for (size_t c = 0; c < names.size(); ++c) {
      const std::string& text = fields[index[c]];
      char* end = nullptr;
      const double value = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || !std::isfinite(value))
        throw Error(path, where + ": column " + names[c] + " holds \"" + text +
                              "\", expected a finite number");
      columns[c].push_back(value);
    }
  }
  if (!names.empty() && columns[0].empty()) throw Error(path, "no data rows");
  return columns;
}

}  // namespace ff
