// C entry points of the quantized linear (int8 or 4-bit weights x per-token int8 activations),
// the LM head's own GEMV: argument checks, activation quantization into padded rows, the split
// of N into fixed chunks for the thread pool, and the float epilogue, which lives here (baseline
// ISA, -ffp-contract=off) so variants only produce int32 sums and outputs are bit-identical.
#include <string.h>

#include <new>
#include <vector>

#include "edgebit_kernels.h"
#include "kernel_variant.h"
#include "parallel_for.h"
#include "qlinear_variant.h"

namespace edgebit {
namespace {

constexpr int64_t kMSlab = 128;

bool bits_ok(int32_t bits) { return bits == 4 || bits == 8; }

int check_args(const char* fn, int64_t M, int64_t N, int64_t K, int32_t bits) {
    if (!bits_ok(bits))
        return set_error(EDGEBIT_ERR_BAD_SHAPE, "%s: bits=%d is not 4 or 8", fn, (int)bits);
    if (M <= 0 || N <= 0 || K <= 0)
        return set_error(EDGEBIT_ERR_BAD_SHAPE, "%s: M, N, K must be positive (M=%lld N=%lld K=%lld)", fn,
                         (long long)M, (long long)N, (long long)K);
    const int64_t max_k = EDGEBIT_QLINEAR_MAX_K(bits);
    if (K > max_k || M > EDGEBIT_MAX_DIM || N > EDGEBIT_MAX_DIM || M > EDGEBIT_MAX_ELEMENTS / N ||
        N > EDGEBIT_MAX_ELEMENTS / EDGEBIT_PADDED_K(K) || M > EDGEBIT_MAX_ELEMENTS / EDGEBIT_PADDED_K(K))
        return set_error(EDGEBIT_ERR_BAD_SHAPE,
                         "%s: shape beyond supported limits (M=%lld N=%lld K=%lld; K <= %lld for %d-bit weights)",
                         fn, (long long)M, (long long)N, (long long)K, (long long)max_k, (int)bits);
    return EDGEBIT_OK;
}

QTileFn qtile_for(const KernelVariant* v) {
    const char* n = v->name;
    (void)n;
#if defined(EDGEBIT_HAVE_AVX2)
    if (strcmp(n, "avx2") == 0 || strcmp(n, "avx512vnni") == 0) return qtile_avx2;
#endif
#if defined(EDGEBIT_HAVE_NEON_DOTPROD)
    if (strcmp(n, "neon_dotprod") == 0 || strcmp(n, "neon_i8mm") == 0) return qtile_neon_dotprod;
#endif
#if defined(EDGEBIT_HAVE_NEON)
    if (strcmp(n, "neon") == 0) return qtile_neon;
#endif
    return qtile_scalar;
}

struct QJob {
    QTileFn tile;
    const int8_t* xq;     // (M, Kp)
    const int16_t* gsum;  // (M, Kp/32)
    int64_t M, N, Kp;
    int bits;
    const uint8_t* w;
    int32_t* acc;         // (M, N) on the int32 path, else nullptr
    const float* scales;  // (M,) activation scales
    const float* wscale;  // (N,) row scales
    float* y;
};

void qjob_task(void* ctx, int64_t chunk) {
    const QJob& j = *static_cast<const QJob*>(ctx);
    const int64_t n0 = chunk * EDGEBIT_N_CHUNK;
    const int64_t nr = j.N - n0 < EDGEBIT_N_CHUNK ? j.N - n0 : EDGEBIT_N_CHUNK;
    alignas(64) int32_t local[kMSlab * EDGEBIT_N_CHUNK];
    QTileArgs a;
    a.xq = j.xq;
    a.gsum = j.gsum;
    a.M = j.M;
    a.K = j.Kp;
    a.w = j.w + n0 * qlinear_padded_row_bytes(j.Kp, j.bits);
    a.nr = nr;
    a.acc = j.y != nullptr ? local : j.acc + n0;
    a.ld = j.y != nullptr ? EDGEBIT_N_CHUNK : j.N;
    a.bits = j.bits;
    j.tile(a);
    if (j.y == nullptr) return;
    for (int64_t m = 0; m < j.M; ++m) {
        const float s = j.scales[m];
        const int32_t* acc = local + m * EDGEBIT_N_CHUNK;
        float* y = j.y + m * j.N + n0;
        const float* g = j.wscale + n0;
        for (int64_t r = 0; r < nr; ++r) y[r] = (static_cast<float>(acc[r]) / s) * g[r];
    }
}

// Sums of each row's activations over the 4-bit groups (qlinear_variant.h: group 2c + (j % 8) / 4 of chunk c).
void group_sums(const int8_t* xq, int64_t M, int64_t Kp, int16_t* gsum) {
    for (int64_t m = 0; m < M; ++m)
        for (int64_t c = 0; c < Kp / 64; ++c) {
            int s[2] = {0, 0};
            for (int j = 0; j < 64; ++j) s[(j % 8) / 4] += xq[m * Kp + 64 * c + j];
            gsum[m * (Kp / 32) + 2 * c] = static_cast<int16_t>(s[0]);  // |s| <= 32 * 127
            gsum[m * (Kp / 32) + 2 * c + 1] = static_cast<int16_t>(s[1]);
        }
}

// xq (M, Kp) with a zero tail, values in [-127, 127].
void run(QTileFn tile, const int8_t* xq, int64_t M, int64_t Kp, const uint8_t* w, int64_t N, int bits,
         int32_t* acc, const float* scales, const float* wscale, float* y, const edgebit_threading* threads) {
    std::vector<int16_t> gsum(static_cast<size_t>(M * (Kp / 32)));
    group_sums(xq, M, Kp, gsum.data());
    const int64_t slab = y != nullptr && M > kMSlab ? kMSlab : M;
    for (int64_t m0 = 0; m0 < M; m0 += slab) {
        QJob job = {tile, xq + m0 * Kp, gsum.data() + m0 * (Kp / 32), M - m0 < slab ? M - m0 : slab, N, Kp, bits,
                    w, acc != nullptr ? acc + m0 * N : nullptr, scales != nullptr ? scales + m0 : nullptr, wscale,
                    y != nullptr ? y + m0 * N : nullptr};
        run_parallel(threads, (N + EDGEBIT_N_CHUNK - 1) / EDGEBIT_N_CHUNK, qjob_task, &job);
    }
}

}  // namespace
}  // namespace edgebit

