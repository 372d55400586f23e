#pragma once
// Small RAII helpers over the HDF5 C API, used by every HDF5 format in io (grids, snapshots,
// checkpoints). Every failure becomes one ff::Error naming the file, the object and what failed,
// with HDF5's own innermost message appended; HDF5's automatic error printing is switched off.
//
//   h5::File f = h5::File::open("grid.h5");            // read-only; File::open(path, true) = rw
//   double L = f.root().read_attribute<double>("box_size");
//   h5::Dataset d = f.root().open_dataset("delta");
//   std::vector<float> v(d.element_count()); d.read(v.data());     // converted to float on read
//
//   h5::File out = h5::File::create(atomic);             // an ff::AtomicFile
//   h5::Group g = out.root().create_group("PartType1");
//   h5::Dataset c = g.create_dataset("Coordinates", h5::ElementType::float32, {n, 3},
//                                    h5::DatasetOptions{.chunk_rows = 65536, .deflate_level = 4});
//   c.write(positions.data());                          // from double, converted to float32
//   c.write_rows(first, count, data);                   // hyperslab of rows [first, first+count)
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ff {
class AtomicFile;
}

namespace ff::h5 {

// Silences HDF5's error printing and makes sure the Blosc filter plugin folder is searched.
// Called by File::open/create; call it yourself before any other raw HDF5 call.
void initialize();

// HDF5's innermost error message of the current thread's error stack ("" when empty).
std::string last_error_message();

// Element types the helpers read and write (memory side); files may store any numeric type,
// HDF5 converts on read.
enum class ElementType { int32, uint32, int64, uint64, float32, float64 };
const char* to_string(ElementType type);

// Owns one hid_t (file, group, dataset, attribute, dataspace, datatype or property list)
// and closes it with the matching H5*close. Move-only.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;

  hid_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset();
  hid_t release() { return std::exchange(id_, H5I_INVALID_HID); }  // caller closes it

 private:
  hid_t id_ = H5I_INVALID_HID;
};

struct DatasetOptions {
  hsize_t chunk_rows = 0;   // > 0: chunked along the first dimension (other dims whole)
  int deflate_level = 0;    // 1..9: gzip (needs chunk_rows)
  bool blosc_zstd = false;  // Blosc filter 32001, zstd + bitshuffle, as Quijote (needs chunk_rows)
};

class Dataset;
class Group;

// A file, group or dataset: something that carries attributes. Remembers its file path and
// object name for error messages.
class Object {
 public:
  hid_t id() const { return handle_.id(); }
  const std::string& file() const { return file_; }
  const std::string& name() const { return name_; }  // "/", "/Header", "/PartType1/Coordinates"
  std::string where() const;                         // "/Header" or "" for the root

  bool has_attribute(const std::string& attr) const;
  std::vector<std::string> attribute_names() const;  // in name order
  // Scalars: the attribute must hold exactly one element (converted to T).
  template <typename T>
  T read_attribute(const std::string& attr) const;
  // Arrays of any length (a scalar gives one element), converted to T.
  template <typename T>
  std::vector<T> read_attribute_array(const std::string& attr) const;
  std::string read_attribute_string(const std::string& attr) const;

  // Writes (replacing an existing attribute of that name).
  template <typename T>
  void write_attribute(const std::string& attr, T value);
  template <typename T>
  void write_attribute_array(const std::string& attr, const std::vector<T>& values);
  void write_attribute_string(const std::string& attr, const std::string& value);

  [[noreturn]] void fail(const std::string& what) const;  // throws Error(file, where + what)

 protected:
  Object() = default;
  Object(Handle handle, std::string file, std::string name)
      : handle_(std::move(handle)), file_(std::move(file)), name_(std::move(name)) {}
  std::string child_name(const std::string& child) const;

  Handle handle_;
  std::string file_;
  std::string name_;
};

class Group : public Object {
 public:
  Group() = default;
  bool has(const std::string& path) const;  // a link (group or dataset) exists; nested paths ok
  Group open_group(const std::string& path) const;
  Group create_group(const std::string& path);
  Dataset open_dataset(const std::string& path) const;
  // shape: dataset dimensions; the element type stored in the file.
  Dataset create_dataset(const std::string& path, ElementType stored,
                         const std::vector<hsize_t>& shape, const DatasetOptions& options = {});
  std::vector<std::string> children() const;  // names of the links in this group

 private:
  friend class File;
  using Object::Object;
};

class Dataset : public Object {
 public:
  Dataset() = default;
  std::vector<hsize_t> shape() const;
  size_t element_count() const;
  // The stored element type when it is one of ElementType's, else throws naming the dataset.
  ElementType stored_type() const;
  // The stored type in words, whatever it is: "uint8", "float16", "a compound type (...)".
  std::string type_name() const;
  // Throws naming the dataset when its uncompressed storage is shorter than its shape needs (a
  // damaged or forged header): call it before allocating element_count() values. Data never
  // written (no storage: the fill value) passes.
  void require_complete_storage() const;
  // Throws naming the dataset and the filter if a filter it needs (e.g. Blosc) is unavailable.
  void require_filters() const;

  // Whole dataset, converted to T by HDF5. out must hold element_count() values.
  template <typename T>
  void read(T* out) const;
  template <typename T>
  void write(const T* data);
  // Rows [first_row, first_row + rows) along the first dimension, all of the other dimensions.
  template <typename T>
  void read_rows(hsize_t first_row, hsize_t rows, T* out) const;
  template <typename T>
  void write_rows(hsize_t first_row, hsize_t rows, const T* data);
  // Closes, throwing if pending chunks fail to flush (compression): call it after write_rows.
  // write() flushes by itself.
  void close();

 private:
  friend class Group;
  using Object::Object;
  void require_standard_numbers() const;  // before HDF5 converts stored numbers
  void transfer_rows(bool write, hsize_t first_row, hsize_t rows, hid_t memory_type,
                     void* data) const;
};

class File {
 public:
  // Read-only unless writable. Errors name the path: missing file, not HDF5, truncated/damaged.
  static File open(const std::string& path, bool writable = false);
  // Truncates an existing file. Errors name name_in_errors (default: path).
  static File create(const std::string& path, const std::string& name_in_errors = "");
  // At out.temp_path(), errors naming out.final_path(): what the user gave, not the temporary.
  static File create(const AtomicFile& out);
  File() = default;
  File(File&&) = default;
  File& operator=(File&&) = default;
  ~File();  // closes (errors on close are ignored here: call close() to see them)

  const std::string& path() const { return root_.file(); }
  Group& root() { return root_; }
  const Group& root() const { return root_; }
  void close();  // flushes and closes, throwing on failure

 private:
  Handle file_;
  Group root_;  // declared after file_ so it is closed first
};

// Whether HDF5 can use a filter (builtin or plugin), e.g. 32001 for Blosc.
bool filter_available(H5Z_filter_t filter);
inline constexpr H5Z_filter_t kBloscFilter = 32001;

}  // namespace ff::h5
