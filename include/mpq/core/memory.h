// Allocator tuning for inference on large batches, and the process's peak memory.
#pragma once

namespace mpq {

// Every op allocates its output, and at batch 128 activations are tens to hundreds of MB. glibc
// serves such blocks with mmap and returns them on free, so each op then page-faults its whole
// output in again (measured: resnet20 batch 128 at 1231 img/s, 1910 img/s with this). Keeping
// freed memory in the heap for reuse removes that. Called by the mpq CLI and bench mains;
// a library user decides for their own process. The cost: the process keeps its peak heap.
void tune_allocator();

// Peak resident memory of this process so far (getrusage), in MB.
double peak_rss_mb();

}  // namespace mpq
