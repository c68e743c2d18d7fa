// NEON dot-product quantized linear (-march=armv8.2-a+dotprod), also used by the i8mm variant:
// a GEMV has no second activation row for SMMLA to pair with.
#include "qlinear_neon.h"

namespace edgebit {
namespace {

// SDOT's int32 lane t sums bytes 4t .. 4t + 3: groups (A, B, A, B).
struct SdotDot2 {
    static inline int32x4_t scales(int32_t s0, int32_t s1) {
        const int32_t v[4] = {s0, s1, s0, s1};
        return vld1q_s32(v);
    }
    static inline int32x4_t dot2(int32x4_t acc, int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1) {
        return vdotq_s32(vdotq_s32(acc, a0, b0), a1, b1);
    }
};

}  // namespace

void qtile_neon_dotprod(const QTileArgs& a) { run_qtiles<NeonQ<SdotDot2>>(a); }

}  // namespace edgebit
