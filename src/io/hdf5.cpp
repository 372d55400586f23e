#include "fieldflow/io/hdf5.hpp"

#include <H5PLpublic.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "fieldflow/core/error.hpp"
#include "fieldflow/io/atomic_file.hpp"

namespace ff::h5 {

namespace {

// Debian's hdf5-filter-plugin-blosc-serial installs here; HDF5 searches it by default unless
// HDF5_PLUGIN_PATH replaces the default list, so we add it when it is missing. Prepended, not
// appended: HDF5 1.10 abandons the search at the first folder it cannot open.
#ifdef H5_DEFAULT_PLUGINDIR
constexpr const char* kPluginDir = H5_DEFAULT_PLUGINDIR;
#else
constexpr const char* kPluginDir = "/usr/lib/x86_64-linux-gnu/hdf5/serial/plugins";
#endif

void add_plugin_dir(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return;
  unsigned int n = 0;
  if (H5PLsize(&n) < 0) return;
  for (unsigned int i = 0; i < n; ++i) {
    char buf[4096];
    const ssize_t len = H5PLget(i, buf, sizeof buf);
    if (len > 0 && std::string(buf) == dir) return;
  }
  H5PLprepend(dir.c_str());
}

template <typename T>
hid_t native_type();
template <>
hid_t native_type<int32_t>() {
  return H5T_NATIVE_INT32;
}
template <>
hid_t native_type<uint32_t>() {
  return H5T_NATIVE_UINT32;
}
template <>
hid_t native_type<int64_t>() {
  return H5T_NATIVE_INT64;
}
template <>
hid_t native_type<uint64_t>() {
  return H5T_NATIVE_UINT64;
}
template <>
hid_t native_type<float>() {
  return H5T_NATIVE_FLOAT;
}
template <>
hid_t native_type<double>() {
  return H5T_NATIVE_DOUBLE;
}

// File-side types: little-endian, as Gadget, h5py and numpy write on x86.
hid_t file_type(ElementType t) {
  switch (t) {
    case ElementType::int32:
      return H5T_STD_I32LE;
    case ElementType::uint32:
      return H5T_STD_U32LE;
    case ElementType::int64:
      return H5T_STD_I64LE;
    case ElementType::uint64:
      return H5T_STD_U64LE;
    case ElementType::float32:
      return H5T_IEEE_F32LE;
    case ElementType::float64:
      return H5T_IEEE_F64LE;
  }
  return H5T_IEEE_F64LE;
}

// HDF5's system-call failures read "file write failed: time = ..., filename = '.x.tmp.7.0', ...,
// errno = 28, error message = 'No space left on device', buf = ...": keep only the system's
// message, which names neither the temporary file nor a time.
std::string concise(const std::string& detail) {
  const std::string marker = "error message = '";
  const size_t at = detail.find(marker);
  if (at == std::string::npos) return detail;
  const size_t begin = at + marker.size();
  const size_t end = detail.find('\'', begin);
  return detail.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

std::string with_hdf5_message(const std::string& what) {
  const std::string detail = concise(last_error_message());
  return detail.empty() ? what : what + " (HDF5: " + detail + ")";
}

herr_t walk_innermost(unsigned n, const H5E_error2_t* err, void* data) {
  if (n == 0 && err->desc) *static_cast<std::string*>(data) = err->desc;
  return 0;
}

herr_t walk_all(unsigned, const H5E_error2_t* err, void* data) {
  if (err->desc) *static_cast<std::string*>(data) += std::string(err->desc) + "\n";
  return 0;
}

// Another process holds HDF5's lock on the file (it is being written).
bool failed_on_lock() {
  std::string stack;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_all, &stack);
  return stack.find("unable to lock file") != std::string::npos;
}

// HDF5 converts numbers between any two layouts, but its converter trusts the stored layout's
// bit fields: a damaged or forged float type (fields beyond its size) makes it read outside its
// buffers (found by tests/fuzz_io_readers). Only the standard integer and IEEE layouts are read.
bool is_standard_number(hid_t type) {
  static const hid_t* standard[] = {
      &H5T_IEEE_F32LE_g, &H5T_IEEE_F32BE_g, &H5T_IEEE_F64LE_g, &H5T_IEEE_F64BE_g, &H5T_STD_I8LE_g,
      &H5T_STD_I8BE_g,   &H5T_STD_I16LE_g,  &H5T_STD_I16BE_g,  &H5T_STD_I32LE_g,  &H5T_STD_I32BE_g,
      &H5T_STD_I64LE_g,  &H5T_STD_I64BE_g,  &H5T_STD_U8LE_g,   &H5T_STD_U8BE_g,   &H5T_STD_U16LE_g,
      &H5T_STD_U16BE_g,  &H5T_STD_U32LE_g,  &H5T_STD_U32BE_g,  &H5T_STD_U64LE_g,  &H5T_STD_U64BE_g};
  for (const hid_t* t : standard)
    if (H5Tequal(type, *t) > 0) return true;
  return false;
}

}  // namespace

void initialize() {
  static std::once_flag once;
  std::call_once(once, [] {
    H5open();
    add_plugin_dir(kPluginDir);
    // Blosc keeps its global context in malloc'd memory it never frees; HDF5 unloads the plugin
    // (and libblosc) at exit, after which LeakSanitizer reports that memory as leaked. Pinning
    // libblosc in memory keeps it reachable. A no-op where libblosc is not installed.
    dlopen("libblosc.so.1", RTLD_LAZY | RTLD_NODELETE);
  });
  // Per thread in thread-safe builds, so set it every time (cheap).
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

std::string last_error_message() {
  std::string message;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_innermost, &message);
  return message;
}

const char* to_string(ElementType type) {
  switch (type) {
    case ElementType::int32:
      return "int32";
    case ElementType::uint32:
      return "uint32";
    case ElementType::int64:
      return "int64";
    case ElementType::uint64:
      return "uint64";
    case ElementType::float32:
      return "float32";
    case ElementType::float64:
      return "float64";
  }
  return "?";
}

bool filter_available(H5Z_filter_t filter) {
  initialize();
  return H5Zfilter_avail(filter) > 0;
}

// ---- Handle ----

void Handle::reset() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE:
      H5Fclose(id_);
      break;
    case H5I_GROUP:
      H5Gclose(id_);
      break;
    case H5I_DATASET:
      H5Dclose(id_);
      break;
    case H5I_ATTR:
      H5Aclose(id_);
      break;
    case H5I_DATASPACE:
      H5Sclose(id_);
      break;
    case H5I_DATATYPE:
      H5Tclose(id_);
      break;
    case H5I_GENPROP_LST:
      H5Pclose(id_);
      break;
    default:
      break;
  }
  id_ = H5I_INVALID_HID;
}

