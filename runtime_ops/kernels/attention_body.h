// The body of attend_chunk (attention_variant.h), written once over a lane type L of 8 floats. Each
// ISA file includes this with its own L: scalar/attention_scalar.cpp (a struct of 8 floats, plain
// loops), x86/attention_avx2.cpp and arm/attention_neon.cpp (compiler vector types, one ymm / two
// NEON registers). L provides:
//   F (8 floats), I (8 int32), zero(), splat(x), load(p), load_part(p, n) (lanes >= n zero; both also for
//   p a const uint16_t* of binary16 bits, exactly widened: the fp16 cache; and a const int8_t* of codes, exactly
//   converted: the int8 cache, whose rows then get their scale by one IEEE mul),
//   store(p, a), store_part(p, a, n), add/sub/mul, fma(a, b, c) (a * b + c rounded once: fmaf, vfmadd, fmla),
//   at_least(x, lo) (x < lo ? lo : x; NaN stays),
//   trunc_i(x) (toward zero; NaN -> 0), to_f(i), pow2(i) (2^i as float bits, i in [-126, 127]),
//   lane(a, j), hsum(a) (the 8 lanes summed in hsum_tree's order).
// Only IEEE add, sub, mul and the explicit fma appear (the compiler fuses nothing itself: -ffp-contract=off),
// and every reduction has a fixed order, so all variants give the same bits. The fma is the inner loops'
// accumulate (q . k and p v): one instruction where a mul and an add were, and one rounding fewer.
#ifndef EDGEBIT_ATTENTION_BODY_H
#define EDGEBIT_ATTENTION_BODY_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "attention_variant.h"

