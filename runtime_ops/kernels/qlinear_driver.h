// Loop nest of the quantized linear (the LM head's own GEMV, qlinear_api.cpp), shared by its
// SIMD variants as tile_driver.h is by the ternary ones: each ISA file includes it and
// instantiates run_qtiles<QMicro> with its own micro-kernel struct in an anonymous namespace,
// so the code is compiled with that file's ISA flags only.
//
// A QMicro provides, for R (1..kRows) weight rows w + r * row_bytes and one activation row x
// (Kp int8 values, Kp a multiple of 128):
//   template <int R> q8(x, w, row_bytes, Kp, out)       out[r] = sum_k x[k] * (w_r[k] - 128)
//   template <int R> q4(x, gsum, w, row_bytes, Kp, out) out[r] = sum_g sub_r[g] * sum_{k in g}
//                                                        x[k] * (nibble_r[k] - 8)
// in int32 arithmetic that wraps (the sums are exact whenever they fit, which the API's K
// limits guarantee for valid weights; wrapping keeps variants identical even when not).
// gsum[g] = sum of x over group g (32 values, qlinear_variant.h), for the unsigned-nibble form.
#ifndef EDGEBIT_QLINEAR_DRIVER_H
#define EDGEBIT_QLINEAR_DRIVER_H

#include "qlinear_variant.h"

namespace edgebit {
namespace {

// As the ternary GEMV (tile_driver.h): a row is short (1360 bytes for a 2560-wide q4 head), too short for the
// hardware stream prefetchers, so while a micro-kernel consumes `step` bytes of each of its R contiguous rows it
// requests as many bytes of the next group of R rows, linearly (prefetches never fault; the address is an integer).
// Each line once: the lines that start in this call's range (a q4 chunk's 34-byte steps asked for some twice).
template <int R>
inline void qprefetch_next_group(const uint8_t* w, int64_t row_bytes, int64_t consumed, int step) {
    const uintptr_t lo = reinterpret_cast<uintptr_t>(w) + static_cast<uintptr_t>(R * row_bytes + consumed * R);
    for (uintptr_t line = (lo + 63) & ~uintptr_t{63}; line < lo + static_cast<uintptr_t>(R * step); line += 64)
        __builtin_prefetch(reinterpret_cast<const void*>(line), 0, 0);
}

template <class Micro>
void run_qtiles(const QTileArgs& a) {
    const int64_t Kp = a.K;
    const int64_t row_bytes = qlinear_padded_row_bytes(Kp, a.bits);
    // Rows of the chunk stay in L2 across the activation rows of a prefill (64 rows of a
    // 2560-wide q4 head are 92 KB), so looping m outside re-reads them from cache, not DRAM.
    for (int64_t m = 0; m < a.M; ++m) {
        const int8_t* x = a.xq + m * Kp;
        const int16_t* gsum = a.gsum + m * (Kp / 32);
        int32_t* out = a.acc + m * a.ld;
        int64_t n = 0;
        for (; n + Micro::kRows <= a.nr; n += Micro::kRows) {
            if (a.bits == 8)
                Micro::template q8<Micro::kRows>(x, a.w + n * row_bytes, row_bytes, Kp, out + n);
            else
                Micro::template q4<Micro::kRows>(x, gsum, a.w + n * row_bytes, row_bytes, Kp, out + n);
        }
        for (; n < a.nr; ++n) {
            if (a.bits == 8)
                Micro::template q8<1>(x, a.w + n * row_bytes, row_bytes, Kp, out + n);
            else
                Micro::template q4<1>(x, gsum, a.w + n * row_bytes, row_bytes, Kp, out + n);
        }
    }
}

}  // namespace
}  // namespace edgebit

#endif  // EDGEBIT_QLINEAR_DRIVER_H
