#include "fieldflow/io/csv.hpp"

#include <cstdio>

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

}  // namespace ff
