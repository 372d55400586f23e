#include "fieldflow/io/snapshot.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <type_traits>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/memory.hpp"
#include "fieldflow/core/periodic.hpp"
#include "fieldflow/core/text.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/io/hdf5.hpp"
#include "fieldflow/io/provenance.hpp"

namespace ff {

namespace fs = std::filesystem;

namespace {

constexpr double kKpcInCm = 3.085678e21;
constexpr double kMpcInCm = 3.085678e24;
// Gadget's BoxSize in kpc/h is >= 5000 for any box worth painting (5 Mpc/h); in Mpc/h it is
// below 5000 for every simulation we know (Uchuu: 2000, Quijote: 1000).
constexpr double kKpcBoxThreshold = 5000.0;
// Rows of Coordinates/Velocities per chunk on write: Quijote's chunking.
constexpr hsize_t kChunkRows = 65536;

std::string part_group(int part_type) {
  return "PartType" + std::to_string(part_type);
}

bool is_regular_file(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

// The 6-entry NumPart arrays; Gadget-2 writes them as int32/uint32, Gadget-4 as uint64.
std::array<uint64_t, 6> read_num_part(const h5::Group& header, const std::string& attr) {
  const std::vector<int64_t> v = header.read_attribute_array<int64_t>(attr);
  if (v.size() != 6)
    header.fail(attr + " has " + std::to_string(v.size()) + " entries, expected 6");
  std::array<uint64_t, 6> out{};
  for (int i = 0; i < 6; ++i) {
    if (v[size_t(i)] < 0) header.fail(attr + " has a negative entry");
    out[size_t(i)] = uint64_t(v[size_t(i)]);
  }
  return out;
}

// Reads attr from /Header, else from /Parameters (Gadget-4 keeps cosmology there).
bool read_header_or_parameters(const h5::File& file, const std::string& attr, double& value) {
  for (const char* group : {"Header", "Parameters"}) {
    if (!file.root().has(group)) continue;
    const h5::Group g = file.root().open_group(group);
    if (g.has_attribute(attr)) {
      value = g.read_attribute<double>(attr);
      return true;
    }
  }
  return false;
}

struct FileHeader {
  SnapshotHeader header;
  std::array<uint64_t, 6> num_part_this_file{};
  bool has_unit_length = false;
  double unit_length_in_cm = 0.0;
};

FileHeader read_file_header(const h5::File& file) {
  FileHeader fh;
  SnapshotHeader& h = fh.header;
  if (!file.root().has("Header"))
    throw Error(file.path(), "no /Header group (not a Gadget snapshot?)");
  const h5::Group header = file.root().open_group("Header");
  h.box_size_file_units = header.read_attribute<double>("BoxSize");
  if (!(h.box_size_file_units > 0) || !std::isfinite(h.box_size_file_units))
    throw Error(file.path(), "/Header: BoxSize is " + format_number(h.box_size_file_units) +
                                 ", expected a positive length");
  fh.num_part_this_file = read_num_part(header, "NumPart_ThisFile");
  const std::array<uint64_t, 6> total = read_num_part(header, "NumPart_Total");
  std::array<uint64_t, 6> high{};
  if (header.has_attribute("NumPart_Total_HighWord"))
    high = read_num_part(header, "NumPart_Total_HighWord");
  for (size_t i = 0; i < 6; ++i) {
    // Gadget-2/3: NumPart_Total holds the low 32 bits. Gadget-4: the full uint64 count (and no
    // high word); fieldflow writes the full count with zero high words, which reads the same.
    h.num_part_total[i] = total[i] >= (uint64_t(1) << 32) ? total[i] : total[i] + (high[i] << 32);
  }
  const int64_t num_files = header.read_attribute<int64_t>("NumFilesPerSnapshot");
  if (num_files < 1 || num_files > 1000000)
    throw Error(file.path(), "/Header: NumFilesPerSnapshot is " + std::to_string(num_files));
  h.num_files = int(num_files);
  h.redshift = header.has_attribute("Redshift") ? header.read_attribute<double>("Redshift") : 0.0;
  h.time = header.has_attribute("Time") ? header.read_attribute<double>("Time")
                                        : 1.0 / (1.0 + h.redshift);
  if (header.has_attribute("MassTable")) {
    const std::vector<double> mt = header.read_attribute_array<double>("MassTable");
    if (mt.size() != 6)
      header.fail("MassTable has " + std::to_string(mt.size()) + " entries, expected 6");
    std::copy(mt.begin(), mt.end(), h.mass_table.begin());
  }
  read_header_or_parameters(file, "Omega0", h.omega_m);
  read_header_or_parameters(file, "OmegaLambda", h.omega_lambda);
  read_header_or_parameters(file, "HubbleParam", h.hubble_param);
  fh.has_unit_length = read_header_or_parameters(file, "UnitLength_in_cm", fh.unit_length_in_cm);
  return fh;
}

// "dir/snap_004.3.hdf5" -> base "dir/snap_004"; false for names not of the form BASE.{i}.hdf5.
bool numbered_part_base(const std::string& path, std::string& base) {
  const std::string suffix = ".hdf5";
  if (!path.ends_with(suffix)) return false;
  const std::string stem = path.substr(0, path.size() - suffix.size());
  const size_t dot = stem.rfind('.');
  if (dot == std::string::npos || dot + 1 == stem.size()) return false;
  for (size_t i = dot + 1; i < stem.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(stem[i]))) return false;
  base = stem.substr(0, dot);
  return !base.empty();
}

// Resolves the user's path to the list of files of the snapshot.
std::vector<std::string> single_snapshot_file(const std::string& path) {
  const h5::File f = h5::File::open(path);
  if (!f.root().has("Header")) throw Error(path, "no /Header group (not a Gadget snapshot?)");
  const int64_t num_files =
      f.root().open_group("Header").read_attribute<int64_t>("NumFilesPerSnapshot");
  if (num_files != 1)
    throw Error(path, "NumFilesPerSnapshot is " + std::to_string(num_files) +
                          " but the file is not named BASE.0.hdf5, BASE.1.hdf5, ...");
  return {path};
}

std::vector<std::string> find_snapshot_files(const std::string& path) {
  std::string base;
  if (is_regular_file(path)) {
    // snap_004.3.hdf5 stands for all parts of snap_004; any other file is a whole snapshot.
    if (!numbered_part_base(path, base) || !is_regular_file(base + ".0.hdf5"))
      return single_snapshot_file(path);
  } else {
    base = path;
    const std::string suffix = ".hdf5";
    if (base.size() > suffix.size() && base.ends_with(suffix))
      base.resize(base.size() - suffix.size());
    if (is_regular_file(base + ".hdf5")) return single_snapshot_file(base + ".hdf5");
    if (!is_regular_file(base + ".0.hdf5")) {
      std::error_code ec;
      if (std::filesystem::is_directory(path, ec))
        throw Error(path,
                    "is a folder; give the snapshot's file (snap_004.hdf5) or its base name "
                    "(snap_004)");
      if (std::filesystem::exists(path, ec))
        throw Error(path, "is not a regular file (a device, FIFO or socket)");
      throw Error(path,
                  "no such snapshot: neither " + base + ".hdf5 nor " + base + ".0.hdf5 exists");
    }
  }
  const std::string first = base + ".0.hdf5";
  const h5::File f = h5::File::open(first);
  if (!f.root().has("Header")) throw Error(first, "no /Header group (not a Gadget snapshot?)");
  const int64_t num_files =
      f.root().open_group("Header").read_attribute<int64_t>("NumFilesPerSnapshot");
  if (num_files < 1 || num_files > 1000000)
    throw Error(first, "/Header: NumFilesPerSnapshot is " + std::to_string(num_files));
  std::vector<std::string> files;
  for (int64_t i = 0; i < num_files; ++i) {
    const std::string name = base + "." + std::to_string(i) + ".hdf5";
    if (!is_regular_file(name))
      throw Error(name, "missing part " + std::to_string(i) + " of a snapshot in " +
                            std::to_string(num_files) + " files (NumFilesPerSnapshot in " + first +
                            ")");
    files.push_back(name);
  }
  return files;
}

// File-unit lengths to Mpc/h: kpc/h divides by 1000 (exact for integers, unlike * 1e-3).
double to_mpch(double x, LengthUnit unit) {
  return unit == LengthUnit::kpc_h ? x / 1000.0 : x;
}

}  // namespace

LengthUnit parse_length_unit(const std::string& text) {
  std::string t;
  for (char c : text) t += char(std::tolower(static_cast<unsigned char>(c)));
  if (t == "auto" || t == "automatic") return LengthUnit::automatic;
  if (t == "kpc/h" || t == "kpc_h" || t == "kpch") return LengthUnit::kpc_h;
  if (t == "mpc/h" || t == "mpc_h" || t == "mpch") return LengthUnit::mpc_h;
  throw Error("--length-unit", "expected auto, kpc/h or mpc/h, got \"" + text + "\"");
}

const char* to_string(LengthUnit unit) {
  switch (unit) {
    case LengthUnit::automatic:
      return "auto";
    case LengthUnit::kpc_h:
      return "kpc/h";
    case LengthUnit::mpc_h:
      return "Mpc/h";
  }
  return "?";
}

SnapshotReader::SnapshotReader(const std::string& path, LengthUnit unit, int part_type)
    : part_type_(part_type), unit_(unit) {
  if (part_type < 0 || part_type > 5)
    throw Error(path, "particle type " + std::to_string(part_type) + " is not in 0..5");
  files_ = find_snapshot_files(path);
  std::array<uint64_t, 6> sum{};
  FileHeader first;
  for (size_t i = 0; i < files_.size(); ++i) {
    const h5::File f = h5::File::open(files_[i]);
    FileHeader fh = read_file_header(f);
    if (i == 0) {
      first = fh;
    } else if (fh.header.box_size_file_units != first.header.box_size_file_units) {
      throw Error(files_[i],
                  "BoxSize " + format_number(fh.header.box_size_file_units) + " differs from " +
                      format_number(first.header.box_size_file_units) + " in " + files_[0]);
    }
    if (size_t(fh.header.num_files) != files_.size())
      throw Error(files_[i], "NumFilesPerSnapshot is " + std::to_string(fh.header.num_files) +
                                 " but the snapshot has " + std::to_string(files_.size()) +
                                 " file(s)");
    for (size_t t = 0; t < 6; ++t) sum[t] += fh.num_part_this_file[t];
    // The dataset must hold what the header promises.
    const uint64_t count = fh.num_part_this_file[size_t(part_type)];
    if (count > 0) {
      const std::string group = part_group(part_type);
      const h5::Dataset coords = f.root().open_dataset(group + "/Coordinates");
      const std::vector<hsize_t> shape = coords.shape();
      if (shape.size() != 2 || shape[1] != 3 || shape[0] != count)
        throw Error(files_[i], "/" + group + "/Coordinates has shape " +
                                   (shape.size() == 2
                                        ? std::to_string(shape[0]) + "x" + std::to_string(shape[1])
                                        : std::to_string(shape.size()) + "-d") +
                                   ", expected " + std::to_string(count) + "x3 (NumPart_ThisFile)");
      coords.require_filters();
    }
  }
  header_ = first.header;
  const uint64_t total = header_.num_part_total[size_t(part_type)];
  if (sum[size_t(part_type)] != total)
    throw Error(files_[0], "NumPart_ThisFile of type " + std::to_string(part_type) +
                               " adds up to " + std::to_string(sum[size_t(part_type)]) + " over " +
                               std::to_string(files_.size()) + " file(s), but NumPart_Total is " +
                               std::to_string(total));

  const double box = header_.box_size_file_units;
  if (unit == LengthUnit::automatic) {
    if (first.has_unit_length) {
      const double u = first.unit_length_in_cm;
      if (std::abs(u / kKpcInCm - 1.0) < 0.01) {
        unit_ = LengthUnit::kpc_h;
      } else if (std::abs(u / kMpcInCm - 1.0) < 0.01) {
        unit_ = LengthUnit::mpc_h;
      } else {
        throw Error(files_[0], "UnitLength_in_cm is " + format_number(u) +
                                   ", neither kpc (3.085678e21) nor Mpc (3.085678e24): "
                                   "give --length-unit kpc/h or mpc/h");
      }
      unit_reason_ = "UnitLength_in_cm " + format_number(u);
    } else if (box > kKpcBoxThreshold) {
      unit_ = LengthUnit::kpc_h;
      unit_reason_ = "BoxSize " + format_number(box) + " > " + format_number(kKpcBoxThreshold) +
                     ": assumed kpc/h";
    } else {
      unit_ = LengthUnit::mpc_h;
      unit_reason_ = "BoxSize " + format_number(box) + " <= " + format_number(kKpcBoxThreshold) +
                     ": assumed Mpc/h";
    }
  } else {
    unit_reason_ = "set by --length-unit";
  }
  header_.box_size_mpch = to_mpch(box, unit_);
}

double SnapshotReader::particle_mass() const {
  const double m = header_.mass_table[size_t(part_type_)];
  if (m > 0) return m;
  for (const std::string& name : files_) {
    const h5::File f = h5::File::open(name);
    const std::string masses = part_group(part_type_) + "/Masses";
    if (!f.root().has(masses)) continue;
    const h5::Dataset d = f.root().open_dataset(masses);
    if (d.element_count() == 0) continue;
    double first = 0;
    d.read_rows(0, 1, &first);
    return first;
  }
  throw Error(files_[0], "no particle mass: MassTable[" + std::to_string(part_type_) +
                             "] is 0 and there is no Masses dataset");
}

void SnapshotReader::for_each_position_chunk(
    const std::function<void(std::span<const std::array<double, 3>>)>& fn, size_t max_chunk) const {
  if (max_chunk == 0) max_chunk = 1;
  const double box = header_.box_size_mpch;
  const LengthUnit unit = unit_;
  static_assert(sizeof(std::array<double, 3>) == 3 * sizeof(double));
  std::vector<std::array<double, 3>> buffer;
  std::vector<float> staging;
  const std::string dataset = part_group(part_type_) + "/Coordinates";
  for (const std::string& name : files_) {
    const h5::File f = h5::File::open(name);
    const std::array<uint64_t, 6> this_file =
        read_num_part(f.root().open_group("Header"), "NumPart_ThisFile");
    const uint64_t count = this_file[size_t(part_type_)];
    if (count == 0) continue;
    const h5::Dataset coords = f.root().open_dataset(dataset);
    // float32 (Gadget's and Quijote's usual) is read as stored and converted here: HDF5's own
    // conversion of hyperslabs is several times slower than this loop.
    const bool stored_float = coords.stored_type() == h5::ElementType::float32;
    const size_t chunk = size_t(std::min<uint64_t>(count, max_chunk));
    buffer.resize(chunk);
    if (stored_float) staging.resize(3 * chunk);
    for (uint64_t first = 0; first < count; first += max_chunk) {
      const size_t rows = size_t(std::min<uint64_t>(max_chunk, count - first));
      if (stored_float)
        coords.read_rows(first, rows, staging.data());
      else
        coords.read_rows(first, rows, buffer[0].data());
      double* out = buffer[0].data();
      const float* in = staging.data();
      size_t bad = 3 * rows;
#pragma omp parallel for reduction(min : bad) schedule(static)
      for (size_t i = 0; i < 3 * rows; ++i) {
        const double x = to_mpch(stored_float ? double(in[i]) : out[i], unit);
        if (!std::isfinite(x)) bad = std::min(bad, i);
        out[i] = wrap_periodic(x, box);
      }
      if (bad < 3 * rows)
        throw Error(name, "/" + dataset + ": particle " + std::to_string(first + bad / 3) +
                              " has a non-finite coordinate");
      fn(std::span<const std::array<double, 3>>(buffer.data(), rows));
    }
  }
}

std::vector<std::array<double, 3>> SnapshotReader::read_positions_mpch() const {
  std::vector<std::array<double, 3>> out;
  require_memory(double(particle_count()) * 24.0, files_[0],
                 "reading " + std::to_string(particle_count()) + " positions at once");
  out.reserve(size_t(particle_count()));
  for_each_position_chunk([&](std::span<const std::array<double, 3>> chunk) {
    out.insert(out.end(), chunk.begin(), chunk.end());
  });
  return out;
}

namespace {
template <typename T, size_t Width>
void read_all_rows(const std::vector<std::string>& files, int part_type, const std::string& name,
                   std::vector<T>& out, uint64_t total) {
  require_memory(double(total) * Width * sizeof(T), files[0],
                 "reading " + std::to_string(total) + " particles' " + name + " at once");
  out.resize(size_t(total) * Width);
  uint64_t offset = 0;
  for (const std::string& file : files) {
    const h5::File f = h5::File::open(file);
    const uint64_t count =
        read_num_part(f.root().open_group("Header"), "NumPart_ThisFile")[size_t(part_type)];
    if (count == 0) continue;
    const h5::Dataset d = f.root().open_dataset(part_group(part_type) + "/" + name);
    if (d.element_count() != count * Width)
      throw Error(file, "/" + part_group(part_type) + "/" + name + " has " +
                            std::to_string(d.element_count()) + " values, expected " +
                            std::to_string(count * Width));
    d.read_rows(0, count, out.data() + offset * Width);
    offset += count;
  }
}
}  // namespace

std::vector<std::array<double, 3>> SnapshotReader::read_velocities() const {
  std::vector<double> flat;
  read_all_rows<double, 3>(files_, part_type_, "Velocities", flat, particle_count());
  std::vector<std::array<double, 3>> out(flat.size() / 3);
  for (size_t i = 0; i < out.size(); ++i) out[i] = {flat[3 * i], flat[3 * i + 1], flat[3 * i + 2]};
  return out;
}

std::vector<uint64_t> SnapshotReader::read_ids() const {
  std::vector<uint64_t> ids;
  read_all_rows<uint64_t, 1>(files_, part_type_, "ParticleIDs", ids, particle_count());
  return ids;
}

namespace {
// Rows converted and written per block: bounded memory, a whole number of Blosc chunks.
constexpr uint64_t kWriteBlockRows = 16 * kChunkRows;

// Writes dataset name [count, 3] of Real from value(i, d), block by block. With box > 0 the
// values are positions: one that rounds up to the box size when stored as Real becomes 0, since
// Gadget keeps positions in [0, L).
template <typename Real, typename Value>
void write_vectors(h5::Group& part, const char* name, uint64_t count, double box,
                   const h5::DatasetOptions& options, const Value& value) {
  h5::Dataset dataset = part.create_dataset(
      name, std::is_same_v<Real, float> ? h5::ElementType::float32 : h5::ElementType::float64,
      {count, 3}, options);
  std::vector<Real> block(size_t(3 * std::min(count, kWriteBlockRows)));
  for (uint64_t first = 0; first < count; first += kWriteBlockRows) {
    const size_t rows = size_t(std::min(kWriteBlockRows, count - first));
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; ++r) {
      for (int d = 0; d < 3; ++d) {
        Real x = Real(value(first + r, d));
        if (box > 0 && !(double(x) < box)) x = 0;
        block[3 * r + size_t(d)] = x;
      }
    }
    dataset.write_rows(first, rows, block.data());
  }
  dataset.close();
}
}  // namespace

