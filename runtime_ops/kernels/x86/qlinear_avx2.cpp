// AVX2 quantized linear (qlinear_driver.h; compiled with -mavx2 only, and used by the
// avx512vnni variant too: the head is one GEMV a token, bandwidth-bound on either).
// q8: vpmaddubsw needs one unsigned operand: |w| (0..128) times x * sign(w) (x in [-127, 127],
//     so the sign flip never overflows), pairs <= 2 * 128 * 127 = 32512: no saturation.
// q4: unsigned nibbles (q + 8, 0..15) times x, pairs <= 2 * 15 * 127 = 3810; vpmaddwd with the
//     group's scale (<= 255) widens to int32; the +8 bias is removed once per row by
//     8 * sum_g scale[g] * gsum[g]. int32 lanes wrap like the scalar twin's uint32 sums.
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
    static constexpr int kRows = 4;  // 4 weight rows stream side by side per activation load

    template <int R>
    static void q8(const int8_t* x, const uint8_t* w, int64_t row_bytes, int64_t Kp, int32_t* out) {
        const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
        const __m256i ones = _mm256_set1_epi16(1);
        __m256i acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_si256();
        for (int64_t k = 0; k < Kp; k += 32) {
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

    template <int R>
    static void q4(const int8_t* x, const int16_t* gsum, const uint8_t* w, int64_t row_bytes, int64_t Kp,
                   int32_t* out) {
        const __m256i low4 = _mm256_set1_epi8(0x0F);
        const uint8_t* sub[R];
        __m256i acc[R];
        for (int r = 0; r < R; ++r) {
            acc[r] = _mm256_setzero_si256();
            sub[r] = w + r * row_bytes + Kp / 2;
        }
        for (int64_t c = 0; c < Kp / 64; ++c) {
            const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 64 * c));
            const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 64 * c + 32));
            for (int r = 0; r < R; ++r) {
                const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * row_bytes + 32 * c));
                const __m256i lo = _mm256_and_si256(p, low4);
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), low4);
                const __m256i d0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, x0), _mm256_set1_epi16(sub[r][2 * c]));
                const __m256i d1 =
                    _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x1), _mm256_set1_epi16(sub[r][2 * c + 1]));
                acc[r] = _mm256_add_epi32(acc[r], _mm256_add_epi32(d0, d1));
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
