// Scalar reference of the quantized linear: the arithmetic every SIMD variant matches bit for
// bit. Direct: it decodes each weight to its signed value and multiplies, without the SIMD
// variants' unsigned-nibble / group-sum form, so the tests check that form. Sums are taken in
// uint32 so that out-of-range (invalid) weights wrap exactly as the SIMD int32 lanes do.
#include "qlinear_variant.h"

namespace edgebit {

namespace {

uint32_t dot_q8(const int8_t* x, const uint8_t* w, int64_t Kp) {
    uint32_t sum = 0;
    for (int64_t k = 0; k < Kp; ++k) sum += static_cast<uint32_t>(x[k] * (w[k] - 128));
    return sum;
}

uint32_t dot_q4(const int8_t* x, const uint8_t* w, int64_t Kp) {
    const uint8_t* sub = w + Kp / 2;
    uint32_t sum = 0;
    for (int64_t c = 0; c < Kp / 64; ++c) {
        int32_t inner[2] = {0, 0};  // the chunk's two groups; |inner| <= 32 * 8 * 127: exact
        for (int64_t j = 0; j < 64; ++j) {
            const uint8_t byte = w[32 * c + j % 32];
            const int q = (j < 32 ? byte & 15 : byte >> 4) - 8;
            inner[(j % 8) / 4] += q * x[64 * c + j];  // group 2c: j % 8 in 0..3; group 2c + 1: 4..7
        }
        for (int h = 0; h < 2; ++h) sum += static_cast<uint32_t>(sub[2 * c + h]) * static_cast<uint32_t>(inner[h]);
    }
    return sum;
}

}  // namespace

void qtile_scalar(const QTileArgs& a) {
    const int64_t row_bytes = qlinear_padded_row_bytes(a.K, a.bits);
    for (int64_t m = 0; m < a.M; ++m)
        for (int64_t r = 0; r < a.nr; ++r) {
            const uint8_t* w = a.w + r * row_bytes;
            const int8_t* x = a.xq + m * a.K;
            const uint32_t s = a.bits == 8 ? dot_q8(x, w, a.K) : dot_q4(x, w, a.K);
            a.acc[m * a.ld + r] = static_cast<int32_t>(s);
        }
}

}  // namespace edgebit
