#pragma once
// Plain CSV tables of numbers: a header line of column names, then one row per index, each value
// printed with 9 significant digits (%.9g), which round-trips float32 and is close to double.
#include <string>
#include <utility>
#include <vector>

namespace ff {

using CsvColumn = std::pair<std::string, const std::vector<double>*>;

std::string format_csv(const std::vector<CsvColumn>& columns);
void write_csv(const std::string& path, const std::vector<CsvColumn>& columns);  // atomic

// Reads the named columns of a numeric CSV with a header line (e.g. "k" and "pk" of the file
// `fieldflow pk` writes). Refuses, naming the file and line: a missing file or column, a
// non-numeric or non-finite value, a row with the wrong number of fields, no data rows.
std::vector<std::vector<double>> read_csv_columns(const std::string& path,
                                                  const std::vector<std::string>& names);

}  // namespace ff
