#pragma once
// Batched multi-channel periodic cubic grids, channels-last: element (b, x, y, z, c) sits at
// (((b * n + x) * n + y) * n + z) * channels + c. Channels-last puts the channels of one voxel side
// by side, so convolutions vectorise over channels and a periodic shift is a row offset.
#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

namespace ff {

// Loops over fewer elements (or multiply-adds) than this stay on one thread: a parallel region
// costs microseconds, far more on a busy machine.
inline constexpr size_t kParallelMinWork = size_t(1) << 15;

// 64-byte aligned storage (one cache line, one AVX-512 vector).
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(size_t count) {
    void* p = ::operator new(count * sizeof(T), std::align_val_t(64));
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const {
    return true;
  }
};

template <typename T>
using AlignedVector = std::vector<T, AlignedAllocator<T>>;

template <typename T>
struct Tensor {
  int batch = 0;
  int n = 0;  // grid points per side
  int channels = 0;
  AlignedVector<T> data;

  Tensor() = default;
  Tensor(int batch_, int n_, int channels_) { resize(batch_, n_, channels_); }

  // Reshapes; reuses the storage when it is large enough (no allocation in a steady loop).
  void resize(int batch_, int n_, int channels_) {
    batch = batch_;
    n = n_;
    channels = channels_;
    data.resize(size());
  }
  template <typename U>
  void resize_like(const Tensor<U>& other) {
    resize(other.batch, other.n, other.channels);
  }
  size_t voxels() const { return size_t(n) * n * n; }
  size_t field_size() const { return voxels() * channels; }
  size_t size() const { return size_t(batch) * field_size(); }
  T* field(int b) { return data.data() + size_t(b) * field_size(); }
  const T* field(int b) const { return data.data() + size_t(b) * field_size(); }
  T& at(int b, int x, int y, int z, int c) {
    return data[(((size_t(b) * n + x) * n + y) * n + z) * channels + c];
  }
  const T& at(int b, int x, int y, int z, int c) const {
    return data[(((size_t(b) * n + x) * n + y) * n + z) * channels + c];
  }
  void fill(T value) {
    for (auto& v : data) v = value;
  }
};

}  // namespace ff
