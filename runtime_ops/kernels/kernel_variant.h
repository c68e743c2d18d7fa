// Internal interface between the C API (ternary_api.cpp), the dispatcher (dispatch.cpp) and
// the per-ISA kernel files. Each ISA file is compiled with its own -m/-march flags and
// exports exactly one tile function with the TileFn signature; nothing else in the
// library is compiled with ISA flags, so no wider instruction can leak into common code.
#ifndef EDGEBIT_KERNEL_VARIANT_H
#define EDGEBIT_KERNEL_VARIANT_H

#include <stdint.h>

namespace edgebit {

// One unit of kernel work: the int32 products of all M activation rows with `nr`
// consecutive packed weight rows.
// Tiles only ever see whole 128-weight blocks: K here is the padded Kp of layout v2 (the C API
// zero-pads the activations to it), so no ISA file knows about the logical K.
struct TileArgs {
    const int8_t* xq;     // (M, K) int8 activations, row stride K
    const int32_t* xsum;  // (M,) sum_k xq[m, k]; SIMD kernels multiply by the unsigned
                          // code (w + 1) and subtract this once per output
    int64_t M;
    int64_t K;            // Kp: a multiple of 128 (the logical K padded), set by the caller
    const uint8_t* w;     // (nr, K/4) packed rows, layout version 2
    int64_t nr;
    int32_t* acc;         // acc[m * ld + r] for m < M, r < nr
    int64_t ld;
};

using TileFn = void (*)(const TileArgs&);

// The scalar reference: always compiled, the end of every dispatch chain.
void tile_scalar(const TileArgs& a);

#if defined(EDGEBIT_HAVE_AVX2)
void tile_avx2(const TileArgs& a);
#endif
#if defined(EDGEBIT_HAVE_AVX512VNNI)
void tile_avx512vnni(const TileArgs& a);
#endif
#if defined(EDGEBIT_HAVE_NEON)
void tile_neon(const TileArgs& a);
#endif
#if defined(EDGEBIT_HAVE_NEON_DOTPROD)
void tile_neon_dotprod(const TileArgs& a);
#endif
#if defined(EDGEBIT_HAVE_NEON_I8MM)
void tile_neon_i8mm(const TileArgs& a);
#endif

// CPU feature probes (cpu_features.cpp). False on architectures where they do not apply.
bool cpu_has_avx2();
bool cpu_has_f16c();        // binary16 conversions (the fp16 KV cache's loads in the avx2 attention file)
bool cpu_has_fma();         // fused multiply-add on ymm (the avx2 attention file's inner loops)
bool cpu_has_avx512vnni();  // F + BW + VL + VNNI and OS-enabled zmm state
bool cpu_has_neon();
bool cpu_has_neon_dotprod();
bool cpu_has_neon_i8mm();   // i8mm and dot-product (the i8mm variant uses both)

struct KernelVariant {
    const char* name;
    bool (*cpu_supports)();
    TileFn tile;
};

// The variant chosen for this process (never null; scalar at worst). Returns nullptr and
// fills *status / message when EDGEBIT_KERNEL forced a variant that cannot run here.
const KernelVariant* active_variant(int* status);

// What a row goes through before its quantization (the BitLinear ops' fused prologue), in this order:
// relu2_gate: x rows are [gate (K) | up (K)] (stride 2K) and become relu(gate)^2 * up (BitNet's ReLU^2 GLU);
// weight non-null: the RMSNorm rms_norm_row(weight, eps).
struct Prologue {
    const float* weight;  // [K], or null: no norm
    float eps;
    bool relu2_gate;
};

// One row's RMSNorm as edgebit_rms_norm_rows defines it (quantize_rows.cpp).
void rms_norm_row(const float* x, int64_t K, const float* w, float eps, float* y);

// Per-row int8 quantization of x [M, K] (row stride K, or 2K with a gate) into xq rows of stride ldq >= K whose
// tail [K, ldq) is set to zero: the padded activations of layout v2 (quantize_rows.cpp). With `pro`, each row
// goes through it first (may throw std::bad_alloc).
void quantize_rows_padded(const float* x, int64_t M, int64_t K, int8_t* xq, int64_t ldq,
                          float* scales, const Prologue* pro);

// Thread-local error message helpers (errors.cpp). Always return `status`.
int set_error(int status, const char* fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

}  // namespace edgebit

#endif  // EDGEBIT_KERNEL_VARIANT_H
