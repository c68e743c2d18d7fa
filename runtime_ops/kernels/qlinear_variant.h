// Internal interface of the quantized linear (qlinear_api.cpp) and its per-ISA files, as
// kernel_variant.h is for the ternary product. Weight formats (edgebit_kernels.h,
// docs/weight-layout.md): rows of Kp = ceil(K/128)*128 weights;
//   bits 8: Kp bytes, byte k = q + 128 (q in [-128, 127]; the quantizer writes [-127, 127]);
//   bits 4: Kp/2 nibble bytes then Kp/32 group scales (uint8). In each 64-weight chunk c
//           (32 bytes), byte j holds weight 64c + j in its low nibble and 64c + 32 + j in its
//           high nibble, as q + 8 (q in [-8, 7]); group g (weights 32g..32g+31) has scale
//           byte Kp/2 + g.
#ifndef EDGEBIT_QLINEAR_VARIANT_H
#define EDGEBIT_QLINEAR_VARIANT_H

#include <stdint.h>

namespace edgebit {

inline int64_t qlinear_padded_row_bytes(int64_t Kp, int bits) {
    return bits == 8 ? Kp : Kp / 2 + Kp / 32;
}

struct QTileArgs {
    const int8_t* xq;     // (M, K) int8 activations in [-127, 127], row stride K
    const int16_t* gsum;  // (M, K/32) sums of xq over each 32-group
    int64_t M;
    int64_t K;            // Kp: a multiple of 128
    const uint8_t* w;     // (nr, row bytes) rows of the format `bits`
    int64_t nr;
    int32_t* acc;         // acc[m * ld + r]
    int64_t ld;
    int bits;             // 4 or 8
};

using QTileFn = void (*)(const QTileArgs&);

void qtile_scalar(const QTileArgs& a);
#if defined(EDGEBIT_HAVE_AVX2)
void qtile_avx2(const QTileArgs& a);
#endif
#if defined(EDGEBIT_HAVE_NEON)
void qtile_neon(const QTileArgs& a);
#endif
#if defined(EDGEBIT_HAVE_NEON_DOTPROD)
void qtile_neon_dotprod(const QTileArgs& a);
#endif

}  // namespace edgebit

#endif  // EDGEBIT_QLINEAR_VARIANT_H
