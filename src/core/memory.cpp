#include "mpq/core/memory.h"

#include <malloc.h>

namespace mpq {

void tune_allocator() {
  mallopt(M_MMAP_MAX, 0);         // large blocks come from the heap, not mmap
  mallopt(M_TRIM_THRESHOLD, -1);  // and freed memory stays for reuse (never trimmed)
  mallopt(M_TOP_PAD, 64 << 20);
}

}  // namespace mpq
