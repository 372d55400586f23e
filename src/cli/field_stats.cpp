#include "field_stats.hpp"

#include <cstdio>

#include "fieldflow/core/error.hpp"

namespace ff::cli {

GridFileInfo inspect_for_fourier(const std::string& path, int index) {
  const GridFileInfo info = inspect_grid_file(path);
  if (index >= info.count)
    throw Error(path, "--index " + std::to_string(index) + " out of range: the file holds " +
                          std::to_string(info.count) + " field" + (info.count == 1 ? "" : "s"));
  if (info.n % 2 != 0)
    throw Error(path, "grid size " + std::to_string(info.n) +
                          " is odd; Fourier statistics need an even grid size");
  return info;
}

void emit_csv(const std::string& out, const std::vector<CsvColumn>& columns) {
  if (!out.empty()) {
    write_csv(out, columns);  // atomic (or written through to a device/FIFO); nothing partial
    return;
  }
  const std::string csv = format_csv(columns);
  std::fwrite(csv.data(), 1, csv.size(), stdout);  // main checks standard output at the end
}

}  // namespace ff::cli
