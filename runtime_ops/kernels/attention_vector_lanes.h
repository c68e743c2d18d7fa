// The lane type of the SIMD attention variants: 8 floats as a compiler vector (GCC/Clang vector
// extensions), lowered by each ISA file's flags to one AVX2 register or two NEON registers. Same
// operations as scalar/attention_scalar.cpp's ScalarLanes, lane for lane.
#ifndef EDGEBIT_ATTENTION_VECTOR_LANES_H
#define EDGEBIT_ATTENTION_VECTOR_LANES_H

#include <string.h>

#if defined(__F16C__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#else
#error "attention_vector_lanes.h: binary16 loads need F16C (x86) or aarch64"
#endif

#include "attention_body.h"

namespace edgebit {

struct VectorLanes {
    typedef float F __attribute__((vector_size(32)));
    typedef int32_t I __attribute__((vector_size(32)));
    static F zero() { return F{} ; }
    static F splat(float v) { return F{} + v; }
    static F load(const float* p) { F r; memcpy(&r, p, sizeof r); return r; }
    static F load_part(const float* p, int64_t n) {
        F r = zero();
        for (int64_t j = 0; j < n; ++j) r[j] = p[j];
        return r;
    }
    // 8 binary16 values widened (exact, as half_to_float): vcvtph2ps, or fcvtl on each half.
    static F load(const uint16_t* p) {
        F r;
#if defined(__F16C__)
        const __m256 w = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        memcpy(&r, &w, sizeof r);
#else
        const float32x4_t lo = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
        const float32x4_t hi = vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p + 4)));
        memcpy(&r, &lo, sizeof lo);
        memcpy(reinterpret_cast<char*>(&r) + sizeof lo, &hi, sizeof hi);
#endif
        return r;
    }
    // 8 int8 codes converted exactly (vpmovsxbd + vcvtdq2ps; sxtl + scvtf on NEON).
    // Written with intrinsics: GCC 12 scalarizes __builtin_convertvector from an 8-byte vector (a movsbl and a
    // vpinsrd per lane), which made the int8 cache's attention slower than the fp32 cache's.
    static F load(const int8_t* p) {
        F r;
#if defined(__F16C__)
        const __m128i c = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
        const __m256 w = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c));
        memcpy(&r, &w, sizeof r);
#else
        const int16x8_t h = vmovl_s8(vld1_s8(p));
        const float32x4_t lo = vcvtq_f32_s32(vmovl_s16(vget_low_s16(h)));
        const float32x4_t hi = vcvtq_f32_s32(vmovl_s16(vget_high_s16(h)));
        memcpy(&r, &lo, sizeof lo);
        memcpy(reinterpret_cast<char*>(&r) + sizeof lo, &hi, sizeof hi);
#endif
        return r;
    }
    // The first n codes or binary16 values, the rest zero, through the full-width load above.
    template <class C>
    static F load_part(const C* p, int64_t n) {
        C t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        memcpy(t, p, static_cast<size_t>(n) * sizeof *p);
        return load(t);
    }
    static void store(float* p, F a) { memcpy(p, &a, sizeof a); }
    static void store_part(float* p, F a, int64_t n) {
        if (n == 8) { store(p, a); return; }
        for (int64_t j = 0; j < n; ++j) p[j] = a[j];
    }
    static F add(F a, F b) { return a + b; }
    static F sub(F a, F b) { return a - b; }
    static F mul(F a, F b) { return a * b; }
    static F at_least(F a, float lo) {
        const I below = a < splat(lo);  // all-ones lanes where a < lo (false for NaN)
        return (F)(((I)a & ~below) | ((I)splat(lo) & below));
    }
    static I trunc_i(F a) {
        const I ordered = a == a;  // NaN lanes -> 0, as the scalar twin
        return __builtin_convertvector((F)((I)a & ordered), I);
    }
    static F to_f(I a) { return __builtin_convertvector(a, F); }
    static F pow2(I a) { return (F)((a + 127) << 23); }
    static float lane(F a, int j) { return a[j]; }
    // attention_body.h's tree ((0+4)+(2+6)) + ((1+5)+(3+7)) as halves added: 3 vector adds, no lane-by-lane
    // extraction.
    static float hsum(F a) {
        typedef float F4 __attribute__((vector_size(16)));
        F4 lo, hi;
        memcpy(&lo, &a, sizeof lo);
        memcpy(&hi, reinterpret_cast<const char*>(&a) + sizeof lo, sizeof hi);
        const F4 s4 = lo + hi;  // 0+4, 1+5, 2+6, 3+7
        return (s4[0] + s4[2]) + (s4[1] + s4[3]);
    }
};

}  // namespace edgebit

#endif  // EDGEBIT_ATTENTION_VECTOR_LANES_H
