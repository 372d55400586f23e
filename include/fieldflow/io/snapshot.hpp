#pragma once
// Gadget-2/3/4 HDF5 snapshots as Gadget and Quijote write them, possibly split over files
// base.0.hdf5, base.1.hdf5, ... (or a single base.hdf5). Positions come out in Mpc/h, wrapped
// periodically into [0, box_size_mpch).
#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "fieldflow/core/provenance.hpp"

namespace ff {

enum class LengthUnit { automatic, kpc_h, mpc_h };
LengthUnit parse_length_unit(
    const std::string& text);  // "auto", "kpc/h", "mpc/h" (case-insensitive)
const char* to_string(LengthUnit unit);

struct SnapshotHeader {
  double box_size_file_units = 0.0;  // BoxSize as stored
  double box_size_mpch = 0.0;
  double redshift = 0.0;
  double time = 1.0;  // scale factor a
  double omega_m = 0.0;
  double omega_lambda = 0.0;
  double hubble_param = 0.0;
  std::array<double, 6> mass_table{};        // 1e10 Msun/h
  std::array<uint64_t, 6> num_part_total{};  // low and high words combined
  int num_files = 1;
};

class SnapshotReader {
 public:
  // path: "snap_004", "snap_004.hdf5" or "snap_004.0.hdf5" (then every snap_004.{i}.hdf5 is read).
  explicit SnapshotReader(const std::string& path, LengthUnit unit = LengthUnit::automatic,
                          int part_type = 1);

  const SnapshotHeader& header() const { return header_; }
  const std::vector<std::string>& files() const { return files_; }
  uint64_t particle_count() const { return header_.num_part_total[part_type_]; }
  LengthUnit length_unit() const { return unit_; }  // kpc_h or mpc_h, never automatic
  const std::string& length_unit_reason() const { return unit_reason_; }  // for the printout
  double particle_mass() const;  // 1e10 Msun/h, from MassTable or the Masses dataset's first entry

  // Streams positions (Mpc/h, wrapped into [0, L)) in chunks of at most max_chunk particles,
  // never holding more than one chunk of one file at a time.
  void for_each_position_chunk(
      const std::function<void(std::span<const std::array<double, 3>>)>& fn,
      size_t max_chunk = size_t(1) << 21) const;

  // Whole arrays, for small snapshots and tests.
  std::vector<std::array<double, 3>> read_positions_mpch() const;
  std::vector<std::array<double, 3>> read_velocities() const;  // as stored: v_pec / sqrt(a), km/s
  std::vector<uint64_t> read_ids() const;

 private:
  std::vector<std::string> files_;
  SnapshotHeader header_;
  int part_type_;
  LengthUnit unit_;
  std::string unit_reason_;
};

struct SnapshotWriteOptions {
  int num_files = 1;
  LengthUnit unit = LengthUnit::kpc_h;  // Quijote's and Gadget's default
  bool blosc_compression = false;       // bitshuffle + zstd through the HDF5 Blosc filter plugin
  bool gadget4_parameters = true;  // also write /Parameters (Omega0, HubbleParam, UnitLength_in_cm)
  bool double_precision = false;   // positions and velocities as float64 instead of float32
};

// Writes a PartType1-only snapshot. base "out/snap_000" gives out/snap_000.hdf5 (one file) or
// out/snap_000.{i}.hdf5. Positions in Mpc/h (converted to opts.unit), velocities v_pec/sqrt(a)
// km/s. header.num_part_total and num_files are filled in from the data and opts. Each file is
// atomic.
void write_snapshot(const std::string& base, SnapshotHeader header,
                    std::span<const std::array<double, 3>> positions_mpch,
                    std::span<const std::array<double, 3>> velocities,
                    std::span<const uint64_t> ids, const SnapshotWriteOptions& opts = {},
                    const Provenance& provenance = ff::provenance());

}  // namespace ff
