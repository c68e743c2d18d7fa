// Scalar decode attention: attention_body.h over a plain struct of 8 floats, every lane op a loop.
// The reference every other attention variant is held bit-exact to.
#include <math.h>
#include <string.h>

#include "attention_body.h"
#include "half_float.h"

namespace edgebit {
namespace {

struct ScalarLanes {
    struct F { float x[8]; };
    struct I { int32_t x[8]; };
    static F zero() { return splat(0.0f); }
    static F splat(float v) { F r; for (int j = 0; j < 8; ++j) r.x[j] = v; return r; }
    static F load(const float* p) { F r; memcpy(r.x, p, sizeof r.x); return r; }
    static F load_part(const float* p, int64_t n) { F r = zero(); for (int64_t j = 0; j < n; ++j) r.x[j] = p[j]; return r; }
    static F load(const uint16_t* p) { F r; for (int j = 0; j < 8; ++j) r.x[j] = half_to_float(p[j]); return r; }
    static F load_part(const uint16_t* p, int64_t n) {
        F r = zero();
        for (int64_t j = 0; j < n; ++j) r.x[j] = half_to_float(p[j]);
        return r;
    }
    static F load(const int8_t* p) { F r; for (int j = 0; j < 8; ++j) r.x[j] = static_cast<float>(p[j]); return r; }
    static F load_part(const int8_t* p, int64_t n) {
        F r = zero();
        for (int64_t j = 0; j < n; ++j) r.x[j] = static_cast<float>(p[j]);
        return r;
    }
    static void store(float* p, const F& a) { memcpy(p, a.x, sizeof a.x); }
    static void store_part(float* p, const F& a, int64_t n) { for (int64_t j = 0; j < n; ++j) p[j] = a.x[j]; }
    static F add(const F& a, const F& b) { F r; for (int j = 0; j < 8; ++j) r.x[j] = a.x[j] + b.x[j]; return r; }
    static F sub(const F& a, const F& b) { F r; for (int j = 0; j < 8; ++j) r.x[j] = a.x[j] - b.x[j]; return r; }
    static F mul(const F& a, const F& b) { F r; for (int j = 0; j < 8; ++j) r.x[j] = a.x[j] * b.x[j]; return r; }
    // One rounding, as the vector variants' fused instructions: fmaf is exact (an instruction, or libm's exact
    // emulation where the target has none).
    static F fma(const F& a, const F& b, const F& c) {
        F r;
        for (int j = 0; j < 8; ++j) r.x[j] = fmaf(a.x[j], b.x[j], c.x[j]);
        return r;
    }
    static F at_least(const F& a, float lo) { F r; for (int j = 0; j < 8; ++j) r.x[j] = a.x[j] < lo ? lo : a.x[j]; return r; }
    static I trunc_i(const F& a) {
        I r;
        for (int j = 0; j < 8; ++j) r.x[j] = a.x[j] == a.x[j] ? static_cast<int32_t>(a.x[j]) : 0;
        return r;
    }
    static F to_f(const I& a) { F r; for (int j = 0; j < 8; ++j) r.x[j] = static_cast<float>(a.x[j]); return r; }
    static F pow2(const I& a) {
        F r;
        for (int j = 0; j < 8; ++j) {
            const uint32_t bits = static_cast<uint32_t>(a.x[j] + 127) << 23;
            memcpy(&r.x[j], &bits, sizeof bits);
        }
        return r;
    }
    static float lane(const F& a, int j) { return a.x[j]; }
    static float hsum(const F& a) { return attn::hsum_tree<ScalarLanes>(a); }
};

}  // namespace

void attend_chunk_scalar(const AttnChunkArgs& a) { attn::attend_chunk<ScalarLanes>(a); }

}  // namespace edgebit
