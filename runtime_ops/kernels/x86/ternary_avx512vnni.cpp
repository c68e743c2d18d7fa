// AVX-512 VNNI variant (compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni).
// vpdpbusd multiplies unsigned bytes by signed bytes and adds groups of four straight into
// int32 lanes, so no int16 stage is needed. The unsigned operand is the 2-bit code (w + 1);
// the bias is removed once per output by subtracting xsum = sum_k x[k].
//
// Unpacking trick: the 32 packed bytes of a block are broadcast to both 256-bit halves of a
// zmm and shifted by {0 | 2} (or {4 | 6}) bits per half with vpsrlvq. After masking, the low
// half holds the codes of weights 0..31 and the high half those of 32..63 (resp. 64..127),
// which line up with one contiguous 64-byte load of activations. So a block costs one
// broadcast load, two shifts, two ands and two vpdpbusd per row, and any block count works.
// That is the form of the prefill tile and of the longest rows; decode (Avx512Vnni::gemv) unpacks
// as AVX2 does, in 256-bit vpdpbusd, which needs fewer operations per block.
#include <immintrin.h>

// GCC 12's AVX-512 headers trip -W(maybe-)uninitialized on their own _mm512_undefined_*
// placeholders (GCC bug 105593); the warning is about the header, not this code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "tile_driver.h"

namespace edgebit {
namespace {

struct Unpack512 {
    __m512i mask, shift01, shift23;
    Unpack512()
        : mask(_mm512_set1_epi8(3)),
          shift01(_mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0)),
          shift23(_mm512_set_epi64(6, 6, 6, 6, 4, 4, 4, 4)) {}
    // Codes of weights 0..63 (c01) and 64..127 (c23) of the block at `block`.
    inline void operator()(const uint8_t* block, __m512i& c01, __m512i& c23) const {
        const __m512i p =
            _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block)));
        c01 = _mm512_and_si512(_mm512_srlv_epi64(p, shift01), mask);
        c23 = _mm512_and_si512(_mm512_srlv_epi64(p, shift23), mask);
    }
};

struct Avx512Vnni {
    static constexpr int kGemvRows = 4;
    // 4 x 4 tile: 16 accumulators + 8 activation vectors + unpack temporaries fit in 32 zmm.
    static constexpr int kTileM = 4;
    static constexpr int kTileN = 4;

    // Decode (M = 1) is bound by vector operations, not by DRAM, on one core: the 512-bit form (gemv512 below: one
    // broadcast, two vpsrlvq, two ands, two vpdpbusd per row and block, each zmm operation two 256-bit halves on
    // Zen 4) ran at 94 G weights/s whether the weights came from L2, L3 or DRAM, as the AVX2 variant's 14.5
    // operations a block did. In 256-bit form with AVX2's unpacking a block is one shift, four ands and four
    // vpdpbusd: the codes of weights 0..31 and 64..95 (p & 3, (p >> 4) & 3) at 1x, those of 32..63 and 96..127 left
    // in place at 4x (p & 12, (p >> 4) & 12), each set in its own accumulator, so out = sum1 + sum4 / 4 - xsum,
    // exactly (sum4 is 4x an integer): 121-138 G weights/s from cache (docs/performance.md, twelfth run). Two
    // accumulators a row and the activations read from L1 as memory operands: GCC 12 gives the 256-bit vpdpbusd
    // builtin only ymm0-15, and with four accumulators a row (or the asm dpbusd) it copied or spilled them every
    // block, which ran slower than the 512-bit form. Lanes stay far inside int32 for K <= kMaxBlocksX4 * 128
    // (as AVX2's 4x sums); longer rows take the 512-bit form.
    static constexpr int64_t kMaxBlocksX4 = 10922;

