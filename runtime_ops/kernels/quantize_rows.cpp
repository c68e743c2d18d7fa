// Per-row (per-token) int8 activation quantization, shared by every variant so that all of
// them see identical int8 inputs. Compiled with -ffp-contract=off and without ISA flags.
//
// Rounding: round-half-to-even via the 1.5 * 2^23 trick, (v + C) - C, which in the default
// rounding mode equals nearbyintf(v) for |v| < 2^22 (here |v| <= 127 * (1 + 2^-23) because
// s = 127 / max(absmax, 1e-5)), without a libm call per element, and vectorizable.
// This must not be contracted into an FMA with x * s: hence -ffp-contract=off on this file.
//
// Non-finite activations (documented in edgebit_kernels.h and docs/reliability.md): a row with
// any NaN or +-Inf gets scale NaN and all codes 0, so every output of that row is NaN, in every
// variant (they share this file and the epilogue) and in the PyTorch reference, where NaN and
// Inf propagate through amax / x * s / the matmul to the same all-NaN row. Poisoning the row
// rather than quantizing NaN to 0 keeps a numerical fault visible instead of silently hiding it.
//
// The loops are written with the baseline vector ISA of each architecture (SSE2 on x86-64,
// NEON on aarch64; both always present) because GCC will not vectorize the NaN-ignoring max
// reduction without -ffinite-math-only. Each vector lane performs exactly the scalar
// operations below (max is order-independent, the rest is element-wise), so results are
// identical to the scalar loop, which handles the tail and other architectures.
#include <math.h>

#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "edgebit_kernels.h"
#include "kernel_variant.h"

