// C entry points for the ternary product: argument checks, the split of N into fixed
// chunks handed to the thread pool, and the float epilogue. The epilogue lives here (one
// place, baseline ISA, -ffp-contract=off) so every variant shares it: variants only ever
// produce int32 sums, which are exact, hence outputs are bit-identical across variants.
//
// Layout v2 pads K up to Kp (whole 128-weight blocks). The tiles only ever see Kp: this file
// hands them activation rows of stride Kp whose tail is zero, quantized straight into that
// shape (the float entry points) or copied there (the int8 entry points, whose caller's rows
// have stride K), so the padding weights meet zero activations and add nothing, also in the
// SIMD variants' (code * x) - sum(x) form. When K is already a multiple of 128 nothing is
// copied and the path is the one layout v1 had.
#include <stddef.h>
#include <string.h>

#include <atomic>
#include <memory>
#include <new>
#include <vector>

#include "edgebit_kernels.h"
#include "kernel_variant.h"
#include "parallel_for.h"

namespace edgebit {
namespace {

// The float path runs at most this many activation rows per pass, bounding each task's int32
// tile (kMSlab x EDGEBIT_N_CHUNK) while one pass still covers a 128-token prefill, so each
// weight panel of the GEMM tiles is built once for all its rows.
constexpr int64_t kMSlab = 128;

// K is the logical in_features; the limits apply to the padded Kp, the size of the scratch
// rows and of the packed matrix.
int check_shape(const char* fn, int64_t M, int64_t N, int64_t K) {
    if (M <= 0 || N <= 0 || K <= 0)
        return set_error(EDGEBIT_ERR_BAD_SHAPE, "%s: M, N, K must be positive (M=%lld N=%lld K=%lld)",
                         fn, (long long)M, (long long)N, (long long)K);
    const int64_t Kp = K <= EDGEBIT_MAX_K ? EDGEBIT_PADDED_K(K) : K;
    if (M > EDGEBIT_MAX_DIM || N > EDGEBIT_MAX_DIM || K > EDGEBIT_MAX_K ||
        M > EDGEBIT_MAX_ELEMENTS / Kp || N > EDGEBIT_MAX_ELEMENTS / Kp ||
        M > EDGEBIT_MAX_ELEMENTS / N)
        return set_error(EDGEBIT_ERR_BAD_SHAPE,
                         "%s: shape beyond supported limits (M=%lld N=%lld K=%lld; K <= %lld)",
                         fn, (long long)M, (long long)N, (long long)K,
                         (long long)EDGEBIT_MAX_K);
    return EDGEBIT_OK;
}

// The caller's int8 rows (stride K) as rows of stride Kp with a zero tail: the rows themselves
// when K is whole blocks, else a padded copy kept in `scratch`.
const int8_t* padded_rows(const int8_t* xq, int64_t M, int64_t K, int64_t Kp,
                          std::vector<int8_t>& scratch) {
    if (K == Kp) return xq;
    scratch.assign(static_cast<size_t>(M * Kp), 0);
    for (int64_t m = 0; m < M; ++m)
        memcpy(scratch.data() + m * Kp, xq + m * K, static_cast<size_t>(K));
    return scratch.data();
}

// Everything from here on works on the padded Kp (named K): rows of stride Kp, Kp/4-byte
// packed rows.
struct GemmJob {
    TileFn tile;
    const int8_t* xq;      // (M, K), K = Kp, zero tail
    const int32_t* xsum;   // (M,)
    int64_t M, N, K;
    const uint8_t* packed; // (N, K/4)
    int32_t* acc;          // (M, N) int32 output; unused (nullptr) on the float path
    // Float epilogue, when y != nullptr: y[m, n] = ((float)acc[m, n] / scales[m]) * g[n],
    // g[n] = gammas[n] (one scale per output channel) or, when gammas is null, gamma.
    const float* scales;
    float gamma;
    const float* gammas;  // (N,) or nullptr
    float* y;
};

void gemm_task(void* ctx, int64_t chunk) {
    const GemmJob& j = *static_cast<const GemmJob*>(ctx);
    const int64_t n0 = chunk * EDGEBIT_N_CHUNK;
    const int64_t nr = j.N - n0 < EDGEBIT_N_CHUNK ? j.N - n0 : EDGEBIT_N_CHUNK;
    // The float path keeps a chunk's int32 sums in a task-local tile (32 KB, read back by the
    // epilogue while still in cache) instead of an (M, N) scratch matrix that every call
    // allocated, zeroed and paged in (3.5 MB for a 128-token prefill of a 6912-row matrix).
    alignas(64) int32_t local[kMSlab * EDGEBIT_N_CHUNK];
    TileArgs a;
    a.xq = j.xq;
    a.xsum = j.xsum;
    a.M = j.M;
    a.K = j.K;
    a.w = j.packed + n0 * (j.K / 4);
    a.nr = nr;
    a.acc = j.y != nullptr ? local : j.acc + n0;
    a.ld = j.y != nullptr ? EDGEBIT_N_CHUNK : j.N;
    // The epilogue's per-channel scales are read once a token, so in decode they came from DRAM after the tile
    // (~1% of a 1-thread token); requested now, they arrive while the tile runs.
    if (j.y != nullptr && j.gammas != nullptr)
        for (int64_t r = 0; r < nr; r += 16) __builtin_prefetch(j.gammas + n0 + r, 0, 3);
    j.tile(a);
    if (j.y == nullptr) return;
    for (int64_t m = 0; m < j.M; ++m) {
        const float s = j.scales[m];
        const int32_t* acc = local + m * EDGEBIT_N_CHUNK;
        float* y = j.y + m * j.N + n0;
        if (j.gammas != nullptr) {
            const float* g = j.gammas + n0;
            for (int64_t r = 0; r < nr; ++r) y[r] = (static_cast<float>(acc[r]) / s) * g[r];
        } else {
            for (int64_t r = 0; r < nr; ++r) y[r] = (static_cast<float>(acc[r]) / s) * j.gamma;
        }
    }
}

void row_sums(const int8_t* xq, int64_t M, int64_t K, int32_t* xsum) {
    for (int64_t m = 0; m < M; ++m) {
        int32_t s = 0;
        for (int64_t k = 0; k < K; ++k) s += xq[m * K + k];
        xsum[m] = s;
    }
}

void run_gemm(GemmJob& job, const edgebit_threading* threads) {
    const int64_t chunks = (job.N + EDGEBIT_N_CHUNK - 1) / EDGEBIT_N_CHUNK;
    run_parallel(threads, chunks, gemm_task, &job);
}

// Float output in slabs of kMSlab activation rows. Arguments already validated; xq has row
// stride K = Kp (padded). gammas (N,) gives one scale per output channel; nullptr means the
// single gamma for all.
int gemm_q8(const char* fn, TileFn tile, const int8_t* xq, const float* scales, int64_t M,
            const uint8_t* packed, int64_t N, int64_t K, float gamma, const float* gammas,
            float* y, const edgebit_threading* threads) {
    try {
        const int64_t slab = M < kMSlab ? M : kMSlab;
        std::vector<int32_t> xsum(static_cast<size_t>(M));
        row_sums(xq, M, K, xsum.data());
        for (int64_t m0 = 0; m0 < M; m0 += slab) {
            GemmJob job;
            job.tile = tile;
            job.xq = xq + m0 * K;
            job.xsum = xsum.data() + m0;
            job.M = M - m0 < slab ? M - m0 : slab;
            job.N = N;
            job.K = K;
            job.packed = packed;
            job.acc = nullptr;
            job.scales = scales + m0;
            job.gamma = gamma;
            job.gammas = gammas;
            job.y = y + m0 * N;
            run_gemm(job, threads);
        }
    } catch (const std::bad_alloc&) {
        return set_error(EDGEBIT_ERR_OUT_OF_MEMORY, "%s: out of memory for scratch buffers", fn);
    } catch (...) {
        return set_error(EDGEBIT_ERR_INTERNAL, "%s: unexpected exception", fn);
    }
    return EDGEBIT_OK;
}

// A prompt's rows are quantized (with the norm / gate prologue) on the pool too: on the calling thread alone they
// were ~3% of a 128-token prefill during which the other threads waited (perf, 2 threads). Rows are independent, so
// the split changes no bit. Decode (one row) stays on the calling thread.
constexpr int64_t kQuantRowsPerTask = 8;

struct QuantJob {
    const float* x;
    int64_t x_stride;  // K, or 2K with the gate's (gate | up) rows
    int64_t M, K, ldq;
    int8_t* xq;
    float* scales;
    const Prologue* pro;
    std::atomic<bool> out_of_memory{false};
};

void quant_task(void* ctx, int64_t t) {
    QuantJob& j = *static_cast<QuantJob*>(ctx);
    const int64_t m0 = t * kQuantRowsPerTask;
    const int64_t rows = j.M - m0 < kQuantRowsPerTask ? j.M - m0 : kQuantRowsPerTask;
    try {  // a task must not throw into the runtime's pool
        quantize_rows_padded(j.x + m0 * j.x_stride, rows, j.K, j.xq + m0 * j.ldq, j.ldq, j.scales + m0, j.pro);
    } catch (const std::bad_alloc&) {
        j.out_of_memory.store(true);
    }
}

// quantize_rows_padded over the pool (may throw std::bad_alloc).
void quantize_rows_threaded(const float* x, int64_t M, int64_t K, int8_t* xq, int64_t ldq, float* scales,
                            const Prologue* pro, const edgebit_threading* threads) {
    if (M < 2 * kQuantRowsPerTask) return quantize_rows_padded(x, M, K, xq, ldq, scales, pro);
    QuantJob job;
    job.x = x;
    job.x_stride = pro != nullptr && pro->relu2_gate ? 2 * K : K;
    job.M = M;
    job.K = K;
    job.ldq = ldq;
    job.xq = xq;
    job.scales = scales;
    job.pro = pro;
    run_parallel(threads, (M + kQuantRowsPerTask - 1) / kQuantRowsPerTask, quant_task, &job);
    if (job.out_of_memory.load()) throw std::bad_alloc();
}

// The fused entry points: quantize each row into the padded scratch, then gemm_q8
// (per-tensor gamma or gammas[N]).
int linear_f32(const char* fn, const float* x, int64_t M, int64_t K, const uint8_t* packed,
               int64_t N, float gamma, const float* gammas, float* y,
               const edgebit_threading* threads, const Prologue* pro = nullptr) {
    if (x == nullptr || packed == nullptr || y == nullptr)
        return set_error(EDGEBIT_ERR_NULL_POINTER, "%s: null pointer argument", fn);
    if (int st = check_shape(fn, M, N, K)) return st;
    int status = 0;
    const KernelVariant* v = active_variant(&status);
    if (v == nullptr) return status;
    const int64_t Kp = EDGEBIT_PADDED_K(K);
    try {
        // Not value-initialized: quantization writes every byte, padding included (a zeroing pass over a prompt's
        // rows showed in perf).
        const std::unique_ptr<int8_t[]> xq(new int8_t[static_cast<size_t>(M * Kp)]);
        std::vector<float> scales(static_cast<size_t>(M));
        quantize_rows_threaded(x, M, K, xq.get(), Kp, scales.data(), pro, threads);
        return gemm_q8(fn, v->tile, xq.get(), scales.data(), M, packed, N, Kp, gamma, gammas, y,
                       threads);
    } catch (const std::bad_alloc&) {
        return set_error(EDGEBIT_ERR_OUT_OF_MEMORY, "%s: out of memory for scratch buffers", fn);
    }
}

}  // namespace
}  // namespace edgebit