    template <int R>
    static void gemv(const int8_t* x, int32_t xsum, const uint8_t* w, int64_t row_bytes,
                     int64_t nblocks, int32_t* out) {
        if (nblocks > kMaxBlocksX4) return gemv512<R>(x, xsum, w, row_bytes, nblocks, out);
        const __m256i m3 = _mm256_set1_epi8(3), m12 = _mm256_set1_epi8(12);
        __m256i a1[R], a4[R];
        for (int r = 0; r < R; ++r) a1[r] = a4[r] = _mm256_setzero_si256();
        for (int64_t b = 0; b < nblocks; ++b) {
            prefetch_ahead<R>(w, row_bytes, b);
            const __m256i* xb = reinterpret_cast<const __m256i*>(x + 128 * b);
            for (int r = 0; r < R; ++r) {
                const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * row_bytes + 32 * b));
                const __m256i q = _mm256_srli_epi16(p, 4);
                a1[r] = _mm256_dpbusd_epi32(a1[r], _mm256_and_si256(p, m3), _mm256_loadu_si256(xb));
                a4[r] = _mm256_dpbusd_epi32(a4[r], _mm256_and_si256(p, m12), _mm256_loadu_si256(xb + 1));
                a1[r] = _mm256_dpbusd_epi32(a1[r], _mm256_and_si256(q, m3), _mm256_loadu_si256(xb + 2));
                a4[r] = _mm256_dpbusd_epi32(a4[r], _mm256_and_si256(q, m12), _mm256_loadu_si256(xb + 3));
            }
        }
        for (int r = 0; r < R; ++r) out[r] = hsum256(a1[r]) + (hsum256(a4[r]) >> 2) - xsum;
    }

    static inline int32_t hsum256(__m256i v) {
        __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
        s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
        return _mm_cvtsi128_si32(s);
    }

    // The 512-bit GEMV (rows longer than kMaxBlocksX4 blocks).
    template <int R>
    static void gemv512(const int8_t* x, int32_t xsum, const uint8_t* w, int64_t row_bytes,
                        int64_t nblocks, int32_t* out) {
        const Unpack512 unpack;
        // Two accumulators per row: two independent vpdpbusd chains per row hide latency.
        __m512i acc0[R], acc1[R];
        for (int r = 0; r < R; ++r) acc0[r] = acc1[r] = _mm512_setzero_si512();
        for (int64_t b = 0; b < nblocks; ++b) {
            prefetch_ahead<R>(w, row_bytes, b);
            const __m512i x01 = _mm512_loadu_si512(x + 128 * b);
            const __m512i x23 = _mm512_loadu_si512(x + 128 * b + 64);
            for (int r = 0; r < R; ++r) {
                __m512i c01, c23;
                unpack(w + r * row_bytes + 32 * b, c01, c23);
                acc0[r] = _mm512_dpbusd_epi32(acc0[r], c01, x01);
                acc1[r] = _mm512_dpbusd_epi32(acc1[r], c23, x23);
            }
        }
        for (int r = 0; r < R; ++r) {
            out[r] = _mm512_reduce_add_epi32(_mm512_add_epi32(acc0[r], acc1[r])) - xsum;
        }
    }

    static void gemm(const int8_t* x, int64_t K, const int32_t* xsum, const uint8_t* w,
                     int64_t row_bytes, int64_t nblocks, int32_t* acc_out, int64_t ld) {
        const Unpack512 unpack;
        __m512i acc[kTileM][kTileN];
        for (int m = 0; m < kTileM; ++m)
            for (int n = 0; n < kTileN; ++n) acc[m][n] = _mm512_setzero_si512();
        for (int64_t b = 0; b < nblocks; ++b) {
            // The tile's weight rows stream side by side, as the GEMV's do (see prefetch_ahead).
            prefetch_ahead<kTileN>(w, row_bytes, b);
            __m512i x01[kTileM], x23[kTileM];
            for (int m = 0; m < kTileM; ++m) {
                x01[m] = _mm512_loadu_si512(x + m * K + 128 * b);
                x23[m] = _mm512_loadu_si512(x + m * K + 128 * b + 64);
            }
            for (int n = 0; n < kTileN; ++n) {
                __m512i c01, c23;
                unpack(w + n * row_bytes + 32 * b, c01, c23);
                for (int m = 0; m < kTileM; ++m) {
                    acc[m][n] = _mm512_dpbusd_epi32(acc[m][n], c01, x01[m]);
                    acc[m][n] = _mm512_dpbusd_epi32(acc[m][n], c23, x23[m]);
                }
            }
        }
        for (int m = 0; m < kTileM; ++m)
            for (int n = 0; n < kTileN; ++n)
                acc_out[m * ld + n] = _mm512_reduce_add_epi32(acc[m][n]) - xsum[m];
    }
};