// ---- Object: attributes ----

std::string Object::where() const {
  return name_ == "/" ? std::string() : name_;
}

std::string Object::child_name(const std::string& child) const {
  if (!child.empty() && child[0] == '/') return child;
  return name_ == "/" ? "/" + child : name_ + "/" + child;
}

void Object::fail(const std::string& what) const {
  const std::string w = where();
  throw Error(file_, with_hdf5_message(w.empty() ? what : w + ": " + what));
}

bool Object::has_attribute(const std::string& attr) const {
  return H5Aexists(id(), attr.c_str()) > 0;
}

std::vector<std::string> Object::attribute_names() const {
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->push_back(name);
    return 0;
  };
  hsize_t idx = 0;
  if (H5Aiterate2(id(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect, &names) < 0)
    fail("cannot list the attributes");
  return names;
}

template <typename T>
std::vector<T> Object::read_attribute_array(const std::string& attr) const {
  if (!has_attribute(attr)) fail("missing attribute " + attr);
  Handle a(H5Aopen(id(), attr.c_str(), H5P_DEFAULT));
  if (!a.valid()) fail("cannot open attribute " + attr);
  Handle space(H5Aget_space(a.id()));
  const hssize_t n = H5Sget_simple_extent_npoints(space.id());
  if (n < 0) fail("cannot read the shape of attribute " + attr);
  Handle type(H5Aget_type(a.id()));
  const H5T_class_t cls = H5Tget_class(type.id());
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) fail("attribute " + attr + " is not numeric");
  if (!is_standard_number(type.id()))
    fail("attribute " + attr + " has a damaged or non-standard number type");
  std::vector<T> values(static_cast<size_t>(n));
  if (n > 0 && H5Aread(a.id(), native_type<T>(), values.data()) < 0)
    fail("cannot read attribute " + attr + " as a number");
  return values;
}

