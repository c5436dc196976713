#include "kernels/cpu/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace cw::kernels {
namespace {

Isa detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vnni");
  if (avx512) return Isa::kAvx512;
  if (avx2) return Isa::kAvx2;
#endif
  return Isa::kScalar;
}

Isa from_env(Isa detected) {
  const char* e = std::getenv("CW_ISA");
  if (e == nullptr) return detected;
  Isa want = detected;
  if (std::strcmp(e, "scalar") == 0) want = Isa::kScalar;
  else if (std::strcmp(e, "avx2") == 0) want = Isa::kAvx2;
  else if (std::strcmp(e, "avx512") == 0) want = Isa::kAvx512;
  return static_cast<int>(want) < static_cast<int>(detected) ? want : detected;
}

std::atomic<int>& active() {
  static std::atomic<int> a{static_cast<int>(from_env(detected_isa()))};
  return a;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
  }
  return "?";
}

Isa detected_isa() {
  static const Isa d = detect();
  return d;
}

bool cpu_has_avx512_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool b = detected_isa() == Isa::kAvx512 && __builtin_cpu_supports("avx512bf16");
  return b;
#else
  return false;
#endif
}

Isa active_isa() { return static_cast<Isa>(active().load(std::memory_order_relaxed)); }

Isa set_isa(Isa isa) {
  Isa d = detected_isa();
  Isa a = static_cast<int>(isa) < static_cast<int>(d) ? isa : d;
  active().store(static_cast<int>(a));
  return a;
}

const DotKernels* dot_kernels(uint32_t w_type, Isa isa) {
  for (int i = static_cast<int>(isa); i >= 0; --i) {
    const Isa at = static_cast<Isa>(i);
    if (const DotKernels* k = legacy_dot_kernels(w_type, at)) return k;
    if (const DotKernels* k = kquant_dot_kernels(w_type, at)) return k;
    if (const DotKernels* k = float_dot_kernels(w_type, at)) return k;
  }
  return nullptr;
}

}  // namespace cw::kernels
