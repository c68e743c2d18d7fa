// NEON i8mm variant (-march=armv8.2-a+dotprod+i8mm; selected only when both HWCAP_ASIMDDP
// and HWCAP2_I8MM are set). Decode (GEMV) and tails are the dot-product kernel: SMMLA does
// not help a single activation row. For prefill, SMMLA multiplies a 2x8 int8 matrix by the
// transpose of another 2x8 one into a 2x2 int32 tile: 32 multiply-adds per instruction,
// twice SDOT's 16, so a 4x4 output tile costs 8 SMMLA per 16 weights instead of 16 SDOT.
//
// Operands are built with 64-bit zips: A = [x_m0[k..k+7] | x_m1[k..k+7]] (two activation
// rows), B = [c_n0[k..k+7] | c_n1[k..k+7]] (two weight rows' codes); the accumulator lanes are
// (m0,n0), (m0,n1), (m1,n0), (m1,n1).
#include "neon_sdot.h"

namespace edgebit {
namespace {

inline int8x16_t zip_lo(int8x16_t a, int8x16_t b) {
    return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}
inline int8x16_t zip_hi(int8x16_t a, int8x16_t b) {
    return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}

// Codes of field I (weights 32I + 16h .. +15) of packed half p.
template <int I>
inline void slice(const uint8x16_t p[4][2], int h, int8x16_t c[4]) {
    for (int r = 0; r < 4; ++r) c[r] = codes<I>(p[r][h]);
}

struct I8mmMicro : NeonMicro<SdotDot> {
    static constexpr int kTileM = 4;
    static constexpr int kTileN = 4;

    // acc[p][q]: 2x2 tile of activation rows 2p, 2p+1 and weight rows 2q, 2q+1.
    static inline void mma16(int32x4_t acc[2][2], const int8x16_t c[4], const int8_t* x,
                             int64_t K, int64_t k) {
        int8x16_t a[2][2], bm[2][2];
        for (int p = 0; p < 2; ++p) {
            const int8x16_t x0 = vld1q_s8(x + (2 * p) * K + k);
            const int8x16_t x1 = vld1q_s8(x + (2 * p + 1) * K + k);
            a[p][0] = zip_lo(x0, x1);
            a[p][1] = zip_hi(x0, x1);
            bm[p][0] = zip_lo(c[2 * p], c[2 * p + 1]);
            bm[p][1] = zip_hi(c[2 * p], c[2 * p + 1]);
        }
        for (int p = 0; p < 2; ++p)
            for (int q = 0; q < 2; ++q) {
                acc[p][q] = vmmlaq_s32(acc[p][q], a[p][0], bm[q][0]);
                acc[p][q] = vmmlaq_s32(acc[p][q], a[p][1], bm[q][1]);
            }
    }

    static void gemm(const int8_t* x, int64_t K, const int32_t* xsum, const uint8_t* w,
                     int64_t row_bytes, int64_t nblocks, int32_t* acc_out, int64_t ld) {
        int32x4_t acc[2][2];
        for (int p = 0; p < 2; ++p)
            for (int q = 0; q < 2; ++q) acc[p][q] = vdupq_n_s32(0);
        for (int64_t b = 0; b < nblocks; ++b) {
            uint8x16_t pk[4][2];
            for (int r = 0; r < 4; ++r) {
                pk[r][0] = vld1q_u8(w + r * row_bytes + 32 * b);
                pk[r][1] = vld1q_u8(w + r * row_bytes + 32 * b + 16);
            }
            const int8_t* xb = x + 128 * b;
            int8x16_t c[4];
            for (int h = 0; h < 2; ++h) {
                slice<0>(pk, h, c);
                mma16(acc, c, xb, K, 0 + 16 * h);
                slice<1>(pk, h, c);
                mma16(acc, c, xb, K, 32 + 16 * h);
                slice<2>(pk, h, c);
                mma16(acc, c, xb, K, 64 + 16 * h);
                slice<3>(pk, h, c);
                mma16(acc, c, xb, K, 96 + 16 * h);
            }
        }
        store_tiles(acc, xsum, acc_out, ld);
    }

    static inline void store_tiles(const int32x4_t acc[2][2], const int32_t* xsum,
                                   int32_t* acc_out, int64_t ld) {
        for (int p = 0; p < 2; ++p)
            for (int q = 0; q < 2; ++q) {
                int32_t lanes[4];
                vst1q_s32(lanes, acc[p][q]);
                for (int i = 0; i < 2; ++i)
                    for (int j = 0; j < 2; ++j)
                        acc_out[(2 * p + i) * ld + 2 * q + j] = lanes[2 * i + j] - xsum[2 * p + i];
            }
    }
};

}  // namespace

void tile_neon_i8mm(const TileArgs& a) { run_tiles<I8mmMicro>(a); }

}  // namespace edgebit
