// libFuzzer target for the kernel core's C API (edgebit_kernels.h): every entry point, every
// variant this CPU can run, several thread configurations, valid and invalid shapes. Attention
// (edgebit_attention_f32) is held to its scalar variant bit for bit (its float order is its own).
// Valid calls must match the plain reference in fuzz_common.h bit for bit (NaN rows as NaN);
// calls outside the API's limits must return a non-zero status without touching memory
// (ASan would see it: their buffers are tiny). Anything else aborts, which libFuzzer reports.
#include "edgebit_kernels.h"
#include "fuzz_common.h"
#include "half_float.h"

namespace {

struct Shape {
    int64_t M, N, K;
};

// Shapes the API must reject: non-positive, beyond the limits. (Any K >= 1 is valid since layout
// v2 pads K; EDGEBIT_MAX_K + 1 is the first K refused.)
const Shape kInvalid[] = {
    {0, 1, 128}, {1, 0, 128}, {1, 1, 0}, {-1, 1, 128}, {1, -5, 128}, {1, 1, -128},
    {1, 1, -1}, {2, 3, -100}, {1, 1, EDGEBIT_MAX_K + 1}, {1, 1, EDGEBIT_MAX_K + 128},
    {EDGEBIT_MAX_DIM + 1, 1, 128}, {1, EDGEBIT_MAX_DIM + 1, 128},
    {INT64_MAX, 1, 128}, {1, INT64_MAX, 128}, {1, 1, INT64_MIN},
    {EDGEBIT_MAX_DIM, EDGEBIT_MAX_DIM, EDGEBIT_MAX_K},  // products beyond MAX_ELEMENTS
};

void check_invalid(const Shape& s, int entry) {
    int8_t q[256] = {};
    float x[256] = {}, y[256] = {}, sc[4] = {1, 1, 1, 1}, g[4] = {1, 1, 1, 1};
    uint8_t w[256] = {};
    int32_t acc[256] = {};
    int st = 0;
    switch (entry % 4) {
        case 0: st = edgebit_ternary_linear_f32(x, s.M, s.K, w, s.N, 1.0f, y, nullptr); break;
        case 1: st = edgebit_ternary_linear_f32_channels(x, s.M, s.K, w, s.N, g, y, nullptr); break;
        case 2: st = edgebit_ternary_gemm_q8(q, sc, s.M, w, s.N, s.K, 1.0f, y, nullptr); break;
        default: st = edgebit_ternary_gemm_i32(q, s.M, w, s.N, s.K, acc, nullptr); break;
    }
    if (st == EDGEBIT_OK) fuzz::fail("invalid shape accepted", s.M, s.N, s.K);
    if (edgebit_last_error()[0] == '\0') fuzz::fail("error without a message", s.M, s.N, s.K);
}

void check_nulls(int which) {
    float x[128] = {}, y[1] = {}, g[1] = {1};
    uint8_t w[32] = {};
    const float* xs = which == 0 ? nullptr : x;
    const uint8_t* ws = which == 1 ? nullptr : w;
    float* ys = which == 2 ? nullptr : y;
    const float* gs = which == 3 ? nullptr : g;
    if (edgebit_ternary_linear_f32_channels(xs, 1, 128, ws, 1, gs, ys, nullptr) != EDGEBIT_ERR_NULL_POINTER)
        fuzz::fail("null pointer accepted", which, 0, 0);
}

// One valid call of every entry point under one of the variants this CPU runs, against the
// reference. Shapes stay small (N crosses one 64-row chunk boundary, K up to 4 blocks, or any
// padded width up to 3) so a million executions fit in an hour under ASan. Buffers have their
// exact documented sizes (packed: N * ceil(K/128)*32 bytes, padding bytes from the input).
void check_valid(fuzz::Reader& r, int threads_mode) {
    const uint8_t dims = r.u8();
    const int64_t M = 1 + dims % 4, N = 1 + r.u8() % 70;
    const uint8_t kb = r.u8();
    const int64_t K = kb & 0x80 ? fuzz::pick_k(kb)
                                : 128 * (1 + ((dims >> 2) % 8 == 7 ? 3 : (dims >> 2) % 2));
    const int64_t row_bytes = fuzz::row_bytes(K);
    std::vector<float> x(static_cast<size_t>(M * K)), gam(static_cast<size_t>(N));
    std::vector<uint8_t> w(static_cast<size_t>(N * row_bytes));
    fuzz::make_activations(r, x);
    r.fill(w.data(), w.size());
    for (int64_t n = 0; n < N; ++n) gam[n] = float(1 + (w[n * row_bytes] % 64)) / 16.0f;
    const float gamma = gam[0];

    std::vector<int8_t> rq(x.size());
    std::vector<float> rs(static_cast<size_t>(M));
    for (int64_t m = 0; m < M; ++m) fuzz::ref_quantize(&x[m * K], K, &rq[m * K], &rs[m]);
    std::vector<int32_t> racc(static_cast<size_t>(M * N));
    for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) racc[m * N + n] = fuzz::ref_acc(rq.data(), w.data(), K, m, n);

