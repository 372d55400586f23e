#pragma once
// Provenance in every HDF5 file fieldflow writes, as string attributes of the root group:
//   fieldflow_version  "0.1.0"
//   git_commit         the commit fieldflow was built from ("-dirty" appended; or "unknown")
//   simd_target        the SIMD target of the kernels (only where the output depends on them)
//   settings           YAML of the settings that made the file (only where there were settings)
// docs/io.md "Provenance".
#include <string>

#include "fieldflow/core/provenance.hpp"

namespace ff {

namespace h5 {
class Object;
}

void write_provenance(h5::Object& where, const Provenance& provenance);
// What an object records (empty strings for the attributes it lacks).
Provenance read_provenance(const h5::Object& where);
// The same from the root of the HDF5 file at path.
Provenance read_provenance(const std::string& path);

}  // namespace ff