namespace edgebit {
namespace {

constexpr float kRound = 12582912.0f;  // 1.5 * 2^23

// max_k |x[k]|, and whether any x[k] is NaN (max ignores NaN, so it is tracked separately).
float row_absmax(const float* x, int64_t K, bool* has_nan) {
    float absmax = 0.0f;
    bool nan = false;
    int64_t k = 0;
#if defined(__SSE2__)
    const __m128 sign = _mm_set1_ps(-0.0f);
    __m128 m = _mm_setzero_ps(), unord = _mm_setzero_ps();
    for (; k + 4 <= K; k += 4) {  // maxps returns its second operand for NaN: NaN is ignored
        const __m128 v = _mm_loadu_ps(x + k);
        unord = _mm_or_ps(unord, _mm_cmpunord_ps(v, v));
        m = _mm_max_ps(_mm_andnot_ps(sign, v), m);
    }
    nan = _mm_movemask_ps(unord) != 0;
    float lanes[4];
    _mm_storeu_ps(lanes, m);
    for (float v : lanes) absmax = v > absmax ? v : absmax;
#elif defined(__aarch64__)
    float32x4_t m = vdupq_n_f32(0.0f);
    uint32x4_t ord = vdupq_n_u32(0xffffffffu);
    for (; k + 4 <= K; k += 4) {  // compare-select so NaN is ignored (vmaxq would propagate it)
        const float32x4_t v = vld1q_f32(x + k);
        ord = vandq_u32(ord, vceqq_f32(v, v));
        const float32x4_t a = vabsq_f32(v);
        m = vbslq_f32(vcgtq_f32(a, m), a, m);
    }
    nan = vminvq_u32(ord) == 0;
    float lanes[4];
    vst1q_f32(lanes, m);
    for (float v : lanes) absmax = v > absmax ? v : absmax;
#endif
    for (; k < K; ++k) {
        const float a = fabsf(x[k]);
        nan = nan || a != a;
        absmax = a > absmax ? a : absmax;  // NaN never compares greater: ignored
    }
    *has_nan = nan;
    return absmax;
}

void quantize_row(const float* x, int64_t K, int8_t* xq, float* scale) {
    bool has_nan = false;
    const float absmax = row_absmax(x, K, &has_nan);
    if (has_nan || absmax == INFINITY) {  // see the top of this file: the row's outputs are NaN
        *scale = NAN;
        for (int64_t k = 0; k < K; ++k) xq[k] = 0;
        return;
    }
    const float s = 127.0f / fmaxf(absmax, 1e-5f);
    *scale = s;
    int64_t k = 0;
#if defined(__SSE2__)
    const __m128 vs = _mm_set1_ps(s), rnd = _mm_set1_ps(kRound);
    const __m128 lo = _mm_set1_ps(-128.0f), hi = _mm_set1_ps(127.0f);
    for (; k + 16 <= K; k += 16) {
        __m128i q[4];
        for (int i = 0; i < 4; ++i) {
            const __m128 v = _mm_mul_ps(_mm_loadu_ps(x + k + 4 * i), vs);
            __m128 r = _mm_sub_ps(_mm_add_ps(v, rnd), rnd);
            r = _mm_and_ps(r, _mm_cmpord_ps(r, r));  // NaN -> 0 (defensive: rows with NaN return early)
            r = _mm_min_ps(_mm_max_ps(r, lo), hi);
            q[i] = _mm_cvtps_epi32(r);               // exact: r is integral
        }
        const __m128i q16a = _mm_packs_epi32(q[0], q[1]), q16b = _mm_packs_epi32(q[2], q[3]);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(xq + k), _mm_packs_epi16(q16a, q16b));
    }
#elif defined(__aarch64__)
    const float32x4_t vs = vdupq_n_f32(s), rnd = vdupq_n_f32(kRound);
    const float32x4_t lo = vdupq_n_f32(-128.0f), hi = vdupq_n_f32(127.0f);
    for (; k + 16 <= K; k += 16) {
        int32x4_t q[4];
        for (int i = 0; i < 4; ++i) {
            const float32x4_t v = vmulq_f32(vld1q_f32(x + k + 4 * i), vs);
            float32x4_t r = vsubq_f32(vaddq_f32(v, rnd), rnd);
            r = vbslq_f32(vceqq_f32(r, r), r, vdupq_n_f32(0.0f));  // NaN -> 0 (defensive, as above)
            r = vminq_f32(vmaxq_f32(r, lo), hi);
            q[i] = vcvtq_s32_f32(r);                                // exact: r is integral
        }
        const int16x8_t q16a = vcombine_s16(vqmovn_s32(q[0]), vqmovn_s32(q[1]));
        const int16x8_t q16b = vcombine_s16(vqmovn_s32(q[2]), vqmovn_s32(q[3]));
        vst1q_s8(xq + k, vcombine_s8(vqmovn_s16(q16a), vqmovn_s16(q16b)));
    }
#endif
    for (; k < K; ++k) {
        const float v = x[k] * s;
        float r = (v + kRound) - kRound;
        r = r < -128.0f ? -128.0f : r;
        r = r > 127.0f ? 127.0f : r;
        r = r == r ? r : 0.0f;  // unreachable for finite rows; kept so the cast is never UB
        xq[k] = static_cast<int8_t>(static_cast<int>(r));
    }
}

// The reference's F.relu(gate).square() * up over one row: r * r, then times up (NaN stays NaN: the
// comparison is false for NaN, which keeps g). A branch per element mispredicted on half of them
// (~3% of a decoded token in `perf`), hence the vector loops; each lane does the scalar's operations.
void relu2_gate_row(const float* gate, const float* up, int64_t K, float* out) {
    int64_t k = 0;
#if defined(__SSE2__)
    const __m128 zero = _mm_setzero_ps();
    for (; k + 4 <= K; k += 4) {  // maxps(0, g) = 0 > g ? 0 : g: g for NaN and for -0, as below
        const __m128 r = _mm_max_ps(zero, _mm_loadu_ps(gate + k));
        _mm_storeu_ps(out + k, _mm_mul_ps(_mm_mul_ps(r, r), _mm_loadu_ps(up + k)));
    }
#elif defined(__aarch64__)
    const float32x4_t zero = vdupq_n_f32(0.0f);
    for (; k + 4 <= K; k += 4) {  // select, not vmaxq: the same choice as the scalar line for NaN and -0
        const float32x4_t g = vld1q_f32(gate + k);
        const float32x4_t r = vbslq_f32(vcltq_f32(g, zero), zero, g);
        vst1q_f32(out + k, vmulq_f32(vmulq_f32(r, r), vld1q_f32(up + k)));
    }
#endif
    for (; k < K; ++k) {
        const float g = gate[k], r = g < 0.0f ? 0.0f : g;
        out[k] = (r * r) * up[k];
    }
}

}  // namespace

