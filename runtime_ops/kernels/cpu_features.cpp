// Runtime CPU feature probes used once at load to pick a kernel variant. Compiled without
// ISA flags: it must run on any CPU of its architecture, including ones lacking every
// optional extension it asks about.
#include "kernel_variant.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
// Older libc headers may lack these; the bit positions are fixed by the Linux arm64 ABI.
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1UL << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1UL << 13)
#endif
#endif

namespace edgebit {
namespace {

struct Features {
    bool avx2 = false;
    bool f16c = false;
    bool fma = false;
    bool avx512vnni = false;
    bool neon = false;
    bool neon_dotprod = false;
    bool neon_i8mm = false;
};

#if defined(__x86_64__) || defined(__i386__)
// xgetbv via asm: the _xgetbv intrinsic would need -mxsave on this file.
uint64_t read_xcr0() {
    uint32_t eax = 0, edx = 0;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<uint64_t>(edx) << 32) | eax;
}

Features probe() {
    Features f;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool osxsave = (c >> 27) & 1u;
    const bool avx = (c >> 28) & 1u;
    const bool f16c = (c >> 29) & 1u;
    const bool fma = (c >> 12) & 1u;
    if (!osxsave || !avx) return f;
    const uint64_t xcr0 = read_xcr0();
    const bool ymm_state = (xcr0 & 0x6) == 0x6;     // SSE + AVX state saved by the OS
    const bool zmm_state = (xcr0 & 0xE6) == 0xE6;   // + opmask, zmm0-15 upper, zmm16-31
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
    const bool avx2 = (b >> 5) & 1u;
    const bool avx512f = (b >> 16) & 1u;
    const bool avx512bw = (b >> 30) & 1u;
    const bool avx512vl = (b >> 31) & 1u;
    const bool avx512vnni = (c >> 11) & 1u;
    f.avx2 = ymm_state && avx2;
    f.f16c = ymm_state && f16c;
    f.fma = ymm_state && fma;
    f.avx512vnni = zmm_state && avx512f && avx512bw && avx512vl && avx512vnni;
    return f;
}
#elif defined(__aarch64__) && defined(__linux__)
Features probe() {
    Features f;
    const unsigned long hwcap = getauxval(AT_HWCAP);
    const unsigned long hwcap2 = getauxval(AT_HWCAP2);
    f.neon = (hwcap & HWCAP_ASIMD) != 0;
    f.neon_dotprod = f.neon && (hwcap & HWCAP_ASIMDDP) != 0;
    f.neon_i8mm = f.neon_dotprod && (hwcap2 & HWCAP2_I8MM) != 0;
    return f;
}
#elif defined(__aarch64__)
// Non-Linux aarch64 (no getauxval): NEON is architectural; do not guess at extensions.
Features probe() {
    Features f;
    f.neon = true;
    return f;
}
#else
Features probe() { return Features(); }
#endif

const Features& features() {
    static const Features f = probe();
    return f;
}

}  // namespace

bool cpu_has_avx2() { return features().avx2; }
bool cpu_has_f16c() { return features().f16c; }
bool cpu_has_fma() { return features().fma; }
bool cpu_has_avx512vnni() { return features().avx512vnni; }
bool cpu_has_neon() { return features().neon; }
bool cpu_has_neon_dotprod() { return features().neon_dotprod; }
bool cpu_has_neon_i8mm() { return features().neon_i8mm; }

}  // namespace edgebit
