// SDOT block product for the files compiled with +dotprod (ternary_neon_dotprod.cpp and
// ternary_neon_i8mm.cpp). Kept out of neon_common.h, which the armv8.0 file also includes.
#ifndef EDGEBIT_NEON_SDOT_H
#define EDGEBIT_NEON_SDOT_H

#include "neon_common.h"

namespace edgebit {
namespace {

// SDOT adds four int8 products into each int32 lane: one instruction per 16 weights.
struct SdotDot {
    static inline int32x4_t block(int32x4_t acc, const int8x16_t c[8], const int8x16_t x[8]) {
        // Two chains halve the dependency on SDOT latency.
        int32x4_t a0 = vdotq_s32(acc, c[0], x[0]);
        int32x4_t a1 = vdotq_s32(vdupq_n_s32(0), c[1], x[1]);
        for (int t = 2; t < 8; t += 2) {
            a0 = vdotq_s32(a0, c[t], x[t]);
            a1 = vdotq_s32(a1, c[t + 1], x[t + 1]);
        }
        return vaddq_s32(a0, a1);
    }
};

}  // namespace
}  // namespace edgebit

#endif  // EDGEBIT_NEON_SDOT_H
