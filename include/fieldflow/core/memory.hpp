#pragma once
// Big arrays that are touched in full right away (FFT buffers, meshes): ask for transparent huge
// pages, where the system grants them on request, so first touch costs a few faults instead of
// one per 4 KiB. A no-op for arrays under 4 MiB and off Linux.
//
// require_memory refuses absurd working sets before allocating them (a 24 GB request on a 16 GB
// machine is an error naming the setting, not a kill by the kernel).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "fieldflow/core/error.hpp"

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace ff {

inline void advise_huge_pages(void* p, size_t bytes) {
#ifdef __linux__
  constexpr uintptr_t huge = uintptr_t(2) << 20;
  if (bytes < 2 * huge) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + huge - 1) & ~(huge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(huge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

// This machine's physical memory in bytes (0 when unknown).
inline double physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? double(pages) * double(page) : 0.0;
}

// Throws Error(context, "<what> needs 24.0 GB, more than this machine's 15.6 GB of memory") when
// bytes exceed the physical memory.
inline void require_memory(double bytes, const std::string& context, const std::string& what) {
  const double have = physical_memory_bytes();
  if (have <= 0 || bytes <= have) return;
  char buf[96];
  std::snprintf(buf, sizeof buf, " needs %.1f GB, more than this machine's %.1f GB of memory",
                bytes / 1e9, have / 1e9);
  throw Error(context, what + buf);
}

}  // namespace ff
