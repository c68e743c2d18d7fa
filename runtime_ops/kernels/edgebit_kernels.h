/*
 * edgebit ternary kernels: public C API.
 *
 * Computes y[m, n] = ((float)acc[m, n] / s[m]) * gamma with
 *   acc[m, n] = sum_{k < K} xq[m, k] * w[n, k]   (int32, exact)
 * for int8 activations xq (one float scale s[m] per row, see edgebit_quantize_rows) and
 * ternary weights w in {-1, 0, +1} stored in packed layout version 2 (below).
 *
 * Every kernel variant (scalar, avx2, avx512vnni, neon, neon_dotprod, neon_i8mm) returns
 * bit-identical int32 sums, hence bit-identical float outputs, for any thread count.
 *
 * Packed layout, version 2 (EDGEBIT_LAYOUT_VERSION; docs/weight-layout.md):
 *   W_t [N, K], any K >= 1. Kp = ceil(K/128)*128 (EDGEBIT_PADDED_K).
 *   -> uint8 packed[N, Kp/4], row-major (EDGEBIT_PACKED_ROW_BYTES(K) bytes a row).
 *   Block b (0 .. Kp/128-1) of row n is the 32 bytes at packed[n*Kp/4 + 32*b].
 *   Byte j (0..31) of a block holds, in bits 2i..2i+1 (i = 0..3), the code of weight
 *   k = 128*b + 32*i + j. Code = w + 1 (0 -> -1, 1 -> 0, 2 -> +1).
 *   Weights k >= K are padding and hold code 1 (weight 0). The kernels never rely on that:
 *   they multiply the padding by zero activations (every entry point below zero-pads the
 *   activation rows to Kp internally), so any code there contributes nothing.
 *   Version 1 was the same with K % 128 == 0 required (Kp == K): a v1 matrix is a v2 matrix
 *   byte for byte; only the version number artifacts record differs.
 *   Code 3 never appears in valid data; every variant treats it as weight +2 (code - 1),
 *   so the result is still defined and identical across variants.
 *
 * K in every entry point below is the LOGICAL in_features (the activations' row length,
 * 1 .. EDGEBIT_MAX_K); the packed buffer must hold N * EDGEBIT_PACKED_ROW_BYTES(K) bytes and
 * is never read past that.
 *
 * Thread safety: all compute functions are reentrant. edgebit_force_variant changes a
 * process-wide selection and should not race with running kernels.
 * Errors: functions return EDGEBIT_OK (0) or a positive status; edgebit_last_error()
 * then returns a message for the calling thread. No function throws or aborts on bad input.
 */
#ifndef EDGEBIT_KERNELS_H
#define EDGEBIT_KERNELS_H

#include <stdint.h>

#if defined(_WIN32)
#define EDGEBIT_API
#else
/* Default visibility even under -fvisibility=hidden: these are the only exported symbols
 * of libedgebit_kernels.so. Runtime plug-ins that link the same objects but must export
 * only their entry point hide these with a linker version script. */
#define EDGEBIT_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define EDGEBIT_LAYOUT_VERSION 2
#define EDGEBIT_BLOCK_K 128 /* packed rows hold whole blocks of this many weights */
/* K rounded up to whole blocks, and the bytes of one packed row (K >= 1). */
#define EDGEBIT_PADDED_K(K) ((((K) + EDGEBIT_BLOCK_K - 1) / EDGEBIT_BLOCK_K) * EDGEBIT_BLOCK_K)
#define EDGEBIT_PACKED_ROW_BYTES(K) (EDGEBIT_PADDED_K(K) / 4)

/* Status codes. */
enum {
    EDGEBIT_OK = 0,
    EDGEBIT_ERR_NULL_POINTER = 1,     /* a required pointer argument is NULL */
    EDGEBIT_ERR_BAD_SHAPE = 2,        /* M, N or K <= 0, or beyond the supported limits */
    EDGEBIT_ERR_K_NOT_MULTIPLE = 3,   /* layout v1 only (K % 128 != 0); kept for ABI, no longer
                                         returned: layout v2 pads K (see above) */
    EDGEBIT_ERR_UNKNOWN_VARIANT = 4,  /* variant name is not one edgebit knows */
    EDGEBIT_ERR_VARIANT_NOT_BUILT = 5,/* known variant, not compiled into this library */
    EDGEBIT_ERR_VARIANT_UNSUPPORTED = 6, /* compiled, but this CPU lacks the instructions */
    EDGEBIT_ERR_OUT_OF_MEMORY = 7,
    EDGEBIT_ERR_INTERNAL = 8
};