template <typename T>
T Object::read_attribute(const std::string& attr) const {
  const std::vector<T> values = read_attribute_array<T>(attr);
  if (values.size() != 1)
    fail("attribute " + attr + " has " + std::to_string(values.size()) + " elements, expected one");
  return values[0];
}

std::string Object::read_attribute_string(const std::string& attr) const {
  if (!has_attribute(attr)) fail("missing attribute " + attr);
  Handle a(H5Aopen(id(), attr.c_str(), H5P_DEFAULT));
  if (!a.valid()) fail("cannot open attribute " + attr);
  Handle type(H5Aget_type(a.id()));
  if (H5Tget_class(type.id()) != H5T_STRING) fail("attribute " + attr + " is not a string");
  if (H5Tis_variable_str(type.id()) > 0) {
    // h5py's default for str attributes.
    Handle memtype(H5Tcopy(H5T_C_S1));
    H5Tset_size(memtype.id(), H5T_VARIABLE);
    H5Tset_cset(memtype.id(), H5Tget_cset(type.id()));
    char* value = nullptr;
    if (H5Aread(a.id(), memtype.id(), &value) < 0) fail("cannot read attribute " + attr);
    std::string out = value ? value : "";
    Handle space(H5Aget_space(a.id()));
    H5Dvlen_reclaim(memtype.id(), space.id(), H5P_DEFAULT, &value);
    return out;
  }
  const size_t size = H5Tget_size(type.id());
  Handle memtype(H5Tcopy(H5T_C_S1));
  H5Tset_size(memtype.id(), size + 1);
  H5Tset_strpad(memtype.id(), H5T_STR_NULLTERM);
  H5Tset_cset(memtype.id(), H5Tget_cset(type.id()));
  std::vector<char> buf(size + 1, '\0');
  if (H5Aread(a.id(), memtype.id(), buf.data()) < 0) fail("cannot read attribute " + attr);
  return std::string(buf.data());
}

template <typename T>
void Object::write_attribute(const std::string& attr, T value) {
  write_attribute_array<T>(attr, std::vector<T>{value});
}

template <typename T>
void Object::write_attribute_array(const std::string& attr, const std::vector<T>& values) {
  if (has_attribute(attr) && H5Adelete(id(), attr.c_str()) < 0)
    fail("cannot replace attribute " + attr);
  Handle space;
  if (values.size() == 1) {
    space = Handle(H5Screate(H5S_SCALAR));
  } else {
    const hsize_t dims[1] = {values.size()};
    space = Handle(H5Screate_simple(1, dims, nullptr));
  }
  Handle a(H5Acreate2(id(), attr.c_str(), native_type<T>(), space.id(), H5P_DEFAULT, H5P_DEFAULT));
  if (!a.valid()) fail("cannot create attribute " + attr);
  if (!values.empty() && H5Awrite(a.id(), native_type<T>(), values.data()) < 0)
    fail("cannot write attribute " + attr);
}

