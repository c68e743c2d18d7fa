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

    template <int R>
    static void gemv(const int8_t* x, int32_t xsum, const uint8_t* w, int64_t row_bytes,
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

}  // namespace

void tile_avx512vnni(const TileArgs& a) { run_tiles<Avx512Vnni>(a); }

}  // namespace edgebit