// Prefill (M >= kPanelMinM): a weight panel unpacked once into VNNI layout and reused by
// every activation row. The register tile above re-unpacks each weight block for every 4
// activation rows and ends each output with a horizontal reduction; here a zmm holds 16
// output columns x 4 consecutive codes, the activation operand is 4 bytes of one row
// broadcast to all lanes, so the inner loop is only loads and vpdpbusd and the int32 lanes
// are the outputs themselves (no reduction).
//
// Panel: kPanelCols columns x kPanelK codes (16 KB, fits L1 next to the activation rows of
// a tile), int32 panel[g * kPanelCols + c] = codes of k = 4g .. 4g+3 of column c. It is
// built from the packed dwords transposed to one per column: packed byte j of a block holds
// the codes of weights j, 32+j, 64+j, 96+j at bits 0, 2, 4, 6, so the dword at byte 4q of
// a block, shifted right by 2i and masked with 3 per byte, is the codes of the four
// consecutive weights 32i+4q .. 32i+4q+3: the k-group 8i+q of the block.
constexpr int kPanelCols = 32;   // two zmm of outputs
constexpr int kPanelK = 512;     // codes per column per panel (multiple of 128)
constexpr int kPanelRows = 12;   // activation rows per tile: 24 accumulators + 2 code vectors
constexpr int64_t kPanelMinM = 12;  // measured crossover with the 4 x 4 tile above

// The packed dwords q = 0..7 of one block of 16 weight rows, transposed: p[q] lane r = bytes
// 4q .. 4q+3 of row r's block. Rows r and r+8 share a zmm (low | high 256 bits), so the
// classic 8x8 dword transpose (unpack 32, unpack 64, then 128-bit lane moves) runs on both
// halves at once; this replaced one vpgatherdd per q, which took a fifth of the prefill time.
// rows[r] == nullptr reads as zeros (columns past the matrix).
inline void transpose_block(const uint8_t* const rows[16], int64_t off, __m512i p[8]) {
    __m512i z[8], t[8], u[8];
    for (int j = 0; j < 8; ++j) {
        const __m256i lo = rows[j] ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[j] + off))
                                   : _mm256_setzero_si256();
        const __m256i hi = rows[j + 8]
                               ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rows[j + 8] + off))
                               : _mm256_setzero_si256();
        z[j] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm512_unpacklo_epi32(z[j], z[j + 1]);
        t[j + 1] = _mm512_unpackhi_epi32(z[j], z[j + 1]);
    }
    for (int j = 0; j < 8; j += 4) {
        u[j] = _mm512_unpacklo_epi64(t[j], t[j + 2]);      // dwords 0 | 4 of rows j..j+3
        u[j + 1] = _mm512_unpackhi_epi64(t[j], t[j + 2]);  // 1 | 5
        u[j + 2] = _mm512_unpacklo_epi64(t[j + 1], t[j + 3]);  // 2 | 6
        u[j + 3] = _mm512_unpackhi_epi64(t[j + 1], t[j + 3]);  // 3 | 7
    }
    // 128-bit lanes of u[i] (rows 0-3) and u[i+4] (rows 4-7): [d_i, d_i+4, d_i (rows 8-11),
    // d_i+4 (rows 8-11)]; p[i] takes lanes 0 of each, then lanes 2; p[i+4] lanes 1 and 3.
    const __m512i lo_idx = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i hi_idx = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    for (int i = 0; i < 4; ++i) {
        p[i] = _mm512_permutex2var_epi64(u[i], lo_idx, u[i + 4]);
        p[i + 4] = _mm512_permutex2var_epi64(u[i], hi_idx, u[i + 4]);
    }
}