void Object::write_attribute_string(const std::string& attr, const std::string& value) {
  if (has_attribute(attr) && H5Adelete(id(), attr.c_str()) < 0)
    fail("cannot replace attribute " + attr);
  Handle type(H5Tcopy(H5T_C_S1));
  H5Tset_size(type.id(), value.empty() ? 1 : value.size());
  H5Tset_strpad(type.id(), H5T_STR_NULLPAD);
  H5Tset_cset(type.id(), H5T_CSET_UTF8);
  Handle space(H5Screate(H5S_SCALAR));
  Handle a(H5Acreate2(id(), attr.c_str(), type.id(), space.id(), H5P_DEFAULT, H5P_DEFAULT));
  if (!a.valid()) fail("cannot create attribute " + attr);
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  if (H5Awrite(a.id(), type.id(), padded.data()) < 0) fail("cannot write attribute " + attr);
}

#define FF_H5_ATTRIBUTE_TYPES(T)                                                     \
  template T Object::read_attribute<T>(const std::string&) const;                    \
  template std::vector<T> Object::read_attribute_array<T>(const std::string&) const; \
  template void Object::write_attribute<T>(const std::string&, T);                   \
  template void Object::write_attribute_array<T>(const std::string&, const std::vector<T>&);
FF_H5_ATTRIBUTE_TYPES(int32_t)
FF_H5_ATTRIBUTE_TYPES(uint32_t)
FF_H5_ATTRIBUTE_TYPES(int64_t)
FF_H5_ATTRIBUTE_TYPES(uint64_t)
FF_H5_ATTRIBUTE_TYPES(float)
FF_H5_ATTRIBUTE_TYPES(double)
#undef FF_H5_ATTRIBUTE_TYPES

// ---- Group ----

