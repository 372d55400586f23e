#pragma once
// Array files: the generic HDF5 container behind checkpoints. Named float32 and float64 arrays
// (1-D), text and number entries, a format name and a format version; every array and the
// metadata carry an FNV-1a 64-bit checksum, so a damaged file is refused with an error naming
// the part that does not match instead of loading silently wrong values. Layout:
//   /                attributes format (string), format_version (int64), array_count (int64),
//                    meta_checksum (uint64, over texts and numbers)
//   /arrays/<name>   float32 or float64 [size], attribute checksum (uint64, over the bytes)
//   /texts           one string attribute per text entry
//   /numbers         one float64 attribute per number entry
// The root also carries the writer's provenance (io/provenance.hpp) when one is given; it is
// outside the checksums (it describes the file, it is not read back as contents).
// Written atomically (AtomicFile). What the names mean is the caller's schema (e.g. flow).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "fieldflow/core/provenance.hpp"

namespace ff {

struct ArrayFile {
  std::string format;
  int64_t version = 1;
  std::map<std::string, std::vector<float>> floats;
  std::map<std::string, std::vector<double>> doubles;
  std::map<std::string, std::string> texts;
  std::map<std::string, double> numbers;
  Provenance provenance;  // written when version is set; read back (empty when absent)
};

void write_array_file(const std::string& path, const ArrayFile& contents);
// Refuses (ff::Error naming path) a file of another format, a version outside
// [min_version, max_version], a missing or damaged part, or a checksum mismatch.
ArrayFile read_array_file(const std::string& path, const std::string& format, int64_t min_version,
                          int64_t max_version);

// FNV-1a, 64 bits: offset basis 14695981039346656037, prime 1099511628211. (Files of flow
// checkpoint format version 1 used an offset basis one digit short; they are no longer read.)
inline constexpr uint64_t kFnv1a64OffsetBasis = 14695981039346656037ull;
uint64_t fnv1a64(const void* data, size_t bytes, uint64_t hash = kFnv1a64OffsetBasis);

}  // namespace ff