/* Limits checked by every entry point. K_MAX keeps |acc| <= 128 * 2 * K < 2^31; it is a
 * multiple of 128, so padding never takes Kp past it. */
#define EDGEBIT_MAX_K (INT64_C(1) << 22)
#define EDGEBIT_MAX_DIM (INT64_C(1) << 31)       /* M and N */
#define EDGEBIT_MAX_ELEMENTS (INT64_C(1) << 48)  /* M*K, N*K, M*N */

/* ---- threading ------------------------------------------------------------------- */

/* One unit of work: the kernels call it once for every task_index in [0, n_tasks). */
typedef void (*edgebit_task_fn)(void* task_ctx, int64_t task_index);

/* A runtime's parallel-for: must call task(task_ctx, i) exactly once for each i in
 * [0, n_tasks), in any order and on any threads, and return only when all calls returned.
 * pool_ctx is edgebit_threading.pool_ctx, passed through untouched. */
typedef void (*edgebit_parallel_for_fn)(void* pool_ctx, int64_t n_tasks,
                                        edgebit_task_fn task, void* task_ctx);

typedef struct edgebit_threading {
    /* The runtime's pool (ONNX Runtime, ExecuTorch threadpool, ...), or edgebit's own
     * (edgebit_threadpool_parallel_for with an edgebit_threadpool as pool_ctx). NULL: use
     * the built-in fallback, a process-wide edgebit_threadpool with num_threads threads. */
    edgebit_parallel_for_fn parallel_for;
    void* pool_ctx;
    /* Threads for the fallback (<= 1: run on the calling thread; capped at 256). Ignored
     * when parallel_for is set. The fallback pool is created on first use and grows to the
     * largest count asked for (and needed: never more threads than tasks); a call asking
     * for fewer threads uses only that many. Concurrent fallback calls from several threads
     * share it: one gets the workers, the others run serially on their own thread (see
     * edgebit_threadpool below; give each thread its own pool to avoid that). Its workers
     * live until the library is unloaded or the process exits; a forked child starts a
     * fresh one. */
    int32_t num_threads;
} edgebit_threading;

/* Work is split along N into chunks of this many output rows; chunk boundaries depend
 * only on N, so results never depend on the thread count or on the pool. */
#define EDGEBIT_N_CHUNK 64

/* The fallback as a parallel-for: pool_ctx points to an int32_t thread count (NULL or
 * <= 1: serial). Same as {NULL, NULL, count}: runs on the process-wide pool (no threads are
 * started per call since the persistent pool was added; the name is historical). */
EDGEBIT_API void edgebit_std_thread_parallel_for(void* pool_ctx, int64_t n_tasks,
                                                 edgebit_task_fn task, void* task_ctx);

/* A persistent thread pool. A pool of N threads is the calling thread plus N-1 workers
 * started by edgebit_threadpool_create; a parallel_for wakes them (they poll briefly after
 * each call, then sleep on a condition variable), tasks are claimed from an atomic counter,
 * and the call returns once every task has returned. Use it as
 *     edgebit_threading t = {edgebit_threadpool_parallel_for, pool, 0};
 * Concurrency: different pools may be used from different threads at the same time. A pool
 * runs one parallel_for at a time: a call that finds it busy (another thread's call, or a
 * task calling back into its own pool) runs all of its tasks on the calling thread instead
 * of waiting, so it neither deadlocks nor blocks. Results are the same either way (chunking
 * never depends on threads). Not usable in a forked child; create a new pool there.
 * Idle workers poll for 100 microseconds after each call before sleeping (a busy core then,
 * but no wake-up cost for back-to-back calls); the environment variable EDGEBIT_SPIN_US
 * sets that time (0: sleep at once), read when a pool is created. Pools with more threads
 * than the machine has cores never poll. */
typedef struct edgebit_threadpool edgebit_threadpool;

/* num_threads in [1, 1024] (1: no workers, everything runs on the caller). Returns NULL on
 * a bad count or if the worker threads cannot be started (see edgebit_last_error). */
EDGEBIT_API edgebit_threadpool* edgebit_threadpool_create(int32_t num_threads);

/* Stops and joins the workers, then frees the pool. NULL is a no-op. Waits for a running
 * parallel_for to finish; must not be called from one of the pool's tasks. */
EDGEBIT_API void edgebit_threadpool_destroy(edgebit_threadpool* pool);

/* An edgebit_parallel_for_fn: pool_ctx is an edgebit_threadpool* (NULL: serial). */
EDGEBIT_API void edgebit_threadpool_parallel_for(void* pool_ctx, int64_t n_tasks,
                                                 edgebit_task_fn task, void* task_ctx);

