// Array files (checkpoint container). See include/fieldflow/io/checkpoint.hpp.
#include "fieldflow/io/checkpoint.hpp"

#include <cstring>

#include "fieldflow/core/error.hpp"
#include "fieldflow/core/memory.hpp"
#include "fieldflow/io/atomic_file.hpp"
#include "fieldflow/io/hdf5.hpp"
#include "fieldflow/io/provenance.hpp"

namespace ff {

uint64_t fnv1a64(const void* data, size_t bytes, uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) {
    hash ^= p[i];
    hash *= 1099511628211ull;
  }
  return hash;
}

namespace {

uint64_t meta_checksum(const ArrayFile& f) {
  uint64_t h = fnv1a64(f.format.data(), f.format.size());
  for (const auto& [key, text] : f.texts) {
    h = fnv1a64(key.data(), key.size() + 1, h);
    h = fnv1a64(text.data(), text.size() + 1, h);
  }
  for (const auto& [key, value] : f.numbers) {
    h = fnv1a64(key.data(), key.size() + 1, h);
    h = fnv1a64(&value, sizeof value, h);
  }
  return h;
}

void check_name(const std::string& path, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == ".")
    throw Error(path, "array file entry name \"" + name + "\" is empty or contains '/'");
}

template <typename T>
void write_array(const std::string& path, h5::Group& arrays, const std::string& name,
                 const std::vector<T>& values) {
  check_name(path, name);
  h5::Dataset d = arrays.create_dataset(
      name, sizeof(T) == 4 ? h5::ElementType::float32 : h5::ElementType::float64,
      {hsize_t(values.size())});
  if (!values.empty()) d.write(values.data());
  d.write_attribute<uint64_t>("checksum", fnv1a64(values.data(), values.size() * sizeof(T)));
}

}  // namespace

void write_array_file(const std::string& path, const ArrayFile& contents) {
  AtomicFile atomic(path);
  {
    h5::File file = h5::File::create(atomic);
    h5::Group& root = file.root();
    root.write_attribute_string("format", contents.format);
    root.write_attribute<int64_t>("format_version", contents.version);
    root.write_attribute<int64_t>("array_count",
                                  int64_t(contents.floats.size() + contents.doubles.size()));
    root.write_attribute<uint64_t>("meta_checksum", meta_checksum(contents));
    if (!contents.provenance.version.empty()) write_provenance(root, contents.provenance);
    h5::Group arrays = root.create_group("arrays");
    for (const auto& [name, values] : contents.floats) write_array(path, arrays, name, values);
    for (const auto& [name, values] : contents.doubles) write_array(path, arrays, name, values);
    h5::Group texts = root.create_group("texts");
    for (const auto& [name, text] : contents.texts) {
      check_name(path, name);
      texts.write_attribute_string(name, text);
    }
    h5::Group numbers = root.create_group("numbers");
    for (const auto& [name, value] : contents.numbers) {
      check_name(path, name);
      numbers.write_attribute<double>(name, value);
    }
    file.close();
  }
  atomic.commit();
}

ArrayFile read_array_file(const std::string& path, const std::string& format, int64_t min_version,
                          int64_t max_version) {
  ArrayFile out;
  h5::File file = h5::File::open(path);
  const h5::Group& root = file.root();
  if (!root.has_attribute("format") || !root.has_attribute("format_version"))
    throw Error(path, "not a fieldflow " + format + " file (no format attributes)");
  out.format = root.read_attribute_string("format");
  if (out.format != format)
    throw Error(path, "is a \"" + out.format + "\" file, expected \"" + format + "\"");
  out.version = root.read_attribute<int64_t>("format_version");
  out.provenance = read_provenance(root);
  if (out.version < min_version || out.version > max_version)
    throw Error(path, "format version " + std::to_string(out.version) +
                          " is not supported (this build reads " +
                          (min_version == max_version ? "version " + std::to_string(max_version)
                                                      : "versions " + std::to_string(min_version) +
                                                            " to " + std::to_string(max_version)) +
                          ")");
  for (const char* group : {"arrays", "texts", "numbers"})
    if (!root.has(group))
      throw Error(path, std::string("damaged file: group /") + group + " is missing");
  const h5::Group arrays = root.open_group("arrays");
  const std::vector<std::string> names = arrays.children();
  if (int64_t(names.size()) != root.read_attribute<int64_t>("array_count"))
    throw Error(path, "damaged file: " + std::to_string(names.size()) + " arrays instead of " +
                          std::to_string(root.read_attribute<int64_t>("array_count")));
  for (const std::string& name : names) {
    const h5::Dataset d = arrays.open_dataset(name);
    d.require_complete_storage();
    const size_t count = d.element_count();
    require_memory(double(count) * 8.0, path, "array " + name);
    uint64_t sum = 0;
    if (d.stored_type() == h5::ElementType::float32) {
      std::vector<float>& v = out.floats[name];
      v.resize(count);
      if (count) d.read(v.data());
      sum = fnv1a64(v.data(), count * sizeof(float));
    } else if (d.stored_type() == h5::ElementType::float64) {
      std::vector<double>& v = out.doubles[name];
      v.resize(count);
      if (count) d.read(v.data());
      sum = fnv1a64(v.data(), count * sizeof(double));
    } else {
      throw Error(path, "array " + name + " is neither float32 nor float64");
    }
    if (!d.has_attribute("checksum") || d.read_attribute<uint64_t>("checksum") != sum)
      throw Error(path, "corrupt file: checksum mismatch in array " + name);
  }
  const h5::Group texts = root.open_group("texts");
  const h5::Group numbers = root.open_group("numbers");
  // Attribute names: HDF5 lists them through H5Aiterate; the helpers expose them by name only,
  // so iterate with the C API here.
  auto attribute_names = [&](const h5::Group& g) {
    std::vector<std::string> list;
    H5O_info_t info;
#if H5_VERSION_GE(1, 12, 0)
    H5Oget_info3(g.id(), &info, H5O_INFO_NUM_ATTRS);
#else
    H5Oget_info2(g.id(), &info, H5O_INFO_NUM_ATTRS);
#endif
    for (hsize_t i = 0; i < info.num_attrs; ++i) {
      const ssize_t len =
          H5Aget_name_by_idx(g.id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      if (len < 0) throw Error(path, "damaged file: cannot list attributes of " + g.name());
      std::string name(size_t(len), '\0');
      H5Aget_name_by_idx(g.id(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), size_t(len) + 1,
                         H5P_DEFAULT);
      list.push_back(name);
    }
    return list;
  };
  for (const std::string& name : attribute_names(texts))
    out.texts[name] = texts.read_attribute_string(name);
  for (const std::string& name : attribute_names(numbers))
    out.numbers[name] = numbers.read_attribute<double>(name);
  if (!root.has_attribute("meta_checksum") ||
      root.read_attribute<uint64_t>("meta_checksum") != meta_checksum(out))
    throw Error(path, "corrupt file: checksum mismatch in the metadata (texts, numbers)");
  return out;
}

}  // namespace ff
