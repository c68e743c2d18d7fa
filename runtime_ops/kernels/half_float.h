// IEEE binary16 <-> binary32 in integer code, for the fp16 KV cache (edgebit_attention_f16kv and the ops that
// write its rows). half_to_float is exact (every half is a float); float_to_half rounds to nearest, ties to even,
// as numpy's astype(float16), torch's .half() and F16C's vcvtps2ph do: beyond the largest half (65504) at or
// past the rounding boundary 65520 it is inf; NaN stays NaN (quiet). No float arithmetic, so the results never
// depend on the FPU's denormal modes (a host may run with flush-to-zero).
#ifndef EDGEBIT_HALF_FLOAT_H
#define EDGEBIT_HALF_FLOAT_H

#include <stdint.h>
#include <string.h>

namespace edgebit {

inline float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu, bits;
    if (e == 0x1fu) {
        bits = sign | 0x7f800000u | (m << 13);  // inf, NaN (payload kept)
    } else if (e != 0) {
        bits = sign | ((e + 112u) << 23) | (m << 13);
    } else if (m == 0) {
        bits = sign;
    } else {  // subnormal m * 2^-24: normalize to 1.f * 2^(-14 - s)
        uint32_t s = 0;
        while ((m & 0x400u) == 0) {
            m <<= 1;
            ++s;
        }
        bits = sign | ((113u - s) << 23) | ((m & 0x3ffu) << 13);
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

inline uint16_t float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));  // NaN, quiet
    if (ax >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520 (or inf): inf
    if (ax >= 0x38800000u) {  // a normal half: rebias the exponent, round the 13 dropped bits
        uint32_t h = (ax - 0x38000000u) >> 13;
        const uint32_t rest = ax & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry into the exponent is right
        return static_cast<uint16_t>(sign | h);
    }
    // A subnormal half (or zero): round(|f| / 2^-24), |f| = m * 2^(e - 150) with the implicit bit in m.
    const uint32_t e = ax >> 23;
    const uint32_t shift = 126u - e;  // >= 14 here
    if (shift > 24u) return sign;     // below 2^-25: rounds to zero
    const uint32_t m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t h = m >> shift;
    const uint32_t rest = m & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
    if (rest > halfway || (rest == halfway && (h & 1u))) ++h;  // may round up to the smallest normal: right too
    return static_cast<uint16_t>(sign | h);
}

}  // namespace edgebit

#endif  // EDGEBIT_HALF_FLOAT_H