void write_snapshot(const std::string& base, SnapshotHeader header,
                    std::span<const std::array<double, 3>> positions_mpch,
                    std::span<const std::array<double, 3>> velocities,
                    std::span<const uint64_t> ids, const SnapshotWriteOptions& opts,
                    const Provenance& provenance) {
  const uint64_t n = positions_mpch.size();
  if (velocities.size() != n || ids.size() != n)
    throw Error(base, "positions, velocities and IDs differ in length");
  if (opts.num_files < 1) throw Error(base, "num_files must be at least 1");
  if (opts.unit == LengthUnit::automatic) throw Error(base, "choose kpc/h or Mpc/h to write");
  if (!(header.box_size_mpch > 0)) throw Error(base, "box size must be positive");
  if (opts.blosc_compression && !h5::filter_available(h5::kBloscFilter))
    throw Error(base,
                "Blosc compression requested but HDF5 filter 32001 (Blosc) is not available: "
                "install hdf5-filter-plugin-blosc-serial or set HDF5_PLUGIN_PATH");
  const double scale = opts.unit == LengthUnit::kpc_h ? 1000.0 : 1.0;
  header.box_size_file_units = header.box_size_mpch * scale;
  header.num_files = opts.num_files;
  header.num_part_total = {};
  header.num_part_total[1] = n;

  std::vector<uint64_t> total(header.num_part_total.begin(), header.num_part_total.end());
  for (int file_index = 0; file_index < opts.num_files; ++file_index) {
    const uint64_t begin = n * uint64_t(file_index) / uint64_t(opts.num_files);
    const uint64_t end = n * uint64_t(file_index + 1) / uint64_t(opts.num_files);
    const uint64_t count = end - begin;
    const std::string path =
        opts.num_files == 1 ? base + ".hdf5" : base + "." + std::to_string(file_index) + ".hdf5";
    AtomicFile out(path);
    {
      h5::File file = h5::File::create(out);
      write_provenance(file.root(), provenance);
      h5::Group h = file.root().create_group("Header");
      h.write_attribute("BoxSize", header.box_size_file_units);
      std::vector<uint64_t> this_file(6, 0);
      this_file[1] = count;
      h.write_attribute_array("NumPart_ThisFile", this_file);
      h.write_attribute_array("NumPart_Total", total);
      // NumPart_Total holds the full 64-bit count, so the Gadget-2 high words are zero.
      h.write_attribute_array("NumPart_Total_HighWord", std::vector<uint32_t>(6, 0));
      h.write_attribute("NumFilesPerSnapshot", int32_t(opts.num_files));
      h.write_attribute("Redshift", header.redshift);
      h.write_attribute("Time", header.time);
      h.write_attribute("Omega0", header.omega_m);
      h.write_attribute("OmegaLambda", header.omega_lambda);
      h.write_attribute("HubbleParam", header.hubble_param);
      h.write_attribute_array(
          "MassTable", std::vector<double>(header.mass_table.begin(), header.mass_table.end()));
      if (opts.gadget4_parameters) {
        h5::Group p = file.root().create_group("Parameters");
        p.write_attribute("Omega0", header.omega_m);
        p.write_attribute("OmegaLambda", header.omega_lambda);
        p.write_attribute("HubbleParam", header.hubble_param);
        p.write_attribute("BoxSize", header.box_size_file_units);
        p.write_attribute("UnitLength_in_cm", opts.unit == LengthUnit::kpc_h ? kKpcInCm : kMpcInCm);
        p.write_attribute("UnitVelocity_in_cm_per_s", 1e5);
        p.write_attribute("UnitMass_in_g", 1.989e43);
      }
      h5::Group part = file.root().create_group("PartType1");
      h5::DatasetOptions options;
      if (opts.blosc_compression && count > 0) {
        options.chunk_rows = kChunkRows;
        options.blosc_zstd = true;
      }
      const double box_mpch = header.box_size_mpch, box_file = header.box_size_file_units;
      const auto position = [&](uint64_t i, int d) {
        return wrap_periodic(positions_mpch[begin + i][size_t(d)], box_mpch) * scale;
      };
      const auto velocity = [&](uint64_t i, int d) { return velocities[begin + i][size_t(d)]; };
      if (opts.double_precision) {
        write_vectors<double>(part, "Coordinates", count, box_file, options, position);
        write_vectors<double>(part, "Velocities", count, 0.0, options, velocity);
      } else {
        write_vectors<float>(part, "Coordinates", count, box_file, options, position);
        write_vectors<float>(part, "Velocities", count, 0.0, options, velocity);
      }
      part.create_dataset("ParticleIDs", h5::ElementType::uint64, {count}, options)
          .write(ids.data() + begin);
      part = h5::Group();
      h = h5::Group();
      file.close();
    }
    out.commit();
  }
}

}  // namespace ff
