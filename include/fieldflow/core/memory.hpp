#pragma once
// Big arrays that are touched in full right away (FFT buffers, meshes): ask for transparent huge
// pages, where the system grants them on request, so first touch costs a few faults instead of
// one per 4 KiB. A no-op for arrays under 4 MiB and off Linux.
#include <cstddef>
#include <cstdint>

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

}  // namespace ff
