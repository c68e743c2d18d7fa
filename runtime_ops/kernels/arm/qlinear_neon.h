// NEON quantized linear (qlinear_driver.h) for the ARM variant files, parameterized by how a
// 16-byte product is accumulated (widening multiplies on armv8.0, SDOT with +dotprod). Internal
// linkage, so each including file compiles its own copy with its own -march.
// Nibbles are made signed (q = nibble - 8) before multiplying: no bias to remove afterwards.
#ifndef EDGEBIT_QLINEAR_NEON_H
#define EDGEBIT_QLINEAR_NEON_H

#include <arm_neon.h>

#include "../qlinear_driver.h"

namespace edgebit {
namespace {

// Dot::dot2(acc, a0, b0, a1, b1): acc + the int32x4 lane sums of a0 * b0 + a1 * b1 (32 products);
// Dot::scales(s0, s1): the group scale of each of those lanes (a lane's weights are all in one group of the
// chunk: group 2c for j % 8 < 4, qlinear_variant.h).
template <class Dot>
struct NeonQ {
    static constexpr int kRows = 4;

    template <int R>
    static void q8(const int8_t* x, const uint8_t* w, int64_t row_bytes, int64_t Kp, int32_t* out) {
        const uint8x16_t bias = vdupq_n_u8(0x80);
        int32x4_t acc[R];
        for (int r = 0; r < R; ++r) acc[r] = vdupq_n_s32(0);
        for (int64_t k = 0; k < Kp; k += 32) {
            qprefetch_next_group<R>(w, row_bytes, k, 32);
            const int8x16_t x0 = vld1q_s8(x + k), x1 = vld1q_s8(x + k + 16);
            for (int r = 0; r < R; ++r) {
                const uint8_t* wr = w + r * row_bytes + k;
                const int8x16_t w0 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(wr), bias));
                const int8x16_t w1 = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(wr + 16), bias));
                acc[r] = Dot::dot2(acc[r], w0, x0, w1, x1);
            }
        }
        for (int r = 0; r < R; ++r) out[r] = vaddvq_s32(acc[r]);
    }

    template <int R>
    static void q4(const int8_t* x, const int16_t* /*gsum*/, const uint8_t* w, int64_t row_bytes, int64_t Kp,
                   int32_t* out) {
        const uint8x16_t low4 = vdupq_n_u8(0x0F);
        const int8x16_t eight = vdupq_n_s8(8);
        int32x4_t acc[R];
        for (int r = 0; r < R; ++r) acc[r] = vdupq_n_s32(0);
        for (int64_t c = 0; c < Kp / 64; ++c) {
            qprefetch_next_group<R>(w, row_bytes, 34 * c, 34);  // 32 nibble bytes and 2 scale bytes a chunk
            const int8_t* xc = x + 64 * c;
            const int8x16_t x0 = vld1q_s8(xc), x1 = vld1q_s8(xc + 16);
            const int8x16_t x2 = vld1q_s8(xc + 32), x3 = vld1q_s8(xc + 48);
            for (int r = 0; r < R; ++r) {
                const uint8_t* wr = w + r * row_bytes;
                const uint8x16_t p0 = vld1q_u8(wr + 32 * c), p1 = vld1q_u8(wr + 32 * c + 16);
                const int8x16_t l0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(p0, low4)), eight);
                const int8x16_t l1 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(p1, low4)), eight);
                const int8x16_t h0 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(p0, 4)), eight);
                const int8x16_t h1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(p1, 4)), eight);
                // Both halves into one int32x4: each lane sums runs of four weights of one group (Dot::kPattern).
                const int32x4_t g = Dot::dot2(Dot::dot2(vdupq_n_s32(0), l0, x0, l1, x1), h0, x2, h1, x3);
                const uint8_t* sub = wr + Kp / 2 + 2 * c;
                acc[r] = vmlaq_s32(acc[r], g, Dot::scales(sub[0], sub[1]));
            }
        }
        for (int r = 0; r < R; ++r) out[r] = vaddvq_s32(acc[r]);
    }
};

// armv8.0: products widened to int16 (|a*b| <= 128 * 127, two of them fit), then pairwise into int32.
// int16 lane i holds bytes i and i + 8, int32 lane t bytes 2t, 2t + 1, 2t + 8, 2t + 9: groups (A, A, B, B).
struct MullDot {
    static inline int32x4_t scales(int32_t s0, int32_t s1) {
        const int32_t v[4] = {s0, s0, s1, s1};
        return vld1q_s32(v);
    }
    static inline int32x4_t dot2(int32x4_t acc, int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1) {
        int16x8_t p = vmull_s8(vget_low_s8(a0), vget_low_s8(b0));
        p = vmlal_high_s8(p, a0, b0);
        acc = vpadalq_s16(acc, p);
        int16x8_t q = vmull_s8(vget_low_s8(a1), vget_low_s8(b1));
        q = vmlal_high_s8(q, a1, b1);
        return vpadalq_s16(acc, q);
    }
};

}  // namespace
}  // namespace edgebit

#endif  // EDGEBIT_QLINEAR_NEON_H
