#include "field_stats.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/text.hpp"

namespace ff::cli {

GridFileInfo inspect_for_fourier(const std::string& path, int index) {
  const GridFileInfo info = inspect_grid_file(path);
  if (index < 0)
    throw Error("--index", "expected a member index >= 0, got " + std::to_string(index));
  if (index >= info.count)
    throw Error(path, "--index " + std::to_string(index) + " out of range: the file holds " +
                          std::to_string(info.count) + " field" + (info.count == 1 ? "" : "s"));
  if (info.n % 2 != 0)
    throw Error(path, "grid size " + std::to_string(info.n) +
                          " is odd; Fourier statistics need an even grid size");
  return info;
}

void refuse_output_over_inputs(const std::string& out, const std::vector<std::string>& inputs) {
  for (const std::string& input : inputs) {
    std::error_code ec;
    if (!out.empty() && !input.empty() && std::filesystem::equivalent(out, input, ec))
      throw Error("--out", "would overwrite the input " + input);
  }
}

void check_kbin(double kbin) {
  if (!(kbin > 0) || !std::isfinite(kbin))
    throw Error("--kbin",
                "expected a positive bin width (units of k_F), got " + format_number(kbin));
}

void emit_csv(const std::string& out, const std::vector<CsvColumn>& columns) {
  if (!out.empty()) {
    write_csv(out, columns);  // atomic: nothing is left behind on failure
    return;
  }
  const std::string csv = format_csv(columns);
  std::fwrite(csv.data(), 1, csv.size(), stdout);
}

}  // namespace ff::cli
