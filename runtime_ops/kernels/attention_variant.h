// Internal interface of decode attention (attention_api.cpp) and its per-ISA files. Each ISA file
// instantiates the one body in attention_body.h with its lane type, so every variant performs the
// same IEEE operations in the same order (8 lanes, fixed reduction trees, a mul and an add fused only where
// the body says fma: the core is built with -ffp-contract=off) and is bit-exact to the scalar one.
#ifndef EDGEBIT_ATTENTION_VARIANT_H
#define EDGEBIT_ATTENTION_VARIANT_H

#include <stdint.h>

namespace edgebit {

// One unit of attention work: R query rows against one chunk of n consecutive cached keys/values.
// The results are the chunk's softmax partials, merged across chunks by the caller:
//   m[r] = max_j s[r, j],  l[r] = sum_j exp(s[r, j] - m[r]),  o[r, :] = sum_j exp(s[r, j] - m[r]) v[j, :]
// over lo[r] <= j < hi[r] (row r sees those keys of the chunk: causal masking, and padding before a batch row's
// first key), s = (q . k) * scale. A row with lo[r] >= hi[r] gets m = -inf, l = 0, o = 0.
struct AttnChunkArgs {
    const float* const* q;  // R row pointers, D floats each
    int64_t R;
    int64_t D;
    const float* k;         // n rows of D (stride D); null when the cache is fp16 (k16, v16) or int8 (k8, v8)
    const float* v;         // n rows of D (stride D)
    const uint16_t* k16;    // the same in IEEE binary16 bits (read exactly widened to float), or null
    const uint16_t* v16;
    const int8_t* k8;       // or n rows of D int8 codes and the row's float32 scale (stride D + 4), or null
    const int8_t* v8;
    int64_t n;
    const int32_t* lo;      // R first visible keys, each in [0, n]
    const int32_t* hi;      // R ends of the visible keys, each in [0, n]
    float scale;
    float* s;               // scratch: R rows of round_up(n, 8) floats
    float* m;               // [R]
    float* l;               // [R]
    float* o;               // [R][D]
};

using AttnChunkFn = void (*)(const AttnChunkArgs&);

void attend_chunk_scalar(const AttnChunkArgs& a);
#if defined(EDGEBIT_HAVE_AVX2)
void attend_chunk_avx2(const AttnChunkArgs& a);
// float32 -> binary16 bits as half_float.h's float_to_half, eight at a time with F16C (x86/attention_avx2.cpp).
void f32_to_f16_f16c(const float* x, int64_t n, uint16_t* out);
#endif
#if defined(EDGEBIT_HAVE_NEON)
void attend_chunk_neon(const AttnChunkArgs& a);
#endif

}  // namespace edgebit

#endif  // EDGEBIT_ATTENTION_VARIANT_H