/* ---- compute ---------------------------------------------------------------------- */

/* Per-row int8 quantization: absmax = max_k |x[m,k]|, scales[m] = 127 / max(absmax, 1e-5),
 * xq = clamp(round_half_even(x * scales[m]), -128, 127). x [M,K], xq [M,K], scales [M].
 * Any K > 0 is accepted here. Non-finite input: a row holding any NaN or +-Inf gets
 * scales[m] = NaN and all codes 0, so every output of that row (from the gemm_q8 / linear
 * entry points) is NaN; other rows are unaffected. The reference model behaves the same. */
EDGEBIT_API int edgebit_quantize_rows(const float* x, int64_t M, int64_t K,
                                      int8_t* xq, float* scales);

/* Exact int32 product acc[M,N] = xq[M,K] . W_t[N,K]^T. Exposed for tests and tools.
 * xq rows have stride K (logical); when K % 128 != 0 they are copied into a zero-padded
 * scratch of stride Kp first (the GEMM entry points below do the same). */
EDGEBIT_API int edgebit_ternary_gemm_i32(const int8_t* xq, int64_t M, const uint8_t* packed,
                                         int64_t N, int64_t K, int32_t* acc,
                                         const edgebit_threading* threads);

/* y[M,N] = (acc / scales[m]) * gamma. GEMV when M == 1, GEMM when M > 1.
 * threads may be NULL (single-threaded). */
EDGEBIT_API int edgebit_ternary_gemm_q8(const int8_t* xq, const float* scales, int64_t M,
                                        const uint8_t* packed, int64_t N, int64_t K,
                                        float gamma, float* y,
                                        const edgebit_threading* threads);

/* Fused: quantize each row of x [M,K] then edgebit_ternary_gemm_q8. What custom ops call.
 * The rows are quantized straight into a scratch of stride Kp with a zero tail (no copy). */
EDGEBIT_API int edgebit_ternary_linear_f32(const float* x, int64_t M, int64_t K,
                                           const uint8_t* packed, int64_t N, float gamma,
                                           float* y, const edgebit_threading* threads);

/* As edgebit_ternary_linear_f32 with one scale per output channel:
 * y[m, n] = ((float)acc[m, n] / s[m]) * gamma[n], gamma [N]. Linears that share an input
 * (q/k/v, gate/up) run as one call on their concatenated weights and gammas, sharing one
 * activation quantization. Same kernels, chunking and threading as the per-tensor entry. */
EDGEBIT_API int edgebit_ternary_linear_f32_channels(const float* x, int64_t M, int64_t K,
                                                    const uint8_t* packed, int64_t N,
                                                    const float* gamma, float* y,
                                                    const edgebit_threading* threads);

/* RMSNorm of each row, as edgebit defines it (the reference model's rms_norm computes the same floats):
 * ms = the mean of x[m,k]^2 over k, summed in double (each square is exact there) and rounded once to
 * float, so the summation order cannot change it short of a double rounding landing on a float rounding
 * boundary; y[m,k] = w[k] * (x[m,k] * (1.0f / sqrtf(ms + eps))), all in float. x, y [M,K], w [K].
 * A row with a NaN or Inf gives NaN outputs (Inf * 0), which the quantization then poisons as above. */
EDGEBIT_API int edgebit_rms_norm_rows(const float* x, int64_t M, int64_t K, const float* w, float eps,
                                      float* y);

/* edgebit_ternary_linear_f32_channels of edgebit_rms_norm_rows(x, norm_w, eps): the input norm fused into
 * the linear (each row is normalized into an L1-sized buffer just before its quantization), so a graph
 * needs no norm nodes before a BitLinear. Bit for bit the two calls in sequence. */
EDGEBIT_API int edgebit_ternary_linear_f32_rmsnorm(const float* x, int64_t M, int64_t K,
                                                   const float* norm_w, float eps,
                                                   const uint8_t* packed, int64_t N,
                                                   const float* gamma, float* y,
                                                   const edgebit_threading* threads);

/* The down projection of BitNet's ReLU^2 GLU with what precedes its quantization fused in: x [M, 2K] holds each row's
 * [gate (K) | up (K)] (the gate/up linear's output as is), h = relu(gate)^2 * up (float steps: r * r, then * up),
 * then edgebit_rms_norm_rows(h, norm_w, eps) when norm_w is non-null (the sub-norm), then
 * edgebit_ternary_linear_f32_channels. Bit for bit those steps in sequence. */