// cols (1..32) columns of w starting at its first row, blocks b0 .. b0+nb-1.
void build_panel(const uint8_t* w, int64_t row_bytes, int64_t cols, int64_t b0, int64_t nb,
                 int32_t* panel) {
    const __m512i mask = _mm512_set1_epi8(3);
    for (int h = 0; h < kPanelCols / 16; ++h) {
        // Columns past `cols` get code 0 (never stored, see panel_tile's masks).
        const uint8_t* rows[16];
        for (int r = 0; r < 16; ++r)
            rows[r] = 16 * h + r < cols ? w + (16 * h + r) * row_bytes : nullptr;
        for (int64_t b = 0; b < nb; ++b) {
            __m512i p[8];
            transpose_block(rows, 32 * (b0 + b), p);
            for (int q = 0; q < 8; ++q) {
                int32_t* dst = panel + (32 * b + q) * kPanelCols + 16 * h;
                for (int i = 0; i < 4; ++i) {
                    _mm512_store_si512(dst + 8 * i * kPanelCols,
                                       _mm512_and_si512(_mm512_srli_epi32(p[q], 2 * i), mask));
                }
            }
        }
    }
}

// acc += codes (unsigned) . x (signed), groups of 4 bytes. GCC 12 cannot keep more than ~6
// pairs of _mm512_dpbusd_epi32 accumulators in registers: it copies each one through the
// stack every iteration (its builtin does not tie the accumulator to the destination), which
// halved the panel tile's speed. The same instruction through asm keeps all 24 in zmm.
inline void dpbusd(__m512i& acc, __m512i codes, __m512i x) {
#if defined(__GNUC__)
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(codes), "v"(x));
#else
    acc = _mm512_dpbusd_epi32(acc, codes, x);
#endif
}

// MR activation rows x the panel's columns over `groups` k-groups. acc holds the partial
// sums of earlier panels unless `first`; `xsum` (non-null on the last panel) removes the
// +1 bias of the codes. mask0/mask1: which of the 2 x 16 columns exist.
template <int MR>
void panel_tile(const int8_t* x, int64_t K, const int32_t* panel, int64_t groups, bool first,
                const int32_t* xsum, int32_t* acc, int64_t ld, __mmask16 mask0, __mmask16 mask1) {
    __m512i a0[MR], a1[MR];
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
        a0[m] = first ? _mm512_setzero_si512() : _mm512_maskz_loadu_epi32(mask0, acc + m * ld);
        a1[m] = first ? _mm512_setzero_si512()
                      : _mm512_maskz_loadu_epi32(mask1, acc + m * ld + 16);
    }
    for (int64_t g = 0; g < groups; ++g) {
        const __m512i c0 = _mm512_load_si512(panel + g * kPanelCols);
        const __m512i c1 = _mm512_load_si512(panel + g * kPanelCols + 16);
#pragma GCC unroll 16
        for (int m = 0; m < MR; ++m) {
            int32_t x4;
            __builtin_memcpy(&x4, x + m * K + 4 * g, 4);
            const __m512i xb = _mm512_set1_epi32(x4);
            dpbusd(a0[m], c0, xb);
            dpbusd(a1[m], c1, xb);
        }
    }
#pragma GCC unroll 16
    for (int m = 0; m < MR; ++m) {
        if (xsum != nullptr) {
            const __m512i s = _mm512_set1_epi32(xsum[m]);
            a0[m] = _mm512_sub_epi32(a0[m], s);
            a1[m] = _mm512_sub_epi32(a1[m], s);
        }
        _mm512_mask_storeu_epi32(acc + m * ld, mask0, a0[m]);
        _mm512_mask_storeu_epi32(acc + m * ld + 16, mask1, a1[m]);
    }
}

using PanelTileFn = void (*)(const int8_t*, int64_t, const int32_t*, int64_t, bool,
                             const int32_t*, int32_t*, int64_t, __mmask16, __mmask16);