void rms_norm_row(const float* x, int64_t K, const float* w, float eps, float* y) {
    // Four double chains: each square of a float is exact in double (48 significant bits), so the
    // chains' order only moves the sum by double roundings (~1e-16 relative), not its float rounding.
    // The vector loops keep the same four chains (lanes 0-1 and 2-3 of each 4 values), so the sum
    // is bit-identical to the scalar loop's.
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    int64_t k = 0;
#if defined(__SSE2__)
    __m128d a01 = _mm_setzero_pd(), a23 = _mm_setzero_pd();
    for (; k + 4 <= K; k += 4) {
        // The norm's weights are read once a token, after this loop: fetched while it runs (decode found them in
        // DRAM, ~1% of a 1-thread token). One request a 64-byte line (every 16 floats), all inside w[0, K).
        if ((k & 15) == 0) __builtin_prefetch(w + k, 0, 3);
        const __m128 v = _mm_loadu_ps(x + k);
        const __m128d lo = _mm_cvtps_pd(v), hi = _mm_cvtps_pd(_mm_movehl_ps(v, v));
        a01 = _mm_add_pd(a01, _mm_mul_pd(lo, lo));
        a23 = _mm_add_pd(a23, _mm_mul_pd(hi, hi));
    }
    _mm_storeu_pd(acc, a01);
    _mm_storeu_pd(acc + 2, a23);
#elif defined(__aarch64__)
    float64x2_t a01 = vdupq_n_f64(0.0), a23 = vdupq_n_f64(0.0);
    for (; k + 4 <= K; k += 4) {  // vmulq + vaddq, not vfmaq: the scalar loop's two roundings
        if ((k & 15) == 0) __builtin_prefetch(w + k, 0, 3);  // the weights, as in the SSE2 loop
        const float32x4_t v = vld1q_f32(x + k);
        const float64x2_t lo = vcvt_f64_f32(vget_low_f32(v)), hi = vcvt_high_f64_f32(v);
        a01 = vaddq_f64(a01, vmulq_f64(lo, lo));
        a23 = vaddq_f64(a23, vmulq_f64(hi, hi));
    }
    vst1q_f64(acc, a01);
    vst1q_f64(acc + 2, a23);
#endif
    for (; k + 4 <= K; k += 4)
        for (int i = 0; i < 4; ++i) acc[i] += static_cast<double>(x[k + i]) * static_cast<double>(x[k + i]);
    for (; k < K; ++k) acc[0] += static_cast<double>(x[k]) * static_cast<double>(x[k]);
    const float mean_sq = static_cast<float>(((acc[0] + acc[1]) + (acc[2] + acc[3])) / static_cast<double>(K));
    const float inv = 1.0f / sqrtf(mean_sq + eps);
    for (k = 0; k < K; ++k) y[k] = w[k] * (x[k] * inv);
}

void quantize_rows_padded(const float* x, int64_t M, int64_t K, int8_t* xq, int64_t ldq,
                          float* scales, const Prologue* pro) {
    const bool gate = pro != nullptr && pro->relu2_gate, norm = pro != nullptr && pro->weight != nullptr;
    std::vector<float> buf(static_cast<size_t>(gate && norm ? 2 * K : (gate || norm) ? K : 0));
    float* gated = buf.data();
    float* normed = buf.data() + (gate && norm ? K : 0);
    for (int64_t m = 0; m < M; ++m) {  // one row at a time: its transformed copies never leave L1
        int8_t* row = xq + m * ldq;
        const float* in = x + m * (gate ? 2 * K : K);
        if (gate) {
            relu2_gate_row(in, in + K, K, gated);
            in = gated;
        }
        if (norm) {
            rms_norm_row(in, K, pro->weight, pro->eps, normed);
            in = normed;
        }
        quantize_row(in, K, row, scales + m);
        for (int64_t k = K; k < ldq; ++k) row[k] = 0;  // padding: zero activations
    }
}

}  // namespace edgebit

namespace {

// The row-wise entries' arguments: non-null pointers and a shape the library accepts, or an error status.
int check_rows(const char* fn, bool pointers_ok, int64_t M, int64_t K) {
    if (!pointers_ok) return edgebit::set_error(EDGEBIT_ERR_NULL_POINTER, "%s: null pointer argument", fn);
    if (M <= 0 || K <= 0 || M > EDGEBIT_MAX_DIM || K > EDGEBIT_MAX_K || M > EDGEBIT_MAX_ELEMENTS / K)
        return edgebit::set_error(EDGEBIT_ERR_BAD_SHAPE, "%s: bad shape M=%lld K=%lld", fn, (long long)M,
                                  (long long)K);
    return EDGEBIT_OK;
}

}  // namespace

extern "C" int edgebit_quantize_rows(const float* x, int64_t M, int64_t K, int8_t* xq,
                                     float* scales) {
    if (int st = check_rows("edgebit_quantize_rows", x && xq && scales, M, K)) return st;
    edgebit::quantize_rows_padded(x, M, K, xq, K, scales, nullptr);
    return EDGEBIT_OK;
}

extern "C" int edgebit_rms_norm_rows(const float* x, int64_t M, int64_t K, const float* w, float eps,
                                     float* y) {
    if (int st = check_rows("edgebit_rms_norm_rows", x && w && y, M, K)) return st;
    for (int64_t m = 0; m < M; ++m) edgebit::rms_norm_row(x + m * K, K, w, eps, y + m * K);
    return EDGEBIT_OK;
}
