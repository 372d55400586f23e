#include "fieldflow/core/provenance.hpp"

namespace ff {

Provenance provenance(std::string settings_yaml, std::string simd_target) {
  return Provenance{fieldflow_version(), fieldflow_git_commit(), std::move(simd_target),
                    std::move(settings_yaml)};
}

}  // namespace ff
