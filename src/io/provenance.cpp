#include "fieldflow/io/provenance.hpp"

#include "fieldflow/io/hdf5.hpp"

namespace ff {

void write_provenance(h5::Object& where, const Provenance& p) {
  where.write_attribute_string("fieldflow_version", p.version);
  where.write_attribute_string("git_commit", p.git_commit);
  if (!p.simd_target.empty()) where.write_attribute_string("simd_target", p.simd_target);
  if (!p.settings.empty()) where.write_attribute_string("settings", p.settings);
}

Provenance read_provenance(const h5::Object& where) {
  auto get = [&](const char* name) {
    return where.has_attribute(name) ? where.read_attribute_string(name) : std::string();
  };
  return Provenance{get("fieldflow_version"), get("git_commit"), get("simd_target"),
                    get("settings")};
}

Provenance read_provenance(const std::string& path) {
  const h5::File file = h5::File::open(path);
  return read_provenance(file.root());
}

}  // namespace ff
