// NEON i8mm variant (-march=armv8.2-a+dotprod+i8mm; selected only when both HWCAP_ASIMDDP
// and HWCAP2_I8MM are set). Decode (GEMV) and tails are the dot-product kernel: SMMLA does
// not help a single activation row. For prefill of 8 rows and more, the panel GEMM at the end
// of this file; for 4 to 7, a register tile: SMMLA multiplies a 2x8 int8 matrix by the
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
            // Four weight rows side by side, as in the GEMV: prefetched the same way (the x86 4 x 4 tile without it
            // waited on DRAM; on ARM cores unmeasured).
            prefetch_ahead<kTileN>(w, row_bytes, b);
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

// Prefill (M >= kPanelMinM): the AVX-512 file's panel design with SMMLA. The 4 x 4 tile above re-unpacks and
// re-zips every weight block for each 4 activation rows and zips the activations for each 4 weight rows: about 3.5
// other instructions per SMMLA. Here a panel of kPanelCols columns x kPanelK codes is unpacked once, already in
// SMMLA's B layout, and every activation row of the call reuses it; an 8 x 8 output tile (16 accumulators of 2 x 2)
// takes per 8 codes 4 panel loads, 8 half loads of activations and 16 SMMLA: no unpacking, no zips, no horizontal
// sums (each accumulator lane is one output).
//
// Panel: for each group g of 8 consecutive codes and column pair q, 16 bytes [codes of column 2q | of column 2q+1]
// (SMMLA's B: two rows of 8), at panel + (g * kPanelPairs + q) * 16. A packed byte j of a block holds the codes of
// weights j, 32+j, 64+j, 96+j at bits 0, 2, 4, 6, so group 4i+t of a block is bytes 8t .. 8t+7 shifted by 2i.
constexpr int kPanelPairs = 4;                    // column pairs: 8 columns
constexpr int kPanelCols = 2 * kPanelPairs;
constexpr int kPanelK = 1024;                     // codes per column per panel (multiple of 128): 8 KB
constexpr int kPanelRowPairs = 4;                 // activation row pairs per tile: 16 accumulators
constexpr int64_t kPanelMinM = 8;                 // one whole 8-row tile (no device measured the crossover)

// cols (1..8) columns starting at w's first row, blocks b0 .. b0+nb-1; columns past cols get code 0.
void build_panel(const uint8_t* w, int64_t row_bytes, int64_t cols, int64_t b0, int64_t nb, int8_t* panel) {
    for (int q = 0; q < kPanelPairs; ++q) {
        const uint8_t* r0 = 2 * q < cols ? w + (2 * q) * row_bytes : nullptr;
        const uint8_t* r1 = 2 * q + 1 < cols ? w + (2 * q + 1) * row_bytes : nullptr;
        for (int64_t b = 0; b < nb; ++b) {
            const int64_t off = 32 * (b0 + b);
            uint8x16_t p[2][2];  // [column][half]
            for (int h = 0; h < 2; ++h) {
                p[0][h] = r0 ? vld1q_u8(r0 + off + 16 * h) : vdupq_n_u8(0);
                p[1][h] = r1 ? vld1q_u8(r1 + off + 16 * h) : vdupq_n_u8(0);
            }
            int8_t* dst = panel + (16 * b) * kPanelPairs * 16 + q * 16;
            const auto put = [&](int i, const int8x16_t c0[2], const int8x16_t c1[2]) {
                for (int h = 0; h < 2; ++h) {  // groups 4i + 2h (codes 0..7 of the half) and 4i + 2h + 1 (8..15)
                    vst1q_s8(dst + ((4 * i + 2 * h) * kPanelPairs) * 16, zip_lo(c0[h], c1[h]));
                    vst1q_s8(dst + ((4 * i + 2 * h + 1) * kPanelPairs) * 16, zip_hi(c0[h], c1[h]));
                }
            };
            int8x16_t c0[2], c1[2];
            for (int h = 0; h < 2; ++h) c0[h] = codes<0>(p[0][h]), c1[h] = codes<0>(p[1][h]);
            put(0, c0, c1);
            for (int h = 0; h < 2; ++h) c0[h] = codes<1>(p[0][h]), c1[h] = codes<1>(p[1][h]);
            put(1, c0, c1);
            for (int h = 0; h < 2; ++h) c0[h] = codes<2>(p[0][h]), c1[h] = codes<2>(p[1][h]);
            put(2, c0, c1);
            for (int h = 0; h < 2; ++h) c0[h] = codes<3>(p[0][h]), c1[h] = codes<3>(p[1][h]);
            put(3, c0, c1);
        }
    }
}

