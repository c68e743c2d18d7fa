// C entries of decode attention (edgebit_attention_f32, _f16kv over an fp16 cache, _q8kv over an int8 one): argument checks, the split of the work into
// fixed units (a block of queries x one kv head x one chunk of cached keys), and the merge of the
// chunks' softmax partials (flash-decoding). Units are fixed by the shapes and positions alone and
// the merge runs here in baseline code, so results never depend on the thread count or the variant.
#include <float.h>
#include <math.h>
#include <string.h>

#include <atomic>
#include <new>
#include <vector>

#include "attention_variant.h"
#include "edgebit_kernels.h"
#include "half_float.h"
#include "kernel_variant.h"
#include "parallel_for.h"

namespace edgebit {
namespace {

constexpr int64_t kChunk = EDGEBIT_ATTENTION_CHUNK;  // keys per unit
constexpr int64_t kTBlock = 16;                      // queries per unit (prefill; decode has one)
constexpr int64_t kSlabFloats = INT64_C(1) << 21;    // partials held at once (8 MB)

#if defined(EDGEBIT_HAVE_AVX2)
// Whether variant v runs x86/attention_avx2.cpp's code (given the FMA / F16C it also needs).
bool runs_avx2_file(const KernelVariant* v) {
    return strcmp(v->name, "avx2") == 0 || strcmp(v->name, "avx512vnni") == 0;
}
#endif

AttnChunkFn chunk_fn_for(const KernelVariant* v, bool half) {
    const char* n = v->name;
    (void)n;
    (void)half;
#if defined(EDGEBIT_HAVE_AVX2)
    // The AVX2 file multiplies and adds with FMA and widens fp16 with F16C, which every AVX2 processor has; a VM
    // that hides one gets the scalar body (the same bits: it fuses with fmaf).
    if (runs_avx2_file(v) && cpu_has_fma() && (!half || cpu_has_f16c())) return attend_chunk_avx2;
#endif
#if defined(EDGEBIT_HAVE_NEON)
    if (strncmp(n, "neon", 4) == 0) return attend_chunk_neon;
#endif
    return attend_chunk_scalar;
}

struct Unit {
    int64_t t0, tn;  // queries t0 .. t0+tn-1
    int64_t h;       // kv head
    int64_t j0, n;   // keys j0 .. j0+n-1
    int64_t part;    // offset of its partials: m [rows], l [rows], o [rows][D]
};

struct Group {       // the units of one (query block, kv head), chunks in key order
    int64_t first, count;
};

// The cache: one pair set (fp32, fp16 bits, or int8 rows of D codes and a float32 scale), the others null.
struct Cache {
    const float* k;
    const float* v;
    const uint16_t* k16;
    const uint16_t* v16;
    const int8_t* k8;
    const int8_t* v8;
};

struct Job {
    AttnChunkFn fn;
    const float* q;
    int64_t Hq, G, D;
    Cache c;
    int64_t S;
    const int64_t* pos;
    int64_t start;
    float scale;
    float* out;
    const Unit* units;
    const Group* groups;
    float* partials;
    std::atomic<bool> failed{false};
};

struct Scratch {
    std::vector<const float*> q;
    std::vector<int32_t> lo, hi;
    std::vector<float> s;
};

void unit_task(void* ctx, int64_t i) {
    Job& j = *static_cast<Job*>(ctx);
    const Unit& u = j.units[i];
    const int64_t rows = u.tn * j.G;
    thread_local Scratch sc;
    try {
        sc.q.resize(static_cast<size_t>(rows));
        sc.lo.resize(static_cast<size_t>(rows));
        sc.hi.resize(static_cast<size_t>(rows));
        sc.s.resize(static_cast<size_t>(rows * ((u.n + 7) / 8 * 8)));
    } catch (const std::bad_alloc&) {
        j.failed = true;
        return;
    }
    auto in_chunk = [&](int64_t key) { return static_cast<int32_t>(key < 0 ? 0 : (key > u.n ? u.n : key)); };
    const int32_t lo = in_chunk(j.start - u.j0);  // the chunk's keys the queries may see: [lo, hi)
    for (int64_t t = 0; t < u.tn; ++t) {
        const int32_t hi = in_chunk(j.pos[u.t0 + t] + 1 - u.j0);
        for (int64_t g = 0; g < j.G; ++g) {
            sc.q[t * j.G + g] = j.q + ((u.t0 + t) * j.Hq + u.h * j.G + g) * j.D;
            sc.lo[t * j.G + g] = lo;
            sc.hi[t * j.G + g] = hi;
        }
    }
    float* p = j.partials + u.part;
    const int64_t at = (u.h * j.S + u.j0) * j.D, at8 = (u.h * j.S + u.j0) * (j.D + 4);
    const Cache& c = j.c;
    AttnChunkArgs a = {sc.q.data(), rows, j.D, c.k ? c.k + at : nullptr, c.v ? c.v + at : nullptr,
                       c.k16 ? c.k16 + at : nullptr, c.v16 ? c.v16 + at : nullptr, c.k8 ? c.k8 + at8 : nullptr,
                       c.v8 ? c.v8 + at8 : nullptr, u.n, sc.lo.data(), sc.hi.data(), j.scale, sc.s.data(), p,
                       p + rows, p + 2 * rows};
    j.fn(a);
}

// out rows of one (query block, kv head): sum_c w_c o_c / sum_c w_c l_c, w_c = exp(m_c - max_c m_c).
void merge_task(void* ctx, int64_t gi) {
    Job& j = *static_cast<Job*>(ctx);
    const Group& grp = j.groups[gi];
    const Unit& u0 = j.units[grp.first];
    const int64_t rows = u0.tn * j.G;
    for (int64_t r = 0; r < rows; ++r) {
        float mx = -INFINITY;
        for (int64_t c = 0; c < grp.count; ++c) {
            const float m = j.partials[j.units[grp.first + c].part + r];
            mx = m > mx ? m : mx;
        }
        const int64_t t = u0.t0 + r / j.G, head = u0.h * j.G + r % j.G;
        float* out = j.out + (t * j.Hq + head) * j.D;
        if (mx == -INFINITY) {  // a query before the first key (padding) sees nothing: zeros, never NaN
            for (int64_t d = 0; d < j.D; ++d) out[d] = 0.0f;
            continue;
        }
        float denom = 0.0f;
        for (int64_t c = 0; c < grp.count; ++c) {
            const float* p = j.partials + j.units[grp.first + c].part;
            const float w = expf(p[r] - mx);
            denom += w * p[rows + r];
            const float* o = p + 2 * rows + r * j.D;
            for (int64_t d = 0; d < j.D; ++d) out[d] = c == 0 ? w * o[d] : out[d] + w * o[d];
        }
        for (int64_t d = 0; d < j.D; ++d) out[d] = out[d] / denom;
    }
}

// Every entry: the cache is one pair of `c` (the entry's own; so a null cache pointer of any entry is refused here).
int attention(const char* fn, const float* q, int64_t T, int64_t Hq, const Cache& c, int64_t Hkv, int64_t S,
              int64_t D, const int64_t* pos, int64_t kv_start, float scale, float* out,
              const edgebit_threading* threads) {
    const bool half = c.k16 != nullptr || c.v16 != nullptr, q8 = c.k8 != nullptr || c.v8 != nullptr;
    if (half ? (c.k16 == nullptr || c.v16 == nullptr)
             : q8 ? (c.k8 == nullptr || c.v8 == nullptr) : (c.k == nullptr || c.v == nullptr))
        return set_error(EDGEBIT_ERR_NULL_POINTER, "%s: null pointer argument", fn);
    if (q == nullptr || pos == nullptr || out == nullptr)
        return set_error(EDGEBIT_ERR_NULL_POINTER, "%s: null pointer argument", fn);
    if (T <= 0 || Hq <= 0 || Hkv <= 0 || S <= 0 || D <= 0 || Hq % Hkv != 0)
        return set_error(EDGEBIT_ERR_BAD_SHAPE,
                         "%s: T, Hq, Hkv, S, D must be positive and Hq a multiple of Hkv (T=%lld Hq=%lld Hkv=%lld "
                         "S=%lld D=%lld)", fn, (long long)T, (long long)Hq, (long long)Hkv, (long long)S, (long long)D);
    if (D > EDGEBIT_ATTENTION_MAX_D || Hq > EDGEBIT_MAX_DIM || T > EDGEBIT_MAX_DIM || S > EDGEBIT_MAX_DIM ||
        T * Hq > EDGEBIT_MAX_ELEMENTS / D || Hkv * S > EDGEBIT_MAX_ELEMENTS / D)
        return set_error(EDGEBIT_ERR_BAD_SHAPE, "%s: shape beyond supported limits (T=%lld Hq=%lld S=%lld D=%lld; "
                         "D <= %d)", fn, (long long)T, (long long)Hq, (long long)S, (long long)D,
                         (int)EDGEBIT_ATTENTION_MAX_D);
    if (kv_start < 0 || kv_start >= S)
        return set_error(EDGEBIT_ERR_BAD_SHAPE, "%s: kv_start = %lld is outside the cache's %lld positions", fn,
                         (long long)kv_start, (long long)S);
    for (int64_t t = 0; t < T; ++t)
        if (pos[t] < 0 || pos[t] >= S)
            return set_error(EDGEBIT_ERR_BAD_SHAPE, "%s: pos[%lld] = %lld is outside the cache's %lld positions", fn,
                             (long long)t, (long long)pos[t], (long long)S);
    int status = 0;
    const KernelVariant* v = active_variant(&status);
    if (v == nullptr) return status;
    const int64_t G = Hq / Hkv;
    try {
        std::vector<Unit> units;
        std::vector<Group> groups;
        std::vector<float> partials;
        for (int64_t t0 = 0; t0 < T;) {
            // A slab: query blocks until their partials reach kSlabFloats (at least one block).
            units.clear();
            groups.clear();
            int64_t floats = 0, t = t0;
            while (t < T && (t == t0 || floats < kSlabFloats)) {
                const int64_t tn = T - t < kTBlock ? T - t : kTBlock;
                int64_t last = 0;
                for (int64_t i = t; i < t + tn; ++i) last = pos[i] > last ? pos[i] : last;
                const int64_t per_unit = tn * G * (D + 2);
                for (int64_t h = 0; h < Hkv; ++h) {
                    groups.push_back({static_cast<int64_t>(units.size()), 0});
                    for (int64_t j0 = kv_start / kChunk * kChunk; j0 <= last; j0 += kChunk) {
                        const int64_t n = last + 1 - j0 < kChunk ? last + 1 - j0 : kChunk;
                        units.push_back({t, tn, h, j0, n, floats});
                        floats += per_unit;
                        ++groups.back().count;
                    }
                }
                t += tn;
            }
            partials.resize(static_cast<size_t>(floats));
            Job job;
            job.fn = chunk_fn_for(v, half);
            job.q = q;
            job.Hq = Hq;
            job.G = G;
            job.D = D;
            job.c = c;
            job.S = S;
            job.pos = pos;
            job.start = kv_start;
            job.scale = scale;
            job.out = out;
            job.units = units.data();
            job.groups = groups.data();
            job.partials = partials.data();
            run_parallel(threads, static_cast<int64_t>(units.size()), unit_task, &job);
            if (job.failed) return set_error(EDGEBIT_ERR_OUT_OF_MEMORY, "%s: out of memory for scratch buffers", fn);
            run_parallel(threads, static_cast<int64_t>(groups.size()), merge_task, &job);
            t0 = t;
        }
    } catch (const std::bad_alloc&) {
        return set_error(EDGEBIT_ERR_OUT_OF_MEMORY, "%s: out of memory for scratch buffers", fn);
    }
    return EDGEBIT_OK;
}

}  // namespace
}  // namespace edgebit