    // One persistent pool for the whole run (a pool per input would spend the time on threads).
    static edgebit_threadpool* pool = edgebit_threadpool_create(2);
    edgebit_threading t = {nullptr, nullptr, 1 + threads_mode % 3};
    if (threads_mode >= 3) t = {edgebit_threadpool_parallel_for, pool, 0};
    const edgebit_threading* tp = threads_mode == 0 ? nullptr : &t;

    // One variant per input (the input picks it): every variant gets the same share of inputs.
    std::vector<const char*> runnable;
    for (int v = 0; v < edgebit_variant_count(); ++v)
        if (edgebit_variant_supported(edgebit_variant_name(v))) runnable.push_back(edgebit_variant_name(v));
    {
        const int v = (dims >> 5) % int(runnable.size());
        const char* variant = runnable[size_t(v)];
        if (edgebit_force_variant(variant) != EDGEBIT_OK) fuzz::fail("force_variant", v, 0, 0);
        std::vector<int8_t> q(x.size());
        std::vector<float> s(static_cast<size_t>(M));
        if (edgebit_quantize_rows(x.data(), M, K, q.data(), s.data()) != EDGEBIT_OK) fuzz::fail("quantize", M, N, K);
        for (int64_t m = 0; m < M; ++m)
            if (!fuzz::same_float(s[m], rs[m])) fuzz::fail("quantize scale", m, 0, K);
        if (q != rq) fuzz::fail("quantize codes", M, 0, K);

        std::vector<int32_t> acc(racc.size());
        if (edgebit_ternary_gemm_i32(q.data(), M, w.data(), N, K, acc.data(), tp) != EDGEBIT_OK)
            fuzz::fail("gemm_i32", M, N, K);
        if (acc != racc) fuzz::fail("gemm_i32 sums", M, N, K);

        std::vector<float> y(racc.size()), yc(racc.size()), yq(racc.size());
        if (edgebit_ternary_gemm_q8(q.data(), s.data(), M, w.data(), N, K, gamma, yq.data(), tp) != EDGEBIT_OK)
            fuzz::fail("gemm_q8", M, N, K);
        if (edgebit_ternary_linear_f32(x.data(), M, K, w.data(), N, gamma, y.data(), tp) != EDGEBIT_OK)
            fuzz::fail("linear_f32", M, N, K);
        if (edgebit_ternary_linear_f32_channels(x.data(), M, K, w.data(), N, gam.data(), yc.data(), tp) != EDGEBIT_OK)
            fuzz::fail("linear_f32_channels", M, N, K);
        for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
                const size_t i = static_cast<size_t>(m * N + n);
                const float want = fuzz::ref_out(racc[i], rs[m], gamma);
                if (!fuzz::same_float(y[i], want) || !fuzz::same_float(yq[i], want))
                    fuzz::fail("linear_f32 / gemm_q8 output", m, n, K);
                if (!fuzz::same_float(yc[i], fuzz::ref_out(racc[i], rs[m], gam[n])))
                    fuzz::fail("linear_f32_channels output", m, n, K);
                if (rs[m] != rs[m] && y[i] == y[i]) fuzz::fail("non-finite row gave a number", m, n, K);
            }
    }
}

