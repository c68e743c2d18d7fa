// AVX2 decode attention: attention_body.h with 8-float compiler vectors, one ymm register each
// (this file alone is compiled with -mavx2 -mf16c -mfma). Bit-exact to scalar/attention_scalar.cpp.
#include <immintrin.h>

#include "attention_vector_lanes.h"
#include "half_float.h"

namespace edgebit {

void attend_chunk_avx2(const AttnChunkArgs& a) { attn::attend_chunk<VectorLanes>(a); }

// vcvtps2ph with the rounding in its immediate (to nearest even, not MXCSR.RC) gives float_to_half's bits for
// every float: it ignores MXCSR.FTZ (tiny results become subnormal halves), a float32 subnormal input (flushed
// to zero under MXCSR.DAZ or not) rounds to a signed zero either way, and NaN is quieted keeping the top ten
// payload bits, as float_to_half does (kernel_tests compares all 2^32 inputs). The tail goes through the scalar
// function.
void f32_to_f16_f16c(const float* x, int64_t n, uint16_t* out) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
    }
    for (; i < n; ++i) out[i] = float_to_half(x[i]);
}

}  // namespace edgebit