bool Group::has(const std::string& path) const {
  // H5Lexists needs every intermediate link to exist: check each prefix.
  const std::string full = child_name(path);
  size_t pos = 1;
  while (pos <= full.size()) {
    const size_t next = full.find('/', pos);
    const std::string prefix = full.substr(0, next);
    if (H5Lexists(id(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (next == std::string::npos) break;
    pos = next + 1;
  }
  return true;
}

Group Group::open_group(const std::string& path) const {
  const std::string full = child_name(path);
  if (!has(path)) throw Error(file_, "missing group " + full);
  Handle g(H5Gopen2(id(), full.c_str(), H5P_DEFAULT));
  if (!g.valid()) throw Error(file_, with_hdf5_message("cannot open group " + full));
  return Group(std::move(g), file_, full);
}

Group Group::create_group(const std::string& path) {
  const std::string full = child_name(path);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  // No modification times in object headers: the same data gives a byte-identical file.
  Handle gcpl(H5Pcreate(H5P_GROUP_CREATE));
  H5Pset_obj_track_times(gcpl.id(), 0);
  Handle g(H5Gcreate2(id(), full.c_str(), lcpl.id(), gcpl.id(), H5P_DEFAULT));
  if (!g.valid()) throw Error(file_, with_hdf5_message("cannot create group " + full));
  return Group(std::move(g), file_, full);
}

Dataset Group::open_dataset(const std::string& path) const {
  const std::string full = child_name(path);
  if (!has(path)) throw Error(file_, "missing dataset " + full);
  Handle d(H5Dopen2(id(), full.c_str(), H5P_DEFAULT));
  if (!d.valid()) throw Error(file_, with_hdf5_message("cannot open dataset " + full));
  return Dataset(std::move(d), file_, full);
}

Dataset Group::create_dataset(const std::string& path, ElementType stored,
                              const std::vector<hsize_t>& shape, const DatasetOptions& options) {
  const std::string full = child_name(path);
  auto fail_create = [&](const std::string& why) -> void {
    throw Error(file_, with_hdf5_message("cannot create dataset " + full + ": " + why));
  };
  if (shape.empty()) fail_create("no dimensions");
  Handle space(H5Screate_simple(int(shape.size()), shape.data(), nullptr));
  if (!space.valid()) fail_create("bad shape");
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  H5Pset_obj_track_times(dcpl.id(), 0);  // byte-identical files for identical data
  const bool compress = options.deflate_level > 0 || options.blosc_zstd;
  if (compress && options.chunk_rows == 0) fail_create("compression needs chunk_rows > 0");
  if (options.chunk_rows > 0 && shape[0] > 0) {
    std::vector<hsize_t> chunk = shape;
    chunk[0] = std::min<hsize_t>(options.chunk_rows, shape[0]);
    for (hsize_t& c : chunk) c = std::max<hsize_t>(c, 1);
    if (H5Pset_chunk(dcpl.id(), int(chunk.size()), chunk.data()) < 0) fail_create("bad chunk");
    if (options.blosc_zstd) {
      if (!filter_available(kBloscFilter))
        fail_create(
            "the Blosc filter (HDF5 filter 32001) is not available; install "
            "hdf5-filter-plugin-blosc-serial or set HDF5_PLUGIN_PATH");
      // cd_values as hdf5-blosc reads them: [0..3] filled in by the filter (version, format,
      // type size, chunk bytes), then compression level 5, shuffle 2 = bitshuffle,
      // compressor 5 = zstd: what Quijote's files carry.
      // Optional: a chunk Blosc cannot shrink (small, incompressible) is stored as it is
      // (flagged per chunk) instead of failing the write.
      const unsigned int cd[7] = {0, 0, 0, 0, 5, 2, 5};
      if (H5Pset_filter(dcpl.id(), kBloscFilter, H5Z_FLAG_OPTIONAL, 7, cd) < 0)
        fail_create("cannot set the Blosc filter");
    }
    if (options.deflate_level > 0) {
      H5Pset_shuffle(dcpl.id());
      if (H5Pset_deflate(dcpl.id(), unsigned(std::min(options.deflate_level, 9))) < 0)
        fail_create("cannot set gzip compression");
    }
  }
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  Handle d(H5Dcreate2(id(), full.c_str(), file_type(stored), space.id(), lcpl.id(), dcpl.id(),
                      H5P_DEFAULT));
  if (!d.valid()) fail_create(to_string(stored));
  return Dataset(std::move(d), file_, full);
}

std::vector<std::string> Group::children() const {
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5L_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->push_back(name);
    return 0;
  };
  hsize_t idx = 0;
  if (H5Literate(id(), H5_INDEX_NAME, H5_ITER_INC, &idx, collect, &names) < 0)
    fail("cannot list the members");
  return names;
}

// ---- Dataset ----

std::vector<hsize_t> Dataset::shape() const {
  Handle space(H5Dget_space(id()));
  const int rank = H5Sget_simple_extent_ndims(space.id());
  if (rank < 0) fail("cannot read the shape");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  return dims;
}

size_t Dataset::element_count() const {
  size_t n = 1;
  for (hsize_t d : shape()) n *= size_t(d);
  return n;
}

ElementType Dataset::stored_type() const {
  Handle type(H5Dget_type(id()));
  const H5T_class_t cls = H5Tget_class(type.id());
  const size_t size = H5Tget_size(type.id());
  if (cls == H5T_FLOAT) {
    if (size == 4) return ElementType::float32;
    if (size == 8) return ElementType::float64;
  } else if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(type.id()) == H5T_SGN_2;
    if (size == 4) return is_signed ? ElementType::int32 : ElementType::uint32;
    if (size == 8) return is_signed ? ElementType::int64 : ElementType::uint64;
  }
  fail("unsupported element type " + type_name());
}

std::string Dataset::type_name() const {
  Handle type(H5Dget_type(id()));
  const H5T_class_t cls = H5Tget_class(type.id());
  const std::string bits = std::to_string(8 * H5Tget_size(type.id()));
  switch (cls) {
    case H5T_INTEGER:
      return (H5Tget_sign(type.id()) == H5T_SGN_2 ? "int" : "uint") + bits;
    case H5T_FLOAT:
      return "float" + bits;
    case H5T_COMPOUND:
      return "a compound type (complex numbers or records)";
    case H5T_STRING:
      return "strings";
    case H5T_ARRAY:
      return "an array type";
    case H5T_ENUM:
      return "an enumeration (e.g. booleans)";
    case H5T_BITFIELD:
      return "a bit field";
    case H5T_OPAQUE:
      return "opaque bytes";
    case H5T_REFERENCE:
      return "references";
    case H5T_VLEN:
      return "variable-length sequences";
    default:
      return "an unknown type";
  }
}

void Dataset::require_complete_storage() const {
  const double needed = double(element_count());
  Handle type(H5Dget_type(id()));
  const double bytes = needed * double(H5Tget_size(type.id()));
  Handle dcpl(H5Dget_create_plist(id()));
  // Compressed data may legitimately be much smaller than its shape: only unfiltered data is
  // checked (what fieldflow, h5py and Gadget write by default).
  if (H5Pget_nfilters(dcpl.id()) == 0) {
    // 0: never written, reads as the fill value (h5py's create_dataset without data).
    const double stored = double(H5Dget_storage_size(id()));
    if (stored > 0 && stored < bytes)
      fail("damaged: holds " + std::to_string(uint64_t(stored)) + " bytes of the " +
           std::to_string(uint64_t(bytes)) + " its shape needs");
  }
}

void Dataset::require_filters() const {
  Handle dcpl(H5Dget_create_plist(id()));
  const int n = H5Pget_nfilters(dcpl.id());
  for (int i = 0; i < n; ++i) {
    unsigned int flags = 0;
    size_t cd_count = 0;
    char name[256] = {0};
    unsigned int config = 0;
    const H5Z_filter_t filter = H5Pget_filter2(dcpl.id(), unsigned(i), &flags, &cd_count, nullptr,
                                               sizeof name, name, &config);
    if (filter < 0) continue;
    if (H5Zfilter_avail(filter) <= 0) {
      std::string what = "needs HDF5 filter " + std::to_string(filter);
      if (name[0]) what += std::string(" (") + name + ")";
      what += ", which is not available";
      if (filter == kBloscFilter)
        what += ": install hdf5-filter-plugin-blosc-serial or set HDF5_PLUGIN_PATH";
      throw Error(file_, name_ + ": " + what);
    }
  }
}

void Dataset::require_standard_numbers() const {
  Handle type(H5Dget_type(id()));
  if (!is_standard_number(type.id()))
    fail("holds " + type_name() + " in a damaged or non-standard layout");
}

void Dataset::transfer_rows(bool write, hsize_t first_row, hsize_t rows, hid_t memory_type,
                            void* data) const {
  if (!write) require_standard_numbers();
  const std::vector<hsize_t> dims = shape();
  if (dims.empty()) fail("is a scalar, not an array");
  if (first_row + rows > dims[0] || first_row + rows < first_row)
    fail("rows " + std::to_string(first_row) + ".." + std::to_string(first_row + rows) +
         " out of range (" + std::to_string(dims[0]) + " rows)");
  if (rows == 0) return;
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = first_row;
  count[0] = rows;
  Handle file_space(H5Dget_space(id()));
  H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                      nullptr);
  Handle mem_space(H5Screate_simple(int(count.size()), count.data(), nullptr));
  const herr_t status =
      write ? H5Dwrite(id(), memory_type, mem_space.id(), file_space.id(), H5P_DEFAULT, data)
            : H5Dread(id(), memory_type, mem_space.id(), file_space.id(), H5P_DEFAULT, data);
  if (status < 0) {
    if (!write) require_filters();
    fail(std::string(write ? "cannot write" : "cannot read") + " rows " +
         std::to_string(first_row) + ".." + std::to_string(first_row + rows));
  }
}

