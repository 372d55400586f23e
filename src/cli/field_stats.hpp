#pragma once
// What the Fourier-statistics commands (pk, bk) share: checking a grid file and member index
// before reading values, and writing a CSV table to a file (atomically, or through to a device or
// FIFO) or to standard output. (An output that is an input: ff::refuse_output_that_is_input.)
#include <string>
#include <vector>

#include "fieldflow/io/csv.hpp"
#include "fieldflow/io/grid_file.hpp"

namespace ff::cli {

// The file's description; refuses an index beyond the file's members and an odd grid size (a
// negative index is refused by the command line's --index check).
GridFileInfo inspect_for_fourier(const std::string& path, int index);
// To `out` when it is not empty (atomic), else to standard output.
void emit_csv(const std::string& out, const std::vector<CsvColumn>& columns);

}  // namespace ff::cli