EDGEBIT_API int edgebit_ternary_linear_f32_relu2(const float* x, int64_t M, int64_t K, const float* norm_w,
                                                 float eps, const uint8_t* packed, int64_t N,
                                                 const float* gamma, float* y,
                                                 const edgebit_threading* threads);

/* ---- quantized linear (the LM head) ----------------------------------------------- */

/* y[m, n] = ((float)acc[m, n] / s[m]) * scale[n], acc = xq[m] . q[n] exact in int32, for per-row
 * int8 activations (edgebit_quantize_rows) and weights quantized to `bits` (8 or 4): the LM head's
 * own GEMV. Rows are Kp = EDGEBIT_PADDED_K(K) weights, edgebit_qlinear_row_bytes(K, bits) bytes:
 *   bits 8: Kp bytes, byte k = q + 128, q in [-127, 127] (weight = q * scale[n]); the embedding
 *           reads the same rows (ONNX Runtime's MatMulNBits 8-bit blob is this layout).
 *   bits 4: Kp/2 nibble bytes, then Kp/32 group scales sub[g] (uint8). In each 64-weight chunk c
 *           (32 bytes) byte j holds weight 64c + j in its low nibble and 64c + 32 + j in its high
 *           one, as q + 8 (q in [-8, 7]). Weight 64c + j is in group g = 2c + (j % 8) / 4 (runs of
 *           four weights alternate between the chunk's two groups); it stands for q * sub[g] * scale[n],
 *           and acc = sum_g sub[g] * sum_{k in g} xq[k] * q[k].
 * Padding weights (k >= K) meet zero activations. The sums are exact for valid weights when
 * K <= EDGEBIT_QLINEAR_MAX_K(bits); every variant gives identical int32 sums (wrapping) even beyond.
 * Variants: scalar, avx2 (also under avx512vnni), neon, neon_dotprod (also under neon_i8mm). */
#define EDGEBIT_QLINEAR_GROUP 32
#define EDGEBIT_QLINEAR_MAX_K(bits) ((bits) == 4 ? INT64_C(8192) : INT64_C(131072))

/* Bytes of one weight row, or -1 for K outside 1..EDGEBIT_MAX_K or bits not 4 / 8. */
EDGEBIT_API int64_t edgebit_qlinear_row_bytes(int64_t K, int32_t bits);

EDGEBIT_API int edgebit_qlinear_f32(const float* x, int64_t M, int64_t K, const uint8_t* w, int64_t N,
                                    int32_t bits, const float* scale, float* y,
                                    const edgebit_threading* threads);

/* The exact int32 sums acc[M, N] for int8 rows xq [M, K] (values in [-127, 127]; -128 is refused),
 * for tests and tools. */
EDGEBIT_API int edgebit_qlinear_i32(const int8_t* xq, int64_t M, int64_t K, const uint8_t* w, int64_t N,
                                    int32_t bits, int32_t* acc, const edgebit_threading* threads);

/* ---- attention over a KV cache ---------------------------------------------------- */

/* Causal grouped-query attention of T new queries against a float32 KV cache, reading only the
 * cached positions each query may see (never the whole buffer):
 *   out[t, h, :] = sum_{kv_start <= j <= pos[t]} softmax_j(scale * q[t, h, :] . k[h / G, j, :]) v[h / G, j, :]
 * q and out [T, Hq, D]; k_cache and v_cache [Hkv, S, D] (row j of head h at (h * S + j) * D);
 * pos [T], each in [0, S); kv_start in [0, S), the first key (a batch row's left padding before it; a
 * query with pos < kv_start sees nothing and gets zeros); G = Hq / Hkv query heads share a kv head (consecutive heads, as
 * repeat_interleave). Keys are split into chunks of EDGEBIT_ATTENTION_CHUNK positions whose softmax
 * partials are merged (flash-decoding), so one query's keys spread over the threads; the split
 * depends on the positions only, never on threads. The float order differs from a plain softmax
 * (about 1e-6 relative); every variant gives the same bits as "scalar". Variants: scalar, avx2
 * (also under avx512vnni), neon (all ARM variants). */
#define EDGEBIT_ATTENTION_CHUNK 256
#define EDGEBIT_ATTENTION_MAX_D 4096
EDGEBIT_API int edgebit_attention_f32(const float* q, int64_t T, int64_t Hq, const float* k_cache,
                                      const float* v_cache, int64_t Hkv, int64_t S, int64_t D,
                                      const int64_t* pos, int64_t kv_start, float scale, float* out,
                                      const edgebit_threading* threads);