extern "C" int edgebit_attention_f32(const float* q, int64_t T, int64_t Hq, const float* k_cache,
                                     const float* v_cache, int64_t Hkv, int64_t S, int64_t D,
                                     const int64_t* pos, int64_t kv_start, float scale, float* out,
                                     const edgebit_threading* threads) {
    const edgebit::Cache c = {k_cache, v_cache, nullptr, nullptr, nullptr, nullptr};
    return edgebit::attention("edgebit_attention_f32", q, T, Hq, c, Hkv, S, D, pos, kv_start, scale, out, threads);
}

extern "C" int edgebit_attention_f16kv(const float* q, int64_t T, int64_t Hq, const uint16_t* k_cache,
                                       const uint16_t* v_cache, int64_t Hkv, int64_t S, int64_t D,
                                       const int64_t* pos, int64_t kv_start, float scale, float* out,
                                       const edgebit_threading* threads) {
    const edgebit::Cache c = {nullptr, nullptr, k_cache, v_cache, nullptr, nullptr};
    return edgebit::attention("edgebit_attention_f16kv", q, T, Hq, c, Hkv, S, D, pos, kv_start, scale, out, threads);
}

extern "C" int edgebit_attention_q8kv(const float* q, int64_t T, int64_t Hq, const int8_t* k_cache,
                                      const int8_t* v_cache, int64_t Hkv, int64_t S, int64_t D,
                                      const int64_t* pos, int64_t kv_start, float scale, float* out,
                                      const edgebit_threading* threads) {
    const edgebit::Cache c = {nullptr, nullptr, nullptr, nullptr, k_cache, v_cache};
    return edgebit::attention("edgebit_attention_q8kv", q, T, Hq, c, Hkv, S, D, pos, kv_start, scale, out, threads);
}

