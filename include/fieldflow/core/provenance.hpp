#pragma once
// What made an output: the fieldflow version, the git commit it was built from and, where the
// output depends on them, the SIMD target in use and the settings (YAML) that were applied.
// io's write_provenance() stores it as root attributes of every HDF5 file fieldflow writes
// (docs/io.md "Provenance").
#include <string>

namespace ff {

struct Provenance {
  std::string version;      // CMake project VERSION, e.g. "0.1.0"
  std::string git_commit;   // full hash, "-dirty" appended for uncommitted changes; "unknown"
  std::string simd_target;  // e.g. "AVX3"; "" when the output does not depend on it
  std::string settings;     // YAML of the settings used; "" when there were none
};

// This build's version and commit, with the given settings and SIMD target. core cannot ask nn for
// the SIMD target: the caller that knows it passes it.
Provenance provenance(std::string settings_yaml = "", std::string simd_target = "");

// The build alone (generated at build time into a small .cpp, so a new commit recompiles one file).
const char* fieldflow_version();
const char* fieldflow_git_commit();

}  // namespace ff
