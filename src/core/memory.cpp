#include "mpq/core/memory.h"

#include <malloc.h>
#include <sys/resource.h>

namespace mpq {

void tune_allocator() {
  mallopt(M_MMAP_MAX, 0);         // large blocks come from the heap, not mmap
  mallopt(M_TRIM_THRESHOLD, -1);  // and freed memory stays for reuse (never trimmed)
  mallopt(M_TOP_PAD, 64 << 20);
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // kB on Linux
}

}  // namespace mpq