/* The same over an fp16 cache (IEEE binary16 bits; half the bytes a decoded token reads): every cached value
 * is widened to float exactly, so the result is bit for bit edgebit_attention_f32's on the widened cache, in
 * every variant. q and out stay float32. Writers round new rows with edgebit_f32_to_f16 (to nearest even). */
EDGEBIT_API int edgebit_attention_f16kv(const float* q, int64_t T, int64_t Hq, const uint16_t* k_cache,
                                        const uint16_t* v_cache, int64_t Hkv, int64_t S, int64_t D,
                                        const int64_t* pos, int64_t kv_start, float scale, float* out,
                                        const edgebit_threading* threads);

/* The same over an int8 cache: each cached row (D values of one position and kv head) is D int8 codes followed by its
 * float32 scale, D + 4 bytes (row j of head h at (h * S + j) * (D + 4)); a value reads as code * scale (one float mul),
 * so the result is bit for bit edgebit_attention_f32's on that dequantized cache, in every variant (a quarter of the
 * fp32 cache's bytes, a bit over half the fp16 one's). Writers quantize new rows with edgebit_f32_to_q8_row. */
EDGEBIT_API int edgebit_attention_q8kv(const float* q, int64_t T, int64_t Hq, const int8_t* k_cache,
                                       const int8_t* v_cache, int64_t Hkv, int64_t S, int64_t D,
                                       const int64_t* pos, int64_t kv_start, float scale, float* out,
                                       const edgebit_threading* threads);

/* One row of D floats to the int8 cache's D + 4 bytes: scale s = max|x| / 127 (float division), codes
 * rint(x / s) (ties to even) within [-127, 127], then s's 4 bytes (native order, little-endian on every target).
 * s = 0 gives zero codes; a row with a NaN or infinity gets s = NaN and zero codes (it reads back as NaN). */
EDGEBIT_API void edgebit_f32_to_q8_row(const float* x, int64_t D, int8_t* out);

/* n floats to binary16 bits, rounded to nearest (ties to even), as numpy's astype(float16): beyond 65504 at or
 * past 65520 inf; NaN stays NaN. For the fp16 cache's writers (the ONNX Runtime and ExecuTorch ops). */
EDGEBIT_API void edgebit_f32_to_f16(const float* x, int64_t n, uint16_t* out);

/* Rotate-half RoPE of rows x [T, H, D] (D even; pairs (i, i + D/2)) with each position's angles cos, sin [T, D]:
 * y[t, h, i] = x[t, h, i] * cos[t, i] + r[i] * sin[t, i], r = (-x[.., i + D/2] for i < D/2, x[.., i - D/2] after),
 * two float products and a float sum (never fused), as the reference's apply_rope. y may be x. For edgebit.Attention's
 * fused RoPE (its query and the keys it writes to the cache). */
EDGEBIT_API void edgebit_rope_f32(const float* x, int64_t T, int64_t H, int64_t D, const float* cos, const float* sin,
                                  float* y);

/* ---- variants ---------------------------------------------------------------------- */

/* Name of the variant in use ("scalar", "avx2", "avx512vnni", "neon", "neon_dotprod",
 * "neon_i8mm"); "none" if EDGEBIT_KERNEL named a variant that cannot run here, in which
 * case every compute call returns the selection error (see edgebit_last_error). */
EDGEBIT_API const char* edgebit_kernel_variant(void);

/* Force a variant by name for this process; NULL or "auto" returns to automatic choice
 * (which ignores EDGEBIT_KERNEL). Errors: UNKNOWN_VARIANT, VARIANT_NOT_BUILT,
 * VARIANT_UNSUPPORTED; the previous selection stays in place on error. */
EDGEBIT_API int edgebit_force_variant(const char* name);

/* Variants compiled into this library, in increasing order of preference (index 0 is
 * always "scalar"; automatic choice takes the last one the CPU supports).
 * edgebit_variant_name returns NULL for an index out of range. */
EDGEBIT_API int edgebit_variant_count(void);
EDGEBIT_API const char* edgebit_variant_name(int index);

/* 1 if the named variant is compiled in and this CPU can run it, else 0. */
EDGEBIT_API int edgebit_variant_supported(const char* name);

/* Message for the last error on the calling thread ("" if none yet). */
EDGEBIT_API const char* edgebit_last_error(void);

/* Short fixed description of a status code. */
EDGEBIT_API const char* edgebit_status_string(int status);

EDGEBIT_API int edgebit_layout_version(void);

#ifdef __cplusplus
}
#endif

#endif /* EDGEBIT_KERNELS_H */
