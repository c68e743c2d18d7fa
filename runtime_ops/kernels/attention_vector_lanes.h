// The lane type of the SIMD attention variants: 8 floats as a compiler vector (GCC/Clang vector
// extensions), lowered by each ISA file's flags to one AVX2 register or two NEON registers. Same
// operations as scalar/attention_scalar.cpp's ScalarLanes, lane for lane.
#ifndef EDGEBIT_ATTENTION_VECTOR_LANES_H
#define EDGEBIT_ATTENTION_VECTOR_LANES_H

#include <string.h>

#if defined(__F16C__) && defined(__FMA__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#else
#error "attention_vector_lanes.h: binary16 loads and fused multiply-adds need F16C and FMA (x86) or aarch64"
#endif

#include "attention_body.h"

namespace edgebit {

struct VectorLanes {
    typedef float F __attribute__((vector_size(32)));
    typedef int32_t I __attribute__((vector_size(32)));
    static F zero() { return F{} ; }
    // A broadcast (F{} + v would be a real add: a vaddss per splat, and -0 made +0).
    static F splat(float v) { return F{v, v, v, v, v, v, v, v}; }
    static F load(const float* p) { F r; memcpy(&r, p, sizeof r); return r; }
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
    // The first n floats, binary16 values or codes, the rest zero, through the full-width loads above.
    template <class C>
    static F load_part(const C* p, int64_t n) {
        C t[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        memcpy(t, p, static_cast<size_t>(n) * sizeof *p);
        return load(t);
    }
    static void store(float* p, F a) { memcpy(p, &a, sizeof a); }
    // Through a float array: indexing `a` by a variable would make GCC keep the caller's accumulators in memory,
    // stored back on every iteration of the loop that builds them.
    static void store_part(float* p, F a, int64_t n) {
        float t[8];
        store(t, a);
        memcpy(p, t, static_cast<size_t>(n) * sizeof *p);
    }
    static F add(F a, F b) { return a + b; }
    static F sub(F a, F b) { return a - b; }
    static F mul(F a, F b) { return a * b; }
    // a * b + c rounded once: vfmadd231ps, or fmla on each half (never a * b + c in source: -ffp-contract=off
    // keeps that two roundings, as the scalar twin's fmaf would not).
    static F fma(F a, F b, F c) {
#if defined(__FMA__)
        return (F)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
        float32x4_t h[3][2];
        memcpy(h[0], &a, sizeof a);
        memcpy(h[1], &b, sizeof b);
        memcpy(h[2], &c, sizeof c);
        const float32x4_t lo = vfmaq_f32(h[2][0], h[0][0], h[1][0]), hi = vfmaq_f32(h[2][1], h[0][1], h[1][1]);
        F r;
        memcpy(&r, &lo, sizeof lo);
        memcpy(reinterpret_cast<char*>(&r) + sizeof lo, &hi, sizeof hi);
        return r;
#endif
    }
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
