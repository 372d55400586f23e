#pragma once
// What the Fourier-statistics commands (pk, bk) share: checking a grid file and member index
// before reading values, refusing an output that is one of the inputs, and writing a CSV table to
// a file (atomically) or to standard output.
#include <string>
#include <vector>

#include "fieldflow/io/csv.hpp"
#include "fieldflow/io/grid_file.hpp"

namespace ff::cli {

// The file's description; refuses a negative or out-of-range index and an odd grid size.
GridFileInfo inspect_for_fourier(const std::string& path, int index);
// Refuses (Error on --out) an output path that names one of the inputs.
void refuse_output_over_inputs(const std::string& out, const std::vector<std::string>& inputs);
// Refuses a bin width (units of k_F) that is not positive and finite.
void check_kbin(double kbin);
// To `out` when it is not empty (atomic), else to standard output.
void emit_csv(const std::string& out, const std::vector<CsvColumn>& columns);

}  // namespace ff::cli
