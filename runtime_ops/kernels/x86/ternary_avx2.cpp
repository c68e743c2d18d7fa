// AVX2 variant (compiled with -mavx2 only; selected when cpuid reports AVX2 and the OS
// saves ymm state). Product via vpmaddubsw: the unsigned 2-bit code (w + 1, 0..3) times the
// signed int8 activation, summed in pairs to int16 (|pair| <= 2*3*128 = 768, never saturates;
// four of them <= 3072), then vpmaddwd with ones widens to int32. The +1 bias of the codes is
// removed once per output by subtracting sum_k x[k] (xsum): sum (w+1)x - sum x = sum w x.
#include <immintrin.h>

#include "tile_driver.h"

namespace edgebit {
namespace {

inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

// Sum over one 128-weight block of code * x as 16 int16 pair sums (each |.| <= 3072).
// c_i = (p >> 2i) & 3 are the codes of weights 32i .. 32i+31 of the block; the 16-bit shift
// drags bits of the neighbouring byte in, which the mask removes.
inline __m256i block_dot16(__m256i p, const int8_t* xb, __m256i mask) {
    const __m256i c0 = _mm256_and_si256(p, mask);
    const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(p, 2), mask);
    const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(p, 4), mask);
    const __m256i c3 = _mm256_and_si256(_mm256_srli_epi16(p, 6), mask);
    const __m256i* x = reinterpret_cast<const __m256i*>(xb);
    const __m256i s01 = _mm256_add_epi16(_mm256_maddubs_epi16(c0, _mm256_loadu_si256(x + 0)),
                                         _mm256_maddubs_epi16(c1, _mm256_loadu_si256(x + 1)));
    const __m256i s23 = _mm256_add_epi16(_mm256_maddubs_epi16(c2, _mm256_loadu_si256(x + 2)),
                                         _mm256_maddubs_epi16(c3, _mm256_loadu_si256(x + 3)));
    return _mm256_add_epi16(s01, s23);
}

struct Avx2 {
    // Decode: 4 weight rows stream side by side while the activation block stays in L1.
    static constexpr int kGemvRows = 4;
    // Prefill: one unpacked weight block serves 4 activation rows (16 ymm registers limit
    // the tile: 4 codes + 4 accumulators + temporaries).
    static constexpr int kTileM = 4;
    static constexpr int kTileN = 1;

