// Shared NEON building blocks for the ARM variant files. Everything here has internal
// linkage (anonymous namespace), so each including file gets its own copy compiled with
// its own -march: code built for +dotprod can never be picked for the armv8.0 variant.
//
// Unpacking: a 128-weight block is 32 packed bytes, loaded as p0 (bytes 0..15) and p1
// (16..31). (p >> 2i) & 3 gives the codes (w + 1, 0..3) of weights 32i + 0..15 (from p0)
// and 32i + 16..31 (from p1). Ordered as c[t], t = 2i + half, code vector t covers weights
// 16t .. 16t+15 of the block, i.e. it pairs with the contiguous activations xb + 16t.
// Codes are used as signed bytes (0..3); the +1 bias is removed by subtracting xsum.
#ifndef EDGEBIT_NEON_COMMON_H
#define EDGEBIT_NEON_COMMON_H

#include <arm_neon.h>

#include "tile_driver.h"

namespace edgebit {
namespace {

template <int I>
inline int8x16_t codes(uint8x16_t p) {
    static_assert(I >= 0 && I < 4, "four 2-bit fields per byte");
    if (I == 0) return vreinterpretq_s8_u8(vandq_u8(p, vdupq_n_u8(3)));
    if (I == 3) return vreinterpretq_s8_u8(vshrq_n_u8(p, 6));  // top field: no mask needed
    return vreinterpretq_s8_u8(vandq_u8(vshrq_n_u8(p, I == 0 ? 1 : 2 * I), vdupq_n_u8(3)));
}

// The eight code vectors of the block at wb (see header comment for the order).
inline void unpack_block(const uint8_t* wb, int8x16_t c[8]) {
    const uint8x16_t p0 = vld1q_u8(wb);
    const uint8x16_t p1 = vld1q_u8(wb + 16);
    c[0] = codes<0>(p0);
    c[1] = codes<0>(p1);
    c[2] = codes<1>(p0);
    c[3] = codes<1>(p1);
    c[4] = codes<2>(p0);
    c[5] = codes<2>(p1);
    c[6] = codes<3>(p0);
    c[7] = codes<3>(p1);
}

inline void load_block_x(const int8_t* xb, int8x16_t x[8]) {
    for (int t = 0; t < 8; ++t) x[t] = vld1q_s8(xb + 16 * t);
}

// GEMV and GEMM loops over whole blocks, parameterized by how one block's 128 products are
// accumulated (Dot::block): widening multiplies on armv8.0, SDOT with the dot-product
// extension. Dot::block(acc, c, x) returns acc + sum_t sum_lanes c[t] * x[t] in int32 lanes.
template <class Dot>
struct NeonMicro {
    static constexpr int kGemvRows = 4;  // decode: 4 weight rows share each activation load
    static constexpr int kTileM = 4;     // prefill: one unpacked block serves 4 activation rows
    static constexpr int kTileN = 1;

    template <int R>
    static void gemv(const int8_t* x, int32_t xsum, const uint8_t* w, int64_t row_bytes,
                     int64_t nblocks, int32_t* out) {
        int32x4_t acc[R];
        for (int r = 0; r < R; ++r) acc[r] = vdupq_n_s32(0);
        for (int64_t b = 0; b < nblocks; ++b) {
            prefetch_ahead<R>(w, row_bytes, b);
            int8x16_t xv[8];
            load_block_x(x + 128 * b, xv);
            for (int r = 0; r < R; ++r) {
                int8x16_t c[8];
                unpack_block(w + r * row_bytes + 32 * b, c);
                acc[r] = Dot::block(acc[r], c, xv);
            }
        }
        for (int r = 0; r < R; ++r) out[r] = vaddvq_s32(acc[r]) - xsum;
    }

    static void gemm(const int8_t* x, int64_t K, const int32_t* xsum, const uint8_t* w,
                     int64_t /*row_bytes*/, int64_t nblocks, int32_t* acc_out, int64_t ld) {
        int32x4_t acc[kTileM];
        for (int m = 0; m < kTileM; ++m) acc[m] = vdupq_n_s32(0);
        for (int64_t b = 0; b < nblocks; ++b) {
            int8x16_t c[8];
            unpack_block(w + 32 * b, c);
            for (int m = 0; m < kTileM; ++m) {
                int8x16_t xv[8];
                load_block_x(x + m * K + 128 * b, xv);
                acc[m] = Dot::block(acc[m], c, xv);
            }
        }
        for (int m = 0; m < kTileM; ++m) acc_out[m * ld] = vaddvq_s32(acc[m]) - xsum[m];
    }
};

}  // namespace
}  // namespace edgebit

#endif  // EDGEBIT_NEON_COMMON_H