template <int... R>
struct PanelTiles {
    static constexpr PanelTileFn fn[] = {panel_tile<R + 1>...};
};
template <int... R>
constexpr PanelTileFn PanelTiles<R...>::fn[];
// panel_tile<r> for r = 1 .. kPanelRows, indexed by r - 1.
using AllPanelTiles = PanelTiles<0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11>;
static_assert(sizeof(AllPanelTiles::fn) / sizeof(PanelTileFn) == kPanelRows, "one per height");

// The weight lines of a panel (cols rows, blocks b0 .. b0+nb-1) into L2 (prefetcht1: the tiles stream the activation
// rows through L1 meanwhile). Issued for the next panel while this one's tiles run (~9 us of vpdpbusd for a
// 128-token prompt): without it build_panel's loads waited on DRAM, 32 rows of 128 bytes at a row's stride apart,
// ~8% of a 2B4T prefill in `perf`.
inline void prefetch_panel(const uint8_t* w, int64_t row_bytes, int64_t cols, int64_t b0, int64_t nb) {
    for (int64_t r = 0; r < cols; ++r) {
        const char* p = reinterpret_cast<const char*>(w + r * row_bytes + 32 * b0);
        for (int64_t off = 0; off < 32 * nb; off += 64) _mm_prefetch(p + off, _MM_HINT_T1);
        _mm_prefetch(p + 32 * nb - 1, _MM_HINT_T1);  // the last line when the range starts mid-line
    }
}

// Codes per column of the panel starting at k0 (the last one along K may be shorter).
inline int64_t panel_k(int64_t K, int64_t k0) { return K - k0 < kPanelK ? K - k0 : kPanelK; }

void panel_gemm(const TileArgs& a) {
    alignas(64) int32_t panel[kPanelK / 4 * kPanelCols];
    const int64_t row_bytes = a.K / 4;
    for (int64_t n0 = 0; n0 < a.nr; n0 += kPanelCols) {
        const int64_t cols = a.nr - n0 < kPanelCols ? a.nr - n0 : kPanelCols;
        const __mmask16 mask0 = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
        const __mmask16 mask1 = cols >= 32   ? __mmask16(0xFFFF)
                                : cols <= 16 ? __mmask16(0)
                                             : __mmask16((1u << (cols - 16)) - 1);
        for (int64_t k0 = 0; k0 < a.K; k0 += kPanelK) {
            const int64_t kc = panel_k(a.K, k0);
            build_panel(a.w + n0 * row_bytes, row_bytes, cols, k0 / 128, kc / 128, panel);
            // The next panel: the same columns further along K, or the next columns' first.
            const int64_t n1 = k0 + kc < a.K ? n0 : n0 + kPanelCols, k1 = k0 + kc < a.K ? k0 + kc : 0;
            if (n1 < a.nr) {
                const int64_t cols1 = a.nr - n1 < kPanelCols ? a.nr - n1 : kPanelCols;
                prefetch_panel(a.w + n1 * row_bytes, row_bytes, cols1, k1 / 128, panel_k(a.K, k1) / 128);
            }
            const bool first = k0 == 0;
            const bool last = k0 + kc == a.K;
            // Equal tile heights (64 rows: 11,11,11,11,10,10 rather than 12 x 5 + 4): a
            // short last tile runs at the same cost per group with fewer rows to show for it.
            const int64_t tiles = (a.M + kPanelRows - 1) / kPanelRows;
            for (int64_t t = 0, m = 0; t < tiles; ++t) {
                const int64_t rows = (a.M - m) / (tiles - t) + ((a.M - m) % (tiles - t) != 0);
                AllPanelTiles::fn[rows - 1](a.xq + m * a.K + k0, a.K, panel, kc / 4, first,
                                            last ? a.xsum + m : nullptr, a.acc + m * a.ld + n0,
                                            a.ld, mask0, mask1);
                m += rows;
            }
        }
    }
}

}  // namespace

void tile_avx512vnni(const TileArgs& a) {
    if (a.M >= kPanelMinM) {
        panel_gemm(a);
    } else {
        run_tiles<Avx512Vnni>(a);
    }
}

}  // namespace edgebit
