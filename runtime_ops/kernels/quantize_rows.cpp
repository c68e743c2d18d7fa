// Per-row (per-token) int8 activation quantization, shared by every variant so that all of
// them see identical int8 inputs. Compiled with -ffp-contract=off and without ISA flags.
//
// Rounding: round-half-to-even via the 1.5 * 2^23 trick, (v + C) - C, which in the default
// rounding mode equals nearbyintf(v) for |v| < 2^22 (here |v| <= 127 * (1 + 2^-23) because
// s = 127 / max(absmax, 1e-5)), without a libm call per element, and vectorizable.
// This must not be contracted into an FMA with x * s: hence -ffp-contract=off on this file.
#include <math.h>

#include "edgebit_kernels.h"
#include "kernel_variant.h"

namespace edgebit {
namespace {

void quantize_row(const float* x, int64_t K, int8_t* xq, float* scale) {
    float absmax = 0.0f;
    for (int64_t k = 0; k < K; ++k) {
        const float a = fabsf(x[k]);
        absmax = a > absmax ? a : absmax;  // NaN never compares greater: ignored
    }
    const float s = 127.0f / fmaxf(absmax, 1e-5f);
    *scale = s;
    const float kRound = 12582912.0f;  // 1.5 * 2^23
    for (int64_t k = 0; k < K; ++k) {
        const float v = x[k] * s;
        float r = (v + kRound) - kRound;
        r = r < -128.0f ? -128.0f : r;
        r = r > 127.0f ? 127.0f : r;
        r = r == r ? r : 0.0f;  // NaN (from NaN or inf * 0 inputs) -> 0, never an UB cast
        xq[k] = static_cast<int8_t>(static_cast<int>(r));
    }
}

}  // namespace
}  // namespace edgebit

extern "C" int edgebit_quantize_rows(const float* x, int64_t M, int64_t K, int8_t* xq,
                                     float* scales) {
    using edgebit::set_error;
    if (x == nullptr || xq == nullptr || scales == nullptr)
        return set_error(EDGEBIT_ERR_NULL_POINTER, "edgebit_quantize_rows: null pointer argument");
    if (M <= 0 || K <= 0 || M > EDGEBIT_MAX_DIM || K > EDGEBIT_MAX_K ||
        M > EDGEBIT_MAX_ELEMENTS / K)
        return set_error(EDGEBIT_ERR_BAD_SHAPE,
                         "edgebit_quantize_rows: bad shape M=%lld K=%lld", (long long)M,
                         (long long)K);
    for (int64_t m = 0; m < M; ++m) edgebit::quantize_row(x + m * K, K, xq + m * K, scales + m);
    return EDGEBIT_OK;
}
