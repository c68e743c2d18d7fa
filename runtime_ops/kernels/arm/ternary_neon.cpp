// NEON armv8.0 variant (-march=armv8-a): no dot-product instructions (Raspberry Pi 4,
// Cortex-A53/A72 phones). Products via widening multiply-accumulate into int16 lanes:
// each lane takes 8 products per block, |code * x| <= 3 * 128, so |lane| <= 3072 and
// never overflows before vpadalq widens it into the int32 accumulator once per block.
#include "neon_common.h"

namespace edgebit {
namespace {

struct MullDot {
    static inline int32x4_t block(int32x4_t acc, const int8x16_t c[8], const int8x16_t x[8]) {
        int16x8_t lo = vmull_s8(vget_low_s8(c[0]), vget_low_s8(x[0]));
        int16x8_t hi = vmull_high_s8(c[0], x[0]);
        for (int t = 1; t < 8; ++t) {
            lo = vmlal_s8(lo, vget_low_s8(c[t]), vget_low_s8(x[t]));
            hi = vmlal_high_s8(hi, c[t], x[t]);
        }
        return vpadalq_s16(vpadalq_s16(acc, lo), hi);
    }
};

}  // namespace

void tile_neon(const TileArgs& a) { run_tiles<NeonMicro<MullDot>>(a); }

}  // namespace edgebit