    // The sum of one 128-weight block times 4, with fewer vector operations than block_dot16 (a
    // 1-thread decode is ALU-bound on AVX2): one shift instead of three, the codes c1 and c3 left
    // in place at 4x (p & 0x0C, (p >> 4) & 0x0C), so 4 * (c0 x0 + c2 x2) + (4c1 x1 + 4c3 x3) is
    // 4 * sum exactly; its int16 lanes are <= 4 * 1536 + 6144 = 12288 in magnitude (codes <= 3,
    // |x| <= 128), so two blocks can be added before widening.
    static inline __m256i block_dot16_x4(__m256i p, const __m256i* x, __m256i m3, __m256i m12) {
        const __m256i q = _mm256_srli_epi16(p, 4);
        const __m256i s1 = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(p, m3), _mm256_loadu_si256(x + 0)),
                                            _mm256_maddubs_epi16(_mm256_and_si256(q, m3), _mm256_loadu_si256(x + 2)));
        const __m256i s4 = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(p, m12), _mm256_loadu_si256(x + 1)),
                                            _mm256_maddubs_epi16(_mm256_and_si256(q, m12), _mm256_loadu_si256(x + 3)));
        return _mm256_add_epi16(_mm256_slli_epi16(s1, 2), s4);
    }

    // 4x sums stay exact in int32 while 4 * 3 * 128 * K < 2^31 (K < 1398101); longer rows (up to
    // EDGEBIT_MAX_K) take the plain blocks. 14.5 vector operations a block instead of 16: 1.03-1.05x
    // on the 2B4T decode shapes, 1 thread (docs/performance.md, eighth run).
    static constexpr int64_t kMaxBlocksX4 = 10922;

    template <int R>
    static void gemv(const int8_t* x, int32_t xsum, const uint8_t* w, int64_t row_bytes,
                     int64_t nblocks, int32_t* out) {
        const __m256i mask = _mm256_set1_epi8(3);
        const __m256i ones = _mm256_set1_epi16(1);
        __m256i acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_si256();
        if (nblocks > kMaxBlocksX4) {
            for (int64_t b = 0; b < nblocks; ++b) {
                prefetch_ahead<R>(w, row_bytes, b);
                for (int r = 0; r < R; ++r) {
                    const __m256i p = _mm256_loadu_si256(
                        reinterpret_cast<const __m256i*>(w + r * row_bytes + 32 * b));
                    const __m256i s = block_dot16(p, x + 128 * b, mask);
                    acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(s, ones));
                }
            }
            for (int r = 0; r < R; ++r) out[r] = hsum_epi32(acc[r]) - xsum;
            return;
        }
        const __m256i m12 = _mm256_set1_epi8(12);
        int64_t b = 0;
        for (; b + 2 <= nblocks; b += 2) {
            prefetch_ahead<R>(w, row_bytes, b);
            prefetch_ahead<R>(w, row_bytes, b + 1);
            const __m256i* xb = reinterpret_cast<const __m256i*>(x + 128 * b);
            for (int r = 0; r < R; ++r) {
                const __m256i* wr = reinterpret_cast<const __m256i*>(w + r * row_bytes + 32 * b);
                const __m256i t = _mm256_add_epi16(block_dot16_x4(_mm256_loadu_si256(wr), xb, mask, m12),
                                                   block_dot16_x4(_mm256_loadu_si256(wr + 1), xb + 4, mask, m12));
                acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(t, ones));
            }
        }
        if (b < nblocks) {
            prefetch_ahead<R>(w, row_bytes, b);
            const __m256i* xb = reinterpret_cast<const __m256i*>(x + 128 * b);
            for (int r = 0; r < R; ++r) {
                const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * row_bytes + 32 * b));
                acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(block_dot16_x4(p, xb, mask, m12), ones));
            }
        }
        for (int r = 0; r < R; ++r) out[r] = (hsum_epi32(acc[r]) >> 2) - xsum;
    }

    static void gemm(const int8_t* x, int64_t K, const int32_t* xsum, const uint8_t* w,
                     int64_t /*row_bytes*/, int64_t nblocks, int32_t* acc_out, int64_t ld) {
        const __m256i mask = _mm256_set1_epi8(3);
        const __m256i ones = _mm256_set1_epi16(1);
        __m256i acc[kTileM];
        for (int m = 0; m < kTileM; ++m) acc[m] = _mm256_setzero_si256();
        for (int64_t b = 0; b < nblocks; ++b) {
            const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32 * b));
            const __m256i c0 = _mm256_and_si256(p, mask);
            const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(p, 2), mask);
            const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(p, 4), mask);
            const __m256i c3 = _mm256_and_si256(_mm256_srli_epi16(p, 6), mask);
            for (int m = 0; m < kTileM; ++m) {
                const __m256i* xb = reinterpret_cast<const __m256i*>(x + m * K + 128 * b);
                const __m256i s = _mm256_add_epi16(
                    _mm256_add_epi16(_mm256_maddubs_epi16(c0, _mm256_loadu_si256(xb + 0)),
                                     _mm256_maddubs_epi16(c1, _mm256_loadu_si256(xb + 1))),
                    _mm256_add_epi16(_mm256_maddubs_epi16(c2, _mm256_loadu_si256(xb + 2)),
                                     _mm256_maddubs_epi16(c3, _mm256_loadu_si256(xb + 3))));
                acc[m] = _mm256_add_epi32(acc[m], _mm256_madd_epi16(s, ones));
            }
        }
        for (int m = 0; m < kTileM; ++m) acc_out[m * ld] = hsum_epi32(acc[m]) - xsum[m];
    }
};

}  // namespace

void tile_avx2(const TileArgs& a) { run_tiles<Avx2>(a); }

}  // namespace edgebit
