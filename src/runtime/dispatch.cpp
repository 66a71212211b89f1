// Kernel tables and the choice among them, made once from CPUID.
#include "kernels.h"

namespace mpq::runtime {

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
