// Scalar reference kernel: the definition of the arithmetic every SIMD variant must match
// bit for bit. Deliberately direct: it decodes each 2-bit code to (code - 1) and multiplies,
// without the unsigned-code/sum trick the SIMD variants use, so the tests check that trick.
#include "kernel_variant.h"

namespace edgebit {

void tile_scalar(const TileArgs& a) {
    const int64_t row_bytes = a.K / 4;
    const int64_t nblocks = a.K / 128;
    for (int64_t m = 0; m < a.M; ++m) {
        const int8_t* x = a.xq + m * a.K;
        for (int64_t r = 0; r < a.nr; ++r) {
            const uint8_t* w = a.w + r * row_bytes;
            int32_t sum = 0;
            for (int64_t b = 0; b < nblocks; ++b) {
                for (int i = 0; i < 4; ++i) {
                    for (int j = 0; j < 32; ++j) {
                        // Code 3 (invalid) decodes to +2, like every other variant.
                        const int code = (w[32 * b + j] >> (2 * i)) & 3;
                        sum += (code - 1) * x[128 * b + 32 * i + j];
                    }
                }
            }
            a.acc[m * a.ld + r] = sum;
        }
    }
}

}  // namespace edgebit