// s = max|x| / 127, codes rint(x / s) (ties to even; |x| <= max|x|, so within +-127 but for a last-bit excess the
// clamp takes back); s = 0 (all zeros, or a max below 127 subnormal steps) gives zero codes; a NaN or infinity in the
// row makes s NaN (every value of the row reads NaN: the fp32 cache would carry it too) and the codes zero.
extern "C" void edgebit_f32_to_q8_row(const float* x, int64_t D, int8_t* out) {
    float amax = 0.0f;
    bool finite = true;
    for (int64_t i = 0; i < D; ++i) {
        const float a = fabsf(x[i]);
        finite = finite && a <= FLT_MAX;  // false for inf and NaN
        amax = a > amax ? a : amax;
    }
    const float s = finite ? amax / 127.0f : NAN;
    for (int64_t i = 0; i < D; ++i) {
        float c = s > 0.0f ? rintf(x[i] / s) : 0.0f;  // NaN s: the comparison is false
        c = c > 127.0f ? 127.0f : (c < -127.0f ? -127.0f : c);
        out[i] = static_cast<int8_t>(c);
    }
    memcpy(out + D, &s, sizeof s);
}

extern "C" void edgebit_f32_to_f16(const float* x, int64_t n, uint16_t* out) {
#if defined(EDGEBIT_HAVE_AVX2)
    // The x86 variants convert with F16C (the same bits; the scalar loop took ~25 cycles a value, about 1% of a
    // decode step); the scalar variant, a CPU without F16C and a rejected EDGEBIT_KERNEL keep the integer code.
    int status = 0;
    const edgebit::KernelVariant* v = edgebit::active_variant(&status);
    if (v != nullptr && edgebit::runs_avx2_file(v) && edgebit::cpu_has_f16c())
        return edgebit::f32_to_f16_f16c(x, n, out);
#endif
    for (int64_t i = 0; i < n; ++i) out[i] = edgebit::float_to_half(x[i]);
}

extern "C" void edgebit_rope_f32(const float* x, int64_t T, int64_t H, int64_t D, const float* cos, const float* sin,
                                 float* y) {
    const int64_t half = D / 2;
    for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < H; ++h) {
            const float* xr = x + (t * H + h) * D;
            float* yr = y + (t * H + h) * D;
            const float* c = cos + t * D;
            const float* s = sin + t * D;
            for (int64_t i = 0; i < half; ++i) {  // both halves of a pair at once, so y may be x
                const float lo = xr[i], hi = xr[i + half];
                yr[i] = lo * c[i] + (-hi) * s[i];
                yr[i + half] = hi * c[i + half] + lo * s[i + half];
            }
        }
}
