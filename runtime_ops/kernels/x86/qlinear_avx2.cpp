// AVX2 quantized linear (qlinear_driver.h; compiled with -mavx2 only, and used by the
// avx512vnni variant too: the head is one GEMV a token, bandwidth-bound on either).
// q8: vpmaddubsw needs one unsigned operand: |w| (0..128) times x * sign(w) (x in [-127, 127],
//     so the sign flip never overflows), pairs <= 2 * 128 * 127 = 32512: no saturation.
// q4: unsigned nibbles (q + 8, 0..15) times x, pairs <= 2 * 15 * 127 = 3810, the chunk's two halves
//     added (7620); vpmaddwd with the groups' scales (<= 255) widens to int32; the +8 bias is removed once
//     per row by 8 * sum_g scale[g] * gsum[g]. int32 lanes wrap like the scalar twin's uint32 sums.
#include <immintrin.h>

#include "qlinear_driver.h"

namespace edgebit {
namespace {

inline int32_t hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

// sum_g sub[g] * gsum[g] over the Kp/32 groups of a row.
inline uint32_t bias_sum(const uint8_t* sub, const int16_t* gsum, int64_t ngroups) {
    __m256i acc = _mm256_setzero_si256();
    int64_t g = 0;
    for (; g + 16 <= ngroups; g += 16) {
        const __m256i s = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sub + g)));
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(gsum + g));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(s, x));
    }
    uint32_t sum = static_cast<uint32_t>(hsum_epi32(acc));
    for (; g < ngroups; ++g) sum += static_cast<uint32_t>(sub[g] * gsum[g]);
    return sum;
}

struct Avx2Q {
    // Weight rows streamed side by side per activation load. Two, not four: from DRAM the 2B4T q4 head (1360-byte
    // rows) ran in 6.3-7.0 ms with two, 7.7-8.0 with three, 8.1-10.3 with four and 8.7-9.2 with one (1 thread,
    // Zen 4, alternated; the q8 head 13.1-13.7 against 14.2-14.4 ms with four), while from L3 four are ~8%
    // faster: the prefetch distance, one group ahead, is what it sets (~2.7 KB, as the ternary GEMV's 2.5 KB).
    static constexpr int kRows = 2;

    template <int R>
    static void q8(const int8_t* x, const uint8_t* w, int64_t row_bytes, int64_t Kp, int32_t* out) {
        const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
        const __m256i ones = _mm256_set1_epi16(1);
        __m256i acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_si256();
        for (int64_t k = 0; k < Kp; k += 32) {
            qprefetch_next_group<R>(w, row_bytes, k, 32);
            const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k));
            for (int r = 0; r < R; ++r) {
                const __m256i wv = _mm256_xor_si256(
                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * row_bytes + k)), bias);
                const __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv));
                acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(p, ones));
            }
        }
        for (int r = 0; r < R; ++r) out[r] = hsum_epi32(acc[r]);
    }

    // Kp <= EDGEBIT_QLINEAR_MAX_K(4) = 8192: at most 128 chunks a row.
    static constexpr int kMaxChunks = 128;

    template <int R>
    static void q4(const int8_t* x, const int16_t* gsum, const uint8_t* w, int64_t row_bytes, int64_t Kp,
                   int32_t* out) {
        const __m256i low4 = _mm256_set1_epi8(0x0F);
        const int64_t chunks = Kp / 64;
        // Each chunk's two group scales as int16 (s0, s0, s1, s1): vpmaddwd's int32 lanes sum runs of four weights,
        // which alternate between the chunk's groups (qlinear_variant.h), so one broadcast 64-bit pattern scales
        // both groups in one vpmaddwd. Built once per row here (integer ports), read back as one broadcast load.
        alignas(32) uint64_t pattern[R][kMaxChunks];
        const uint8_t* sub[R];
        __m256i acc[R];
        for (int r = 0; r < R; ++r) {
            acc[r] = _mm256_setzero_si256();
            sub[r] = w + r * row_bytes + Kp / 2;
            int64_t c = 0;
            for (; c + 8 <= chunks; c += 8) {  // 16 scale bytes -> 8 patterns
                const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sub[r] + 2 * c)));
                const __m256i lo = _mm256_unpacklo_epi16(v, v);  // patterns of chunks c, c+1 | c+4, c+5
                const __m256i hi = _mm256_unpackhi_epi16(v, v);  // c+2, c+3 | c+6, c+7
                _mm256_store_si256(reinterpret_cast<__m256i*>(&pattern[r][c]), _mm256_permute2x128_si256(lo, hi, 0x20));
                _mm256_store_si256(reinterpret_cast<__m256i*>(&pattern[r][c + 4]), _mm256_permute2x128_si256(lo, hi, 0x31));
            }
            for (; c < chunks; ++c)
                pattern[r][c] = sub[r][2 * c] * UINT64_C(0x0000000000010001) + sub[r][2 * c + 1] * UINT64_C(0x0001000100000000);
        }
        for (int64_t c = 0; c < chunks; ++c) {
            // The next rows' bytes at the rate these are consumed, their group scales included.
            qprefetch_next_group<R>(w, row_bytes, 34 * c, 34);
            const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 64 * c));
            const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 64 * c + 32));
            for (int r = 0; r < R; ++r) {
                const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * row_bytes + 32 * c));
                const __m256i lo = _mm256_and_si256(p, low4);
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), low4);
                // Low nibbles (weights 64c + j) and high (64c + 32 + j) with the same j share their group: one
                // int16 sum (each term <= 2 * 15 * 127), then one vpmaddwd with the scales.
                const __m256i d = _mm256_add_epi16(_mm256_maddubs_epi16(lo, x0), _mm256_maddubs_epi16(hi, x1));
                const __m256i scales = _mm256_set1_epi64x(static_cast<long long>(pattern[r][c]));
                acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(d, scales));
            }
        }
        for (int r = 0; r < R; ++r)
            out[r] = static_cast<int32_t>(static_cast<uint32_t>(hsum_epi32(acc[r])) -
                                          8u * bias_sum(sub[r], gsum, Kp / 32));
    }
};

}  // namespace

void qtile_avx2(const QTileArgs& a) { run_qtiles<Avx2Q>(a); }

}  // namespace edgebit