// MP activation row pairs (rows[2p], rows[2p+1]; an odd row count repeats its last row, never stored) x the
// panel's columns over `groups` groups of 8 codes from k0. acc holds earlier panels' sums unless `first`; `xsum`
// (non-null on the last panel) removes the codes' +1 bias. Only `nrows` rows and `cols` columns are written.
template <int MP>
void panel_tile(const int8_t* const rows[2 * kPanelRowPairs], int64_t k0, const int8_t* panel, int64_t groups,
                bool first, const int32_t* xsum, int32_t* acc, int64_t ld, int nrows, int cols) {
    int32x4_t a[MP][kPanelPairs];  // lanes (i, j) = row 2p+i, column 2q+j, at 2i+j
    for (int p = 0; p < MP; ++p)
        for (int q = 0; q < kPanelPairs; ++q) {
            int32_t t[4] = {0, 0, 0, 0};
            if (!first)
                for (int i = 0; i < 2; ++i)
                    for (int j = 0; j < 2; ++j)
                        if (2 * p + i < nrows && 2 * q + j < cols) t[2 * i + j] = acc[(2 * p + i) * ld + 2 * q + j];
            a[p][q] = vld1q_s32(t);
        }
    for (int64_t g = 0; g < groups; ++g) {
        int8x16_t x[MP], c[kPanelPairs];
        for (int p = 0; p < MP; ++p)
            x[p] = vcombine_s8(vld1_s8(rows[2 * p] + k0 + 8 * g), vld1_s8(rows[2 * p + 1] + k0 + 8 * g));
        for (int q = 0; q < kPanelPairs; ++q) c[q] = vld1q_s8(panel + (g * kPanelPairs + q) * 16);
        for (int p = 0; p < MP; ++p)
            for (int q = 0; q < kPanelPairs; ++q) a[p][q] = vmmlaq_s32(a[p][q], x[p], c[q]);
    }
    for (int p = 0; p < MP; ++p)
        for (int q = 0; q < kPanelPairs; ++q) {
            int32_t t[4];
            vst1q_s32(t, a[p][q]);
            for (int i = 0; i < 2; ++i)
                for (int j = 0; j < 2; ++j)
                    if (2 * p + i < nrows && 2 * q + j < cols)
                        acc[(2 * p + i) * ld + 2 * q + j] = t[2 * i + j] - (xsum ? xsum[2 * p + i] : 0);
        }
}

using PanelTileFn = void (*)(const int8_t* const*, int64_t, const int8_t*, int64_t, bool, const int32_t*,
                             int32_t*, int64_t, int, int);
constexpr PanelTileFn kPanelTiles[kPanelRowPairs] = {panel_tile<1>, panel_tile<2>, panel_tile<3>, panel_tile<4>};

void panel_gemm(const TileArgs& a) {
    alignas(16) int8_t panel[kPanelK / 8 * kPanelPairs * 16];
    const int64_t row_bytes = a.K / 4;
    for (int64_t n0 = 0; n0 < a.nr; n0 += kPanelCols) {
        const int cols = static_cast<int>(a.nr - n0 < kPanelCols ? a.nr - n0 : kPanelCols);
        for (int64_t k0 = 0; k0 < a.K; k0 += kPanelK) {
            const int64_t kc = a.K - k0 < kPanelK ? a.K - k0 : kPanelK;
            build_panel(a.w + n0 * row_bytes, row_bytes, cols, k0 / 128, kc / 128, panel);
            const bool first = k0 == 0, last = k0 + kc == a.K;
            for (int64_t m = 0; m < a.M; m += 2 * kPanelRowPairs) {
                const int nrows = static_cast<int>(a.M - m < 2 * kPanelRowPairs ? a.M - m : 2 * kPanelRowPairs);
                const int8_t* rows[2 * kPanelRowPairs];
                for (int r = 0; r < 2 * kPanelRowPairs; ++r) rows[r] = a.xq + (m + (r < nrows ? r : nrows - 1)) * a.K;
                kPanelTiles[(nrows + 1) / 2 - 1](rows, k0, panel, kc / 8, first, last ? a.xsum + m : nullptr,
                                                 a.acc + m * a.ld + n0, a.ld, nrows, cols);
            }
        }
    }
}

}  // namespace

void tile_neon_i8mm(const TileArgs& a) {
    if (a.M >= kPanelMinM) {
        panel_gemm(a);
    } else {
        run_tiles<I8mmMicro>(a);
    }
}

}  // namespace edgebit
