// Kernel tables and the choice among them, made once from CPUID.
#include <omp.h>

#include <algorithm>
#include <chrono>

#include "kernels.h"

namespace mpq::runtime {

double peak_loop_avx512vnni(int64_t iterations);
double peak_loop_avx2(int64_t iterations);

double int8_peak_gmacs(Isa isa, int threads) {
  if (isa == Isa::kAuto) isa = best_isa();
  if (isa == Isa::kRef || !isa_supported(isa)) return 0;
  const bool vnni = isa == Isa::kAvx512Vnni;
  const double macs_per_iteration = vnni ? 16 * 64 : 12 * 32;  // vpdpbusd: 64, vpmaddubsw: 32
  const int64_t iterations = 6000000;
  // The fastest of five short runs: a shared machine slows some, never speeds one up.
  double seconds = 1e30, sink = 0;
  for (int round = 0; round < 5; ++round) {
    auto start = std::chrono::steady_clock::now();
#pragma omp parallel for num_threads(threads) reduction(+ : sink)
    for (int t = 0; t < threads; ++t)
      sink += vnni ? peak_loop_avx512vnni(iterations) : peak_loop_avx2(iterations);
    seconds = std::min(
        seconds,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  volatile double keep = sink;
  (void)keep;
  return macs_per_iteration * iterations * threads / seconds / 1e9;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kRef:
      return "ref";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512Vnni:
      return "avx512vnni";
    case Isa::kAuto:
      return "auto";
  }
  return "?";
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::kRef:
      return true;
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::kAvx512Vnni:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
             __builtin_cpu_supports("avx512vbmi");
    case Isa::kAuto:
      return true;
  }
  return false;
}

Isa best_isa() {
  static const Isa best = isa_supported(Isa::kAvx512Vnni) ? Isa::kAvx512Vnni
                          : isa_supported(Isa::kAvx2)     ? Isa::kAvx2
                                                          : Isa::kRef;
  return best;
}

const Kernels& kernels_for(Isa isa) {
#define MPQ_RT_KERNEL(name, Args) &name##_ref,
  static const Kernels ref{
#include "kernels.inc"
  };
#undef MPQ_RT_KERNEL
#define MPQ_RT_KERNEL(name, Args) &name##_avx2,
  static const Kernels avx2{
#include "kernels.inc"
  };
#undef MPQ_RT_KERNEL
#define MPQ_RT_KERNEL(name, Args) &name##_avx512vnni,
  static const Kernels avx512{
#include "kernels.inc"
  };
#undef MPQ_RT_KERNEL
  if (isa == Isa::kAuto) isa = best_isa();
  return isa == Isa::kAvx512Vnni ? avx512 : isa == Isa::kAvx2 ? avx2 : ref;
}

}  // namespace mpq::runtime