extern "C" {

int64_t edgebit_qlinear_row_bytes(int64_t K, int32_t bits) {
    if (K <= 0 || K > EDGEBIT_MAX_K || !edgebit::bits_ok(bits)) return -1;
    return edgebit::qlinear_padded_row_bytes(EDGEBIT_PADDED_K(K), bits);
}

int edgebit_qlinear_f32(const float* x, int64_t M, int64_t K, const uint8_t* w, int64_t N, int32_t bits,
                        const float* wscale, float* y, const edgebit_threading* threads) {
    using namespace edgebit;
    const char* fn = "edgebit_qlinear_f32";
    if (x == nullptr || w == nullptr || wscale == nullptr || y == nullptr)
        return set_error(EDGEBIT_ERR_NULL_POINTER, "%s: null pointer argument", fn);
    if (int st = check_args(fn, M, N, K, bits)) return st;
    int status = 0;
    const KernelVariant* v = active_variant(&status);
    if (v == nullptr) return status;
    const int64_t Kp = EDGEBIT_PADDED_K(K);
    try {
        std::vector<int8_t> xq(static_cast<size_t>(M * Kp));
        std::vector<float> scales(static_cast<size_t>(M));
        quantize_rows_padded(x, M, K, xq.data(), Kp, scales.data(), nullptr);
        run(qtile_for(v), xq.data(), M, Kp, w, N, bits, nullptr, scales.data(), wscale, y, threads);
    } catch (const std::bad_alloc&) {
        return set_error(EDGEBIT_ERR_OUT_OF_MEMORY, "%s: out of memory for scratch buffers", fn);
    }
    return EDGEBIT_OK;
}

int edgebit_qlinear_i32(const int8_t* xq, int64_t M, int64_t K, const uint8_t* w, int64_t N, int32_t bits,
                        int32_t* acc, const edgebit_threading* threads) {
    using namespace edgebit;
    const char* fn = "edgebit_qlinear_i32";
    if (xq == nullptr || w == nullptr || acc == nullptr)
        return set_error(EDGEBIT_ERR_NULL_POINTER, "%s: null pointer argument", fn);
    if (int st = check_args(fn, M, N, K, bits)) return st;
    for (int64_t i = 0; i < M * K; ++i)
        if (xq[i] == -128)
            return set_error(EDGEBIT_ERR_BAD_SHAPE,
                             "%s: activation [%lld, %lld] is -128; quantized activations are in [-127, 127]", fn,
                             (long long)(i / K), (long long)(i % K));
    int status = 0;
    const KernelVariant* v = active_variant(&status);
    if (v == nullptr) return status;
    const int64_t Kp = EDGEBIT_PADDED_K(K);
    try {
        std::vector<int8_t> rows(static_cast<size_t>(M * Kp), 0);
        for (int64_t m = 0; m < M; ++m) memcpy(rows.data() + m * Kp, xq + m * K, static_cast<size_t>(K));
        run(qtile_for(v), rows.data(), M, Kp, w, N, bits, acc, nullptr, nullptr, nullptr, threads);
    } catch (const std::bad_alloc&) {
        return set_error(EDGEBIT_ERR_OUT_OF_MEMORY, "%s: out of memory for scratch buffers", fn);
    }
    return EDGEBIT_OK;
}

}  // extern "C"