template <typename T>
void Dataset::read(T* out) const {
  if (element_count() == 0) return;
  require_standard_numbers();
  if (H5Dread(id(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
    require_filters();
    fail("cannot read the data");
  }
}

template <typename T>
void Dataset::write(const T* data) {
  if (element_count() == 0) return;
  if (H5Dwrite(id(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
    fail("cannot write the data");
  // Chunks are compressed when flushed: flush now so a filter failure is reported here
  // rather than lost in a destructor.
  if (H5Dflush(id()) < 0) fail("cannot write the data (flush)");
}

void Dataset::close() {
  if (!handle_.valid()) return;
  const hid_t id = handle_.release();
  if (H5Dclose(id) < 0) {
    const std::string w = where();
    throw Error(file_, with_hdf5_message(w + ": cannot write the data (close)"));
  }
}

template <typename T>
void Dataset::read_rows(hsize_t first_row, hsize_t rows, T* out) const {
  transfer_rows(false, first_row, rows, native_type<T>(), out);
}

template <typename T>
void Dataset::write_rows(hsize_t first_row, hsize_t rows, const T* data) {
  transfer_rows(true, first_row, rows, native_type<T>(), const_cast<T*>(data));
}

#define FF_H5_DATASET_TYPES(T)                                     \
  template void Dataset::read<T>(T*) const;                        \
  template void Dataset::write<T>(const T*);                       \
  template void Dataset::read_rows<T>(hsize_t, hsize_t, T*) const; \
  template void Dataset::write_rows<T>(hsize_t, hsize_t, const T*);
FF_H5_DATASET_TYPES(int32_t)
FF_H5_DATASET_TYPES(uint32_t)
FF_H5_DATASET_TYPES(int64_t)
FF_H5_DATASET_TYPES(uint64_t)
FF_H5_DATASET_TYPES(float)
FF_H5_DATASET_TYPES(double)
#undef FF_H5_DATASET_TYPES

// ---- File ----

File File::open(const std::string& path, bool writable) {
  initialize();
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) throw Error(path, "no such file");
  if (std::filesystem::is_directory(status)) throw Error(path, "is a folder, not a file");
  if (!std::filesystem::is_regular_file(status))
    throw Error(path, "is not a regular file (a device, FIFO or socket); HDF5 needs a file");
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 == 0) throw Error(path, "not an HDF5 file");
  if (is_hdf5 < 0) throw Error(path, with_hdf5_message("cannot be read as HDF5"));
  File f;
  // Best-effort file locking: cluster file systems (Lustre, NFS) often refuse locks, which
  // HDF5 >= 1.10.7 otherwise turns into "unable to lock file" (HDF5_USE_FILE_LOCKING=BEST_EFFORT).
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
#if H5_VERSION_GE(1, 10, 7)
  H5Pset_file_locking(fapl.id(), 1, 1);
#endif
  f.file_ = Handle(H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl.id()));
  if (!f.file_.valid()) {
    if (failed_on_lock())
      throw Error(path,
                  "is locked by another program that has it open for writing (HDF5 file lock); "
                  "try again when it has finished");
    throw Error(path, with_hdf5_message("cannot open as HDF5 (truncated or damaged file?)"));
  }
  Handle root(H5Gopen2(f.file_.id(), "/", H5P_DEFAULT));
  if (!root.valid()) throw Error(path, with_hdf5_message("cannot open the root group"));
  f.root_ = Group(std::move(root), path, "/");
  return f;
}

File File::create(const AtomicFile& out) {
  return create(out.temp_path(), out.final_path());
}

File File::create(const std::string& path, const std::string& name_in_errors) {
  initialize();
  const std::string& name = name_in_errors.empty() ? path : name_in_errors;
  File f;
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
#if H5_VERSION_GE(1, 10, 7)
  H5Pset_file_locking(fapl.id(), 1, 1);  // best effort, as in open()
#endif
  f.file_ = Handle(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id()));
  if (!f.file_.valid()) throw Error(name, with_hdf5_message("cannot create HDF5 file"));
  Handle root(H5Gopen2(f.file_.id(), "/", H5P_DEFAULT));
  if (!root.valid()) throw Error(name, with_hdf5_message("cannot open the root group"));
  f.root_ = Group(std::move(root), name, "/");
  return f;
}

File::~File() {
  root_ = Group();
  file_.reset();
}

void File::close() {
  if (!file_.valid()) return;
  const std::string path = root_.file();
  root_ = Group();
  const hid_t id = file_.release();
  if (H5Fclose(id) < 0) throw Error(path, with_hdf5_message("cannot close (write) the file"));
}

}  // namespace ff::h5