// Attention on small shapes from the input: caches sized exactly [Hkv, S, D] (ASan sees any read past them),
// floats of every magnitude (NaN and Inf included), positions from the input, some outside [0, S) (refused with
// a message, output untouched). Every variant and thread configuration must give the scalar variant's bits, and over
// the same cache in fp16 (edgebit_attention_f16kv) the bits of the fp32 call on the widened cache, and in int8 rows
// (edgebit_attention_q8kv) the bits of the fp32 call on the dequantized rows.
void check_attention(fuzz::Reader& r, int threads_mode) {
    const uint8_t a = r.u8(), b = r.u8();
    const int64_t T = 1 + a % 3, Hkv = 1 + (a >> 2) % 3, Hq = Hkv * (1 + (a >> 4) % 3), D = 1 + b % 40;
    const int64_t S = 1 + (r.u8() | (int64_t(r.u8() % 3) << 8));  // up to 768: crosses the 256-key chunks
    std::vector<int64_t> pos(static_cast<size_t>(T));
    bool valid = true;
    for (int64_t t = 0; t < T; ++t) {
        const uint32_t v = r.u32();
        pos[t] = (v & 0x80000000u) && (v & 0x70000000u) == 0 ? int64_t(int32_t(v)) % (S + 3) : int64_t(v % uint32_t(S));
        valid = valid && pos[t] >= 0 && pos[t] < S;
    }
    const uint8_t sb = r.u8();  // the first key: mostly 0, sometimes inside the cache, rarely past it
    const int64_t start = sb < 160 ? 0 : (sb < 250 ? int64_t(r.u8()) % S : S + sb % 3);
    valid = valid && start < S;
    std::vector<float> q(static_cast<size_t>(T * Hq * D)), k(static_cast<size_t>(Hkv * S * D)), v(k.size());
    fuzz::make_activations(r, q);
    fuzz::make_activations(r, k);
    fuzz::make_activations(r, v);
    const float scale = float(1 + r.u8() % 64) / 64.0f;
    static edgebit_threadpool* pool = edgebit_threadpool_create(2);
    edgebit_threading t = {nullptr, nullptr, 1 + threads_mode % 3};
    if (threads_mode >= 3) t = {edgebit_threadpool_parallel_for, pool, 0};
    edgebit_force_variant("scalar");
    std::vector<float> ref(q.size(), -1.0f);
    const int st = edgebit_attention_f32(q.data(), T, Hq, k.data(), v.data(), Hkv, S, D, pos.data(), start, scale,
                                         ref.data(), nullptr);
    if (!valid) {
        if (st == EDGEBIT_OK || edgebit_last_error()[0] == '\0') fuzz::fail("attention bad position accepted", T, S, D);
        for (float y : ref)
            if (y != -1.0f) fuzz::fail("attention wrote output for a refused call", T, S, D);
        return;
    }
    if (st != EDGEBIT_OK) fuzz::fail("attention valid call refused", T, S, D);
    for (int i = 0; i < edgebit_variant_count(); ++i) {
        const char* name = edgebit_variant_name(i);
        if (!edgebit_variant_supported(name)) continue;
        edgebit_force_variant(name);
        std::vector<float> out(q.size());
        if (edgebit_attention_f32(q.data(), T, Hq, k.data(), v.data(), Hkv, S, D, pos.data(), start, scale, out.data(),
                                  threads_mode == 0 ? nullptr : &t) != EDGEBIT_OK)
            fuzz::fail("attention variant refused", i, S, D);
        for (size_t j = 0; j < out.size(); ++j)
            if (!fuzz::same_float(out[j], ref[j])) fuzz::fail("attention variant differs from scalar", i, S, D);
    }
    std::vector<uint16_t> k16(k.size()), v16(v.size());
    edgebit_f32_to_f16(k.data(), static_cast<int64_t>(k.size()), k16.data());
    edgebit_f32_to_f16(v.data(), static_cast<int64_t>(v.size()), v16.data());
    for (size_t j = 0; j < k.size(); ++j) {
        k[j] = edgebit::half_to_float(k16[j]);
        v[j] = edgebit::half_to_float(v16[j]);
    }
    edgebit_force_variant("scalar");
    if (edgebit_attention_f32(q.data(), T, Hq, k.data(), v.data(), Hkv, S, D, pos.data(), start, scale, ref.data(),
                              nullptr) != EDGEBIT_OK)
        fuzz::fail("attention on the widened cache refused", T, S, D);
    for (int i = 0; i < edgebit_variant_count(); ++i) {
        const char* name = edgebit_variant_name(i);
        if (!edgebit_variant_supported(name)) continue;
        edgebit_force_variant(name);
        std::vector<float> out(q.size());
        if (edgebit_attention_f16kv(q.data(), T, Hq, k16.data(), v16.data(), Hkv, S, D, pos.data(), start, scale,
                                    out.data(), threads_mode == 0 ? nullptr : &t) != EDGEBIT_OK)
            fuzz::fail("attention f16kv refused", i, S, D);
        for (size_t j = 0; j < out.size(); ++j)
            if (!fuzz::same_float(out[j], ref[j])) fuzz::fail("attention f16kv differs from f32 on the widened cache", i, S, D);
    }
    // The int8 cache (rows of D codes and a float32 scale, sized exactly): the fp32 call's bits on its dequantized rows.
    std::vector<int8_t> k8(static_cast<size_t>(Hkv * S * (D + 4))), v8(k8.size());
    for (int64_t row = 0; row < Hkv * S; ++row) {
        edgebit_f32_to_q8_row(k.data() + row * D, D, k8.data() + row * (D + 4));
        edgebit_f32_to_q8_row(v.data() + row * D, D, v8.data() + row * (D + 4));
        float ks, vs;
        memcpy(&ks, k8.data() + row * (D + 4) + D, sizeof ks);
        memcpy(&vs, v8.data() + row * (D + 4) + D, sizeof vs);
        for (int64_t j = 0; j < D; ++j) {
            k[row * D + j] = static_cast<float>(k8[row * (D + 4) + j]) * ks;
            v[row * D + j] = static_cast<float>(v8[row * (D + 4) + j]) * vs;
        }
    }
    edgebit_force_variant("scalar");
    if (edgebit_attention_f32(q.data(), T, Hq, k.data(), v.data(), Hkv, S, D, pos.data(), start, scale, ref.data(),
                              nullptr) != EDGEBIT_OK)
        fuzz::fail("attention on the dequantized cache refused", T, S, D);
    for (int i = 0; i < edgebit_variant_count(); ++i) {
        const char* name = edgebit_variant_name(i);
        if (!edgebit_variant_supported(name)) continue;
        edgebit_force_variant(name);
        std::vector<float> out(q.size());
        if (edgebit_attention_q8kv(q.data(), T, Hq, k8.data(), v8.data(), Hkv, S, D, pos.data(), start, scale,
                                   out.data(), threads_mode == 0 ? nullptr : &t) != EDGEBIT_OK)
            fuzz::fail("attention q8kv refused", i, S, D);
        for (size_t j = 0; j < out.size(); ++j)
            if (!fuzz::same_float(out[j], ref[j])) fuzz::fail("attention q8kv differs from f32 on the dequantized cache", i, S, D);
    }
    edgebit_force_variant("auto");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Reader r(data, size);
    const uint8_t op = r.u8();
    if (op % 8 == 0) {
        check_invalid(kInvalid[r.u8() % (sizeof kInvalid / sizeof kInvalid[0])], r.u8());
        return 0;
    }
    if (op % 8 == 1) {
        check_nulls(r.u8() % 4);
        return 0;
    }
    if (op % 8 == 2) {
        check_attention(r, (op >> 3) % 4);
        return 0;
    }
    check_valid(r, (op >> 3) % 4);
    return 0;
}