namespace edgebit {
namespace attn {

inline int64_t round8(int64_t n) { return (n + 7) / 8 * 8; }

// The 8 lanes summed in one fixed tree: ((0+4)+(2+6)) + ((1+5)+(3+7)).
template <class L>
inline float hsum_tree(const typename L::F& a) {
    return ((L::lane(a, 0) + L::lane(a, 4)) + (L::lane(a, 2) + L::lane(a, 6))) +
           ((L::lane(a, 1) + L::lane(a, 5)) + (L::lane(a, 3) + L::lane(a, 7)));
}

// exp(x) for x <= 0 (softmax arguments; x below -87.33 is taken as -87.33, exp ~ 1e-38): x = n ln2 + r,
// n = trunc(x log2e - 1/2) (x <= 0: a rounding to nearest), ln2 split in two (Cephes: 0.693359375 has few bits, so n times it is exact),
// exp(r) by its degree-6 Taylor polynomial (|r| <= ~0.35: relative error ~1e-7), times 2^n.
template <class L>
inline typename L::F exp_nonpositive(typename L::F x) {
    using F = typename L::F;
    x = L::at_least(x, -87.33654f);
    const typename L::I n = L::trunc_i(L::sub(L::mul(x, L::splat(1.44269504f)), L::splat(0.5f)));
    const F nf = L::to_f(n);
    const F r = L::sub(L::sub(x, L::mul(nf, L::splat(0.693359375f))), L::mul(nf, L::splat(-2.12194440e-4f)));
    F p = L::splat(1.0f / 720.0f);
    p = L::add(L::mul(p, r), L::splat(1.0f / 120.0f));
    p = L::add(L::mul(p, r), L::splat(1.0f / 24.0f));
    p = L::add(L::mul(p, r), L::splat(1.0f / 6.0f));
    p = L::add(L::mul(p, r), L::splat(0.5f));
    p = L::add(L::mul(p, r), L::splat(1.0f));
    p = L::add(L::mul(p, r), L::splat(1.0f));
    return L::mul(p, L::pow2(n));
}

// The cached rows of one chunk, as scores() and values() read them. PlainRows: fp32 values or fp16 bits, D a
// row. Q8Rows: the int8 cache, D codes then the row's float32 scale (D + 4 bytes a row), each value code * scale (one
// IEEE mul: the fp32 body on the dequantized cache, bit for bit).
template <class C>
struct PlainRows {
    const C* base;
    int64_t D;
    struct Row { const C* p; };
    Row row(int64_t j) const { return {base + j * D}; }
    const void* row_ptr(int64_t j) const { return base + j * D; }
    int64_t row_bytes() const { return D * static_cast<int64_t>(sizeof(C)); }
    template <class L> typename L::F load(Row r, int64_t i) const { return L::load(r.p + i); }
    template <class L> typename L::F load_part(Row r, int64_t i, int64_t n) const { return L::load_part(r.p + i, n); }
};

struct Q8Rows {
    const int8_t* base;
    int64_t D;
    struct Row { const int8_t* p; float s; };
    Row row(int64_t j) const {
        Row r = {base + j * (D + 4), 0.0f};
        memcpy(&r.s, r.p + D, sizeof r.s);
        return r;
    }
    const void* row_ptr(int64_t j) const { return base + j * (D + 4); }
    int64_t row_bytes() const { return D + 4; }
    template <class L> typename L::F load(Row r, int64_t i) const { return L::mul(L::load(r.p + i), L::splat(r.s)); }
    template <class L> typename L::F load_part(Row r, int64_t i, int64_t n) const {
        return L::mul(L::load_part(r.p + i, n), L::splat(r.s));
    }
};

// The first key any of rows r0 .. r0+RB-1 sees: keys before it (padding) are never read.
template <int RB>
int64_t first_key(const AttnChunkArgs& a, int64_t r0) {
    int64_t lo = a.lo[r0];
    for (int r = 1; r < RB; ++r) lo = a.lo[r0 + r] < lo ? a.lo[r0 + r] : lo;
    return lo;
}

// Scores of rows r0 .. r0+RB-1 against every key of the chunk: the RB rows share each key row's loads;
// two accumulators per row (even and odd 8-float slices) keep the fma chains short.
// K, V: the cache's rows (PlainRows of float or binary16 bits, or Q8Rows). Whole: D is a multiple of 16, so the
// tails below are compiled out (they would otherwise keep GCC from holding the accumulators in registers).
template <class L, int RB, bool Whole, class K, class V>
void scores(const AttnChunkArgs& a, const K& kc, const V& vc, int64_t r0, int64_t ld) {
    using F = typename L::F;
    const int64_t D = a.D, dv = D / 8, dt = D % 8;
    for (int64_t j = first_key<RB>(a, r0); j < a.n; ++j) {
        const typename K::Row k = kc.row(j);
        if (r0 == 0)  // the value rows stream in while the scores are computed (read strided after)
            for (int64_t b = 0; b < vc.row_bytes(); b += 64)
                __builtin_prefetch(static_cast<const char*>(vc.row_ptr(j)) + b);
        F acc[RB][2];
        for (int r = 0; r < RB; ++r) acc[r][0] = acc[r][1] = L::zero();
        int64_t i = 0;
        for (; i + 2 <= dv; i += 2) {
            const F k0 = kc.template load<L>(k, 8 * i), k1 = kc.template load<L>(k, 8 * i + 8);
            for (int r = 0; r < RB; ++r) {
                acc[r][0] = L::fma(L::load(a.q[r0 + r] + 8 * i), k0, acc[r][0]);
                acc[r][1] = L::fma(L::load(a.q[r0 + r] + 8 * i + 8), k1, acc[r][1]);
            }
        }
        if (!Whole && i < dv) {
            const F k0 = kc.template load<L>(k, 8 * i);
            for (int r = 0; r < RB; ++r) acc[r][0] = L::fma(L::load(a.q[r0 + r] + 8 * i), k0, acc[r][0]);
        }
        if (!Whole && dt != 0) {
            const F k1 = kc.template load_part<L>(k, 8 * dv, dt);
            for (int r = 0; r < RB; ++r)
                acc[r][1] = L::fma(L::load_part(a.q[r0 + r] + 8 * dv, dt), k1, acc[r][1]);
        }
        for (int r = 0; r < RB; ++r) a.s[(r0 + r) * ld + j] = L::hsum(L::add(acc[r][0], acc[r][1])) * a.scale;
    }
}

// o[r, d0 .. d0+16) for rows r0 .. r0+RB-1: sum over the chunk's keys of p[r, j] v[j, :] (p zero outside
// a row's visible keys), in key order. `w0`, `w1`: valid floats in the two 8-float slices (8 or fewer; Full: both 8,
// the partial loads compiled out of the loop).
template <class L, int RB, bool Full, class V>
void values(const AttnChunkArgs& a, const V& vc, int64_t r0, int64_t ld, int64_t d0, int64_t w0, int64_t w1) {
    using F = typename L::F;
    F acc[RB][2];
    for (int r = 0; r < RB; ++r) acc[r][0] = acc[r][1] = L::zero();
    for (int64_t j = first_key<RB>(a, r0); j < a.n; ++j) {
        const typename V::Row v = vc.row(j);
        const F v0 = Full ? vc.template load<L>(v, d0) : vc.template load_part<L>(v, d0, w0);
        const F v1 = Full ? vc.template load<L>(v, d0 + 8) : vc.template load_part<L>(v, d0 + 8, w1);
        for (int r = 0; r < RB; ++r) {
            const F p = L::splat(a.s[(r0 + r) * ld + j]);
            acc[r][0] = L::fma(p, v0, acc[r][0]);
            acc[r][1] = L::fma(p, v1, acc[r][1]);
        }
    }
    for (int r = 0; r < RB; ++r) {
        float* o = a.o + (r0 + r) * a.D + d0;
        L::store_part(o, acc[r][0], w0);
        if (w1 > 0) L::store_part(o + 8, acc[r][1], w1);
    }
}

// Softmax statistics of row r in place: s[r, :] becomes p = exp(s - m), zero outside [lo[r], hi[r]); m[r], l[r].
template <class L>
void softmax_row(const AttnChunkArgs& a, int64_t r, int64_t ld) {
    using F = typename L::F;
    float* s = a.s + r * ld;
    const int64_t lo = a.lo[r], hi = a.hi[r];
    if (lo >= hi) {
        for (int64_t j = 0; j < ld; ++j) s[j] = 0.0f;
        a.m[r] = -INFINITY;
        a.l[r] = 0.0f;
        return;
    }
    float mx = s[lo];
    for (int64_t j = lo + 1; j < hi; ++j) mx = s[j] > mx ? s[j] : mx;
    for (int64_t j = 0; j < lo; ++j) s[j] = mx;  // defined lanes for the vector exp, zeroed below
    for (int64_t j = hi; j < ld; ++j) s[j] = mx;
    const F vm = L::splat(mx);
    for (int64_t j = 0; j < ld; j += 8) L::store(s + j, exp_nonpositive<L>(L::sub(L::load(s + j), vm)));
    for (int64_t j = 0; j < lo; ++j) s[j] = 0.0f;
    for (int64_t j = hi; j < ld; ++j) s[j] = 0.0f;
    F sum = L::zero();
    for (int64_t j = 0; j < ld; j += 8) sum = L::add(sum, L::load(s + j));
    a.m[r] = mx;
    a.l[r] = L::hsum(sum);
}

template <class L, bool Whole, class R>
void scores_all(const AttnChunkArgs& a, const R& k, const R& v, int64_t ld) {
    int64_t r = 0;
    for (; r + 4 <= a.R; r += 4) scores<L, 4, Whole>(a, k, v, r, ld);
    for (; r < a.R; ++r) scores<L, 1, Whole>(a, k, v, r, ld);
}

template <class L, bool Full, class R>
void values_all(const AttnChunkArgs& a, const R& v, int64_t ld, int64_t d0, int64_t w0, int64_t w1) {
    int64_t r = 0;
    for (; r + 4 <= a.R; r += 4) values<L, 4, Full>(a, v, r, ld, d0, w0, w1);
    for (; r < a.R; ++r) values<L, 1, Full>(a, v, r, ld, d0, w0, w1);
}

template <class L, class R>
void attend_chunk_of(const AttnChunkArgs& a, const R& k, const R& v) {
    const int64_t ld = round8(a.n);
    if (a.D % 16 == 0)
        scores_all<L, true>(a, k, v, ld);
    else
        scores_all<L, false>(a, k, v, ld);
    for (int64_t r = 0; r < a.R; ++r) softmax_row<L>(a, r, ld);
    for (int64_t d0 = 0; d0 < a.D; d0 += 16) {
        const int64_t rest = a.D - d0;
        const int64_t w0 = rest < 8 ? rest : 8, w1 = rest - 8 <= 0 ? 0 : (rest - 8 < 8 ? rest - 8 : 8);
        if (w0 == 8 && w1 == 8)
            values_all<L, true>(a, v, ld, d0, w0, w1);
        else
            values_all<L, false>(a, v, ld, d0, w0, w1);
    }
}

// The fp16 cache's values are widened exactly and the int8 cache's are code * scale, so each computes what the fp32
// body computes on those floats.
template <class L>
void attend_chunk(const AttnChunkArgs& a) {
    if (a.k8 != nullptr)
        attend_chunk_of<L>(a, Q8Rows{a.k8, a.D}, Q8Rows{a.v8, a.D});
    else if (a.k16 != nullptr)
        attend_chunk_of<L>(a, PlainRows<uint16_t>{a.k16, a.D}, PlainRows<uint16_t>{a.v16, a.D});
    else
        attend_chunk_of<L>(a, PlainRows<float>{a.k, a.D}, PlainRows<float>{a.v, a.D});
}

}  // namespace attn
}  // namespace edgebit

#endif  // EDGEBIT_ATTENTION_BODY_H