extern "C" {

int edgebit_ternary_gemm_i32(const int8_t* xq, int64_t M, const uint8_t* packed, int64_t N,
                             int64_t K, int32_t* acc, const edgebit_threading* threads) {
    using namespace edgebit;
    const char* fn = "edgebit_ternary_gemm_i32";
    if (xq == nullptr || packed == nullptr || acc == nullptr)
        return set_error(EDGEBIT_ERR_NULL_POINTER, "%s: null pointer argument", fn);
    if (int st = check_shape(fn, M, N, K)) return st;
    int status = 0;
    const KernelVariant* v = active_variant(&status);
    if (v == nullptr) return status;
    const int64_t Kp = EDGEBIT_PADDED_K(K);
    try {
        std::vector<int8_t> scratch;
        const int8_t* rows = padded_rows(xq, M, K, Kp, scratch);
        std::vector<int32_t> xsum(static_cast<size_t>(M));
        row_sums(rows, M, Kp, xsum.data());
        GemmJob job = {v->tile, rows,    xsum.data(), M,    N,      Kp,
                       packed,  acc,     nullptr,     0.0f, nullptr, nullptr};
        run_gemm(job, threads);
    } catch (const std::bad_alloc&) {
        return set_error(EDGEBIT_ERR_OUT_OF_MEMORY, "%s: out of memory for scratch buffers", fn);
    }
    return EDGEBIT_OK;
}

int edgebit_ternary_gemm_q8(const int8_t* xq, const float* scales, int64_t M,
                            const uint8_t* packed, int64_t N, int64_t K, float gamma, float* y,
                            const edgebit_threading* threads) {
    using namespace edgebit;
    const char* fn = "edgebit_ternary_gemm_q8";
    if (xq == nullptr || scales == nullptr || packed == nullptr || y == nullptr)
        return set_error(EDGEBIT_ERR_NULL_POINTER, "%s: null pointer argument", fn);
    if (int st = check_shape(fn, M, N, K)) return st;
    int status = 0;
    const KernelVariant* v = active_variant(&status);
    if (v == nullptr) return status;
    const int64_t Kp = EDGEBIT_PADDED_K(K);
    try {
        std::vector<int8_t> scratch;
        const int8_t* rows = padded_rows(xq, M, K, Kp, scratch);
        return gemm_q8(fn, v->tile, rows, scales, M, packed, N, Kp, gamma, nullptr, y, threads);
    } catch (const std::bad_alloc&) {
        return set_error(EDGEBIT_ERR_OUT_OF_MEMORY, "%s: out of memory for scratch buffers", fn);
    }
}

int edgebit_ternary_linear_f32(const float* x, int64_t M, int64_t K, const uint8_t* packed,
                               int64_t N, float gamma, float* y,
                               const edgebit_threading* threads) {
    return edgebit::linear_f32("edgebit_ternary_linear_f32", x, M, K, packed, N, gamma, nullptr,
                               y, threads);
}

int edgebit_ternary_linear_f32_channels(const float* x, int64_t M, int64_t K,
                                        const uint8_t* packed, int64_t N, const float* gamma,
                                        float* y, const edgebit_threading* threads) {
    if (gamma == nullptr)
        return edgebit::set_error(EDGEBIT_ERR_NULL_POINTER,
                                  "edgebit_ternary_linear_f32_channels: null pointer argument");
    return edgebit::linear_f32("edgebit_ternary_linear_f32_channels", x, M, K, packed, N, 0.0f,
                               gamma, y, threads);
}

int edgebit_ternary_linear_f32_rmsnorm(const float* x, int64_t M, int64_t K, const float* norm_w,
                                       float eps, const uint8_t* packed, int64_t N, const float* gamma,
                                       float* y, const edgebit_threading* threads) {
    const char* fn = "edgebit_ternary_linear_f32_rmsnorm";
    if (gamma == nullptr || norm_w == nullptr)
        return edgebit::set_error(EDGEBIT_ERR_NULL_POINTER, "%s: null pointer argument", fn);
    const edgebit::Prologue norm = {norm_w, eps, false};
    return edgebit::linear_f32(fn, x, M, K, packed, N, 0.0f, gamma, y, threads, &norm);
}

int edgebit_ternary_linear_f32_relu2(const float* x, int64_t M, int64_t K, const float* norm_w, float eps,
                                     const uint8_t* packed, int64_t N, const float* gamma, float* y,
                                     const edgebit_threading* threads) {
    const char* fn = "edgebit_ternary_linear_f32_relu2";
    if (gamma == nullptr)
        return edgebit::set_error(EDGEBIT_ERR_NULL_POINTER, "%s: null pointer argument", fn);
    if (K > EDGEBIT_MAX_ELEMENTS / 2)
        return edgebit::set_error(EDGEBIT_ERR_BAD_SHAPE, "%s: bad shape K=%lld", fn, static_cast<long long>(K));
    const edgebit::Prologue pro = {norm_w, eps, true};
    return edgebit::linear_f32(fn, x, M, K, packed, N, 0.0f, gamma, y, threads, &pro);
}

}  // extern "C"
