// Kernel tests: every compiled variant this CPU supports must match the scalar reference bit
// for bit (int32 sums and float outputs, memcmp), for 1, 2, 3 and 8 threads, with the
// fallback pool, edgebit_threadpool and a custom parallel-for; the pool itself is checked
// for many small calls, create/destroy, nesting and concurrent use; the scalar reference
// itself is checked against an independent naive computation; argument errors return a
// status and never read out of bounds. Layout v2: every K from 1 to 300 (padded rows) for
// several M and N, with every buffer exactly as large as the API documents and flush against
// an inaccessible page, so a read past it faults. Prints "N passed, N failed" last and exits
// non-zero on any failure.
#include <algorithm>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "edgebit_kernels.h"
#include "kernel_test_util.h"

namespace {

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const char* what, const std::string& detail = "") {
    if (ok) {
        ++g_passed;
    } else {
        ++g_failed;
        printf("FAIL %s %s\n", what, detail.c_str());
    }
}

std::string fmt(const char* f, long long a, long long b, long long c) {
    char buf[128];
    snprintf(buf, sizeof(buf), f, a, b, c);
    return buf;
}

using ktest::Rng;

// ---- independent packing and naive product (the checks of the reference itself) -------

// Pack W[N][K] (values -1..+2; +2 is the invalid code 3) into layout version 2: rows of
// Kp/4 bytes, Kp = K rounded up to 128. The padding weights get `pad(n, k)` as their code:
// code 1 (weight 0) is what the layout prescribes; other codes check that kernels ignore them.
int64_t padded(int64_t K) { return (K + 127) / 128 * 128; }

template <class PadCode>
std::vector<uint8_t> pack(const std::vector<int8_t>& w, int64_t N, int64_t K, PadCode pad) {
    const int64_t Kp = padded(K);
    std::vector<uint8_t> p(static_cast<size_t>(N * Kp / 4), 0);
    for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < Kp; ++k) {
            const int64_t b = k / 128, i = (k % 128) / 32, j = k % 32;
            const int code = k < K ? w[n * K + k] + 1 : pad(n, k);
            p[n * (Kp / 4) + 32 * b + j] |= static_cast<uint8_t>(code << (2 * i));
        }
    return p;
}

// Decode packed bytes back to weights by walking bytes (not weights), dropping the padding,
// then a triple loop over the logical K.
std::vector<int32_t> naive_gemm(const std::vector<int8_t>& xq, int64_t M,
                                const std::vector<uint8_t>& packed, int64_t N, int64_t K) {
    const int64_t row_bytes = padded(K) / 4;
    std::vector<int8_t> w(static_cast<size_t>(N * K));
    for (int64_t n = 0; n < N; ++n)
        for (int64_t byte = 0; byte < row_bytes; ++byte)
            for (int i = 0; i < 4; ++i) {
                const int code = (packed[n * row_bytes + byte] >> (2 * i)) & 3;
                const int64_t k = (byte / 32) * 128 + 32 * i + byte % 32;
                if (k < K) w[n * K + k] = static_cast<int8_t>(code - 1);
            }
    std::vector<int32_t> acc(static_cast<size_t>(M * N));
    for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
            int64_t s = 0;
            for (int64_t k = 0; k < K; ++k) s += int64_t(xq[m * K + k]) * w[n * K + k];
            acc[m * N + n] = static_cast<int32_t>(s);
        }
    return acc;
}

// `bytes` bytes ending flush against a PROT_NONE page: a read of even one byte past the end
// faults (SIGSEGV: the run has no summary line and counts as failed) instead of passing.
struct Guarded {
    uint8_t* base = nullptr;
    size_t total = 0;
    void* data = nullptr;
    Guarded(const void* src, size_t bytes) {
        const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
        const size_t span = (bytes + page - 1) / page * page;
        total = span + page;
        void* m = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED || mprotect(static_cast<uint8_t*>(m) + span, page, PROT_NONE) != 0) {
            perror("kernel_tests: mmap/mprotect");
            exit(2);
        }
        base = static_cast<uint8_t*>(m);
        data = base + span - bytes;
        memcpy(data, src, bytes);
    }
    ~Guarded() { munmap(base, total); }
    Guarded(const Guarded&) = delete;
    Guarded& operator=(const Guarded&) = delete;
};

void reference_quantize(const float* x, int64_t K, int8_t* xq, float* scale) {
    float absmax = 0.0f;
    for (int64_t k = 0; k < K; ++k) absmax = fmaxf(absmax, fabsf(x[k]));
    const float s = 127.0f / fmaxf(absmax, 1e-5f);
    *scale = s;
    for (int64_t k = 0; k < K; ++k) {
        float v = nearbyintf(x[k] * s);
        v = fminf(fmaxf(v, -128.0f), 127.0f);
        xq[k] = static_cast<int8_t>(v);
    }
}

// ---- threading configurations -------------------------------------------------------

// A foreign pool: 3 threads, thread t runs tasks t, t+3, ... in reverse order.
std::atomic<int> g_custom_calls{0};
void custom_parallel_for(void* pool_ctx, int64_t n_tasks, edgebit_task_fn task, void* ctx) {
    const int threads = *static_cast<int*>(pool_ctx);
    g_custom_calls.fetch_add(1);
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([=] {
            int64_t last = n_tasks - 1 - ((n_tasks - 1 - t) % threads + threads) % threads;
            for (int64_t i = last; i >= 0; i -= threads)
                if (i % threads == t) task(ctx, i);
        });
    for (auto& th : pool) th.join();
}

int g_three = 3;
int32_t g_three32 = 3;
const edgebit_threading kFallback3 = {nullptr, nullptr, 3};
const edgebit_threading kCustom3 = {custom_parallel_for, &g_three, 0};
const edgebit_threading kStdHelper3 = {edgebit_std_thread_parallel_for, &g_three32, 0};
const edgebit_threading kOne = {nullptr, nullptr, 1};
const edgebit_threading kFallback2 = {nullptr, nullptr, 2};
const edgebit_threading kFallback8 = {nullptr, nullptr, 8};
// edgebit_threadpool configurations; pool_ctx is filled in by main() before any test runs.
edgebit_threading g_pool1 = {edgebit_threadpool_parallel_for, nullptr, 0};
edgebit_threading g_pool2 = {edgebit_threadpool_parallel_for, nullptr, 0};
edgebit_threading g_pool3 = {edgebit_threadpool_parallel_for, nullptr, 0};
edgebit_threading g_pool8 = {edgebit_threadpool_parallel_for, nullptr, 0};
struct ThreadCfg {
    const char* name;
    const edgebit_threading* t;
};
const ThreadCfg kThreadCfgs[] = {{"null", nullptr},          {"1", &kOne},
                                 {"fallback2", &kFallback2}, {"fallback3", &kFallback3},
                                 {"fallback8", &kFallback8}, {"custom3", &kCustom3},
                                 {"std_helper3", &kStdHelper3}, {"pool1", &g_pool1},
                                 {"pool2", &g_pool2},        {"pool3", &g_pool3},
                                 {"pool8", &g_pool8}};

// ---- test data --------------------------------------------------------------------

struct Case {
    int64_t M, N, K;
    std::vector<float> x;      // (M, K) float activations
    std::vector<int8_t> xq;    // (M, K) int8, with -128 rows injected directly
    std::vector<float> scales; // (M,)
    std::vector<uint8_t> packed;
    float gamma;
    std::vector<float> gammas;  // (N,) distinct per-channel scales
};

// invalid_codes: code 3 among the weights, and random codes (3 included) in the padding.
// binary: the weights of the binary BitNet, -1 and +1 only (codes 0 and 2, never 1).
Case make_case(int64_t M, int64_t N, int64_t K, uint64_t seed, bool invalid_codes, bool binary = false) {
    Rng rng(seed);
    Case c;
    c.M = M;
    c.N = N;
    c.K = K;
    c.gamma = 0.5f + static_cast<float>(rng.uniform(0, 1000)) / 997.0f;
    c.x.resize(static_cast<size_t>(M * K));
    c.xq.resize(static_cast<size_t>(M * K));
    c.scales.resize(static_cast<size_t>(M));
    for (int64_t m = 0; m < M; ++m) {
        const int64_t kind = rng.uniform(0, 5);
        const float mag = static_cast<float>(rng.uniform(1, 1000)) / 37.0f;
        for (int64_t k = 0; k < K; ++k) {
            float v = (static_cast<float>(rng.uniform(-100000, 100000)) / 100000.0f) * mag;
            if (kind == 0 && m % 2 == 1) v = 0.0f;  // all-zero row: the 1e-5 clamp
            c.x[m * K + k] = v;
            int8_t q = static_cast<int8_t>(rng.uniform(-128, 127));
            if (kind == 1) q = -128;                // extreme activations
            if (kind == 2) q = static_cast<int8_t>(rng.uniform(0, 1) ? -128 : 127);
            c.xq[m * K + k] = q;
        }
        c.scales[m] = static_cast<float>(rng.uniform(1, 100000)) / 1000.0f;
    }
    std::vector<int8_t> w(static_cast<size_t>(N * K));
    for (int64_t n = 0; n < N; ++n) {
        const int64_t kind = rng.uniform(0, 4);
        for (int64_t k = 0; k < K; ++k) {
            int8_t v = static_cast<int8_t>(rng.uniform(-1, 1));
            if (binary) v = rng.uniform(0, 1) ? 1 : -1;
            if (kind == 0) v = -1;  // with -128 activations: the largest |sum|
            if (kind == 1) v = 1;
            if (invalid_codes && rng.uniform(0, 7) == 0) v = 2;  // code 3
            w[n * K + k] = v;
        }
    }
    Rng prng(seed + 4242);  // padding codes from their own stream, like the gammas below
    c.packed = pack(w, N, K, [&](int64_t, int64_t) {
        return invalid_codes ? static_cast<int>(prng.uniform(0, 3)) : 1;
    });
    Rng grng(seed + 7777);  // its own stream: the cases above stay as they were
    for (int64_t n = 0; n < N; ++n)
        c.gammas.push_back(static_cast<float>(grng.uniform(1, 100000)) / 31337.0f);
    return c;
}

struct Outputs {
    std::vector<int32_t> acc;
    std::vector<float> y_q8, y_f32;
    std::vector<float> y_ch, y_ch_uniform;  // per-channel entry: gammas, and gamma N times
    std::vector<float> y_rms;               // per-channel entry after the fused RMSNorm (norm_weight)
    std::vector<float> y_gate;              // the ReLU^2 GLU entry on [x | up(x)], then the norm
    int status = 0;
};

// A fused norm's weight for K features (varied, some negative) and its epsilon.
constexpr float kNormEps = 1e-6f;
std::vector<float> norm_weight(int64_t K) {
    std::vector<float> w(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k) w[k] = 0.25f + 0.125f * static_cast<float>(k % 13) - (k % 29 == 0 ? 2.0f : 0.0f);
    return w;
}

// The RMSNorm as edgebit_rms_norm_rows documents it, written out independently: one sequential fp64 sum.
std::vector<float> naive_rms_norm(const std::vector<float>& x, int64_t M, int64_t K, const std::vector<float>& w,
                                  float eps) {
    std::vector<float> y(x.size());
    for (int64_t m = 0; m < M; ++m) {
        double sum = 0.0;
        for (int64_t k = 0; k < K; ++k) sum += static_cast<double>(x[m * K + k]) * x[m * K + k];
        const float inv = 1.0f / sqrtf(static_cast<float>(sum / static_cast<double>(K)) + eps);
        for (int64_t k = 0; k < K; ++k) y[m * K + k] = w[k] * (x[m * K + k] * inv);
    }
    return y;
}

// Rows [gate | up] of 2K: gate = x's row, up = the same row read backwards and scaled (signs and zeros mixed).
std::vector<float> gate_up(const float* x, int64_t M, int64_t K) {
    std::vector<float> gu(static_cast<size_t>(2 * M * K));
    for (int64_t m = 0; m < M; ++m)
        for (int64_t k = 0; k < K; ++k) {
            gu[m * 2 * K + k] = x[m * K + k];
            gu[m * 2 * K + K + k] = -0.75f * x[m * K + (K - 1 - k)];
        }
    return gu;
}

// relu(gate)^2 * up written out for rows [gate | up] of 2K (an independent form of the ReLU^2 GLU entry's gate).
std::vector<float> relu2_by_formula(const std::vector<float>& gu, int64_t M, int64_t K) {
    std::vector<float> h(static_cast<size_t>(M * K));
    for (int64_t m = 0; m < M; ++m)
        for (int64_t k = 0; k < K; ++k) {
            const float g = gu[m * 2 * K + k], r = g > 0.0f ? g : 0.0f;
            h[m * K + k] = (r * r) * gu[m * 2 * K + K + k];
        }
    return h;
}

// The seven entry points on c's shape, reading x, xq, packed and gammas from the given pointers
// (c's own vectors, or guarded copies of them).
Outputs run_on(const Case& c, const float* x, const int8_t* xq, const uint8_t* packed,
               const float* gammas, const edgebit_threading* t) {
    Outputs o;
    o.acc.assign(static_cast<size_t>(c.M * c.N), 0x7f7f7f7f);
    o.y_q8.assign(static_cast<size_t>(c.M * c.N), -1.0f);
    o.y_f32.assign(static_cast<size_t>(c.M * c.N), -1.0f);
    o.status |= edgebit_ternary_gemm_i32(xq, c.M, packed, c.N, c.K, o.acc.data(), t);
    o.status |= edgebit_ternary_gemm_q8(xq, c.scales.data(), c.M, packed, c.N, c.K, c.gamma,
                                        o.y_q8.data(), t);
    o.status |= edgebit_ternary_linear_f32(x, c.M, c.K, packed, c.N, c.gamma, o.y_f32.data(), t);
    o.y_ch.assign(static_cast<size_t>(c.M * c.N), -1.0f);
    o.y_ch_uniform.assign(static_cast<size_t>(c.M * c.N), -1.0f);
    const std::vector<float> uniform(static_cast<size_t>(c.N), c.gamma);
    o.status |= edgebit_ternary_linear_f32_channels(x, c.M, c.K, packed, c.N, gammas,
                                                    o.y_ch.data(), t);
    o.status |= edgebit_ternary_linear_f32_channels(x, c.M, c.K, packed, c.N, uniform.data(),
                                                    o.y_ch_uniform.data(), t);
    o.y_rms.assign(static_cast<size_t>(c.M * c.N), -1.0f);
    const std::vector<float> nw = norm_weight(c.K);
    o.status |= edgebit_ternary_linear_f32_rmsnorm(x, c.M, c.K, nw.data(), kNormEps, packed, c.N, gammas,
                                                   o.y_rms.data(), t);
    o.y_gate.assign(static_cast<size_t>(c.M * c.N), -1.0f);
    const std::vector<float> gu = gate_up(x, c.M, c.K);
    o.status |= edgebit_ternary_linear_f32_relu2(gu.data(), c.M, c.K, nw.data(), kNormEps, packed, c.N, gammas,
                                                 o.y_gate.data(), t);
    return o;
}

Outputs run(const Case& c, const edgebit_threading* t) {
    return run_on(c, c.x.data(), c.xq.data(), c.packed.data(), c.gammas.data(), t);
}

bool same(const Outputs& a, const Outputs& b) {
    return a.status == 0 && b.status == 0 &&
           memcmp(a.acc.data(), b.acc.data(), a.acc.size() * 4) == 0 &&
           memcmp(a.y_q8.data(), b.y_q8.data(), a.y_q8.size() * 4) == 0 &&
           memcmp(a.y_f32.data(), b.y_f32.data(), a.y_f32.size() * 4) == 0 &&
           memcmp(a.y_ch.data(), b.y_ch.data(), a.y_ch.size() * 4) == 0 &&
           memcmp(a.y_ch_uniform.data(), b.y_ch_uniform.data(), a.y_ch_uniform.size() * 4) == 0 &&
           memcmp(a.y_rms.data(), b.y_rms.data(), a.y_rms.size() * 4) == 0 &&
           memcmp(a.y_gate.data(), b.y_gate.data(), a.y_gate.size() * 4) == 0;
}

std::vector<std::string> g_variants;  // compiled and supported here, "scalar" first

void test_case(const Case& c, const char* label) {
    const std::string shape = fmt("M=%lld N=%lld K=%lld", c.M, c.N, c.K) + " " + label;
    edgebit_force_variant("scalar");
    const Outputs ref = run(c, nullptr);
    check(ref.status == 0, "scalar status", shape + " " + edgebit_last_error());
    check(ref.acc == naive_gemm(c.xq, c.M, c.packed, c.N, c.K), "scalar vs naive", shape);
    // The float epilogue, spelled out once more.
    bool epi = true;
    for (int64_t m = 0; m < c.M; ++m)
        for (int64_t n = 0; n < c.N; ++n) {
            const float want = (static_cast<float>(ref.acc[m * c.N + n]) / c.scales[m]) * c.gamma;
            epi = epi && memcmp(&want, &ref.y_q8[m * c.N + n], 4) == 0;
        }
    check(epi, "q8 epilogue", shape);
    // Per-channel entry: with gamma repeated N times it is the per-tensor entry, bit for bit;
    // with distinct gammas it is quantize_rows + gemm_i32 + the epilogue with gammas[n].
    check(memcmp(ref.y_ch_uniform.data(), ref.y_f32.data(), ref.y_f32.size() * 4) == 0,
          "channels with uniform gamma == per-tensor", shape);
    std::vector<int8_t> xq(c.x.size());
    std::vector<float> s(static_cast<size_t>(c.M));
    std::vector<int32_t> acc(static_cast<size_t>(c.M * c.N));
    bool ch = edgebit_quantize_rows(c.x.data(), c.M, c.K, xq.data(), s.data()) == 0 &&
              edgebit_ternary_gemm_i32(xq.data(), c.M, c.packed.data(), c.N, c.K, acc.data(),
                                       nullptr) == 0;
    for (int64_t m = 0; ch && m < c.M; ++m)
        for (int64_t n = 0; n < c.N; ++n) {
            const float want = (static_cast<float>(acc[m * c.N + n]) / s[m]) * c.gammas[n];
            ch = ch && memcmp(&want, &ref.y_ch[m * c.N + n], 4) == 0;
        }
    check(ch, "per-channel epilogue", shape);
    // The fused norm: edgebit_rms_norm_rows (== the naive fp64 form) then the per-channel entry, bit for bit.
    const std::vector<float> nw = norm_weight(c.K);
    std::vector<float> normed(c.x.size()), y_two(static_cast<size_t>(c.M * c.N));
    const bool two = edgebit_rms_norm_rows(c.x.data(), c.M, c.K, nw.data(), kNormEps, normed.data()) == 0 &&
                     edgebit_ternary_linear_f32_channels(normed.data(), c.M, c.K, c.packed.data(), c.N,
                                                         c.gammas.data(), y_two.data(), nullptr) == 0;
    check(two && memcmp(normed.data(), naive_rms_norm(c.x, c.M, c.K, nw, kNormEps).data(), normed.size() * 4) == 0,
          "rms_norm_rows == naive fp64 norm", shape);
    check(two && memcmp(y_two.data(), ref.y_rms.data(), y_two.size() * 4) == 0, "fused norm == norm then linear",
          shape);
    // The ReLU^2 GLU entry: relu(gate)^2 * up written out, then the fused-norm entry, bit for bit.
    const std::vector<float> gu = gate_up(c.x.data(), c.M, c.K);
    const std::vector<float> h = relu2_by_formula(gu, c.M, c.K);
    std::vector<float> y_glu(static_cast<size_t>(c.M * c.N));
    check(edgebit_ternary_linear_f32_rmsnorm(h.data(), c.M, c.K, nw.data(), kNormEps, c.packed.data(), c.N,
                                             c.gammas.data(), y_glu.data(), nullptr) == 0 &&
              memcmp(y_glu.data(), ref.y_gate.data(), y_glu.size() * 4) == 0,
          "relu2 GLU == relu(gate)^2 * up then the fused norm", shape);
    for (const std::string& v : g_variants) {
        check(edgebit_force_variant(v.c_str()) == 0, "force", v);
        for (const ThreadCfg& tc : kThreadCfgs) {
            if (v == "scalar" && tc.t == nullptr) continue;
            check(same(ref, run(c, tc.t)), "bit-exact", v + " threads=" + tc.name + " " + shape);
        }
    }
}

// edgebit_rope_f32 against the formula written out (reference.apply_rope's), out of place and in place.
void test_rope() {
    const int64_t T = 3, H = 5, D = 6;
    std::vector<float> x(static_cast<size_t>(T * H * D)), cs(static_cast<size_t>(T * D)), sn(cs.size());
    for (size_t i = 0; i < x.size(); ++i) x[i] = 0.37f * static_cast<float>(i % 11) - 1.9f + 1e-3f * i;
    for (size_t i = 0; i < cs.size(); ++i) {
        cs[i] = cosf(0.3f * static_cast<float>(i));
        sn[i] = sinf(0.3f * static_cast<float>(i));
    }
    std::vector<float> want(x.size()), got(x.size()), in_place = x;
    for (int64_t t = 0; t < T; ++t)
        for (int64_t h = 0; h < H; ++h)
            for (int64_t i = 0; i < D; ++i) {
                const float* r = &x[(t * H + h) * D];
                const float rot = i < D / 2 ? -r[i + D / 2] : r[i - D / 2];
                const float a = r[i] * cs[t * D + i], b = rot * sn[t * D + i];
                want[(t * H + h) * D + i] = a + b;
            }
    edgebit_rope_f32(x.data(), T, H, D, cs.data(), sn.data(), got.data());
    edgebit_rope_f32(in_place.data(), T, H, D, cs.data(), sn.data(), in_place.data());
    check(memcmp(got.data(), want.data(), want.size() * 4) == 0, "rope == formula");
    check(memcmp(in_place.data(), want.data(), want.size() * 4) == 0, "rope in place == formula");
}

// Binary weights (BitNet 2023: W1A8) are codes 0 and 2 of the ternary layout, run by the same kernels: every
// variant bit-exact to the scalar reference (and it to the naive sum) on decode, GEMM, prefill panels and padded K,
// with all-(-1) and all-(+1) rows against -128 activations (the largest sums a binary row can reach).
void test_binary() {
    uint64_t seed = 500000;
    for (int64_t N : {1, 5, 67})
        for (int64_t K : {128, 2560, 200})
            test_case(make_case(1, N, K, seed++, false, true), "binary gemv");
    for (int64_t M : {3, 17})
        test_case(make_case(M, 13, 384, seed++, false, true), "binary gemm");
    test_case(make_case(25, 33, 640, seed++, false, true), "binary panel");
    test_case(make_case(128, 40, 512, seed++, false, true), "binary gemm m128");
    test_case(make_case(17, 13, 540, seed++, false, true), "binary padded gemm");
    test_case(make_case(1, 13, 8640, seed++, false, true), "binary padded gemv long");
}

void test_shapes() {
    uint64_t seed = 1;
    const int64_t Ks[] = {128, 256, 384, 2560, 6912};
    for (int64_t K : Ks)  // decode GEMV: odd N, tails of the 4-row kernels, several chunks
        for (int64_t N : {1, 3, 5, 7, 13, 67, 130})
            test_case(make_case(1, N, K, seed++, false), "gemv");
    for (int64_t M : {2, 3, 5, 17})
        for (int64_t N : {1, 7, 13, 67})
            for (int64_t K : {128, 384, 2560})
                test_case(make_case(M, N, K, seed++, false), "gemm");
    test_case(make_case(128, 69, 256, seed++, false), "gemm m128");
    test_case(make_case(128, 5, 6912, seed++, false), "gemm m128 k6912");
    test_case(make_case(70, 9, 128, seed++, false), "gemm m70");
    test_case(make_case(130, 9, 128, seed++, false), "gemm two slabs");
    test_case(make_case(129, 40, 512, seed++, false), "gemm one slab + 1 row");
    // Prefill panels (x86: from 12 rows; 12-row AVX-512 tiles of 32 columns x 512 codes):
    // every M up to 33 (below, at and past the threshold, one to three tiles and uneven
    // heights) with a column tail of the second panel (33 = 32 + 1) and a K tail (640 =
    // 512 + 128); then column counts around the panel width and K over several panels.
    for (int64_t M = 1; M <= 33; ++M) test_case(make_case(M, 33, 640, seed++, false), "panel m");
    for (int64_t N : {1, 15, 16, 17, 31, 32, 64, 65, 97})
        test_case(make_case(12, N, 1152, seed++, false), "panel n");
    for (int64_t K : {128, 256, 512, 1024, 1536})
        test_case(make_case(25, 48, K, seed++, false), "panel k");
    test_case(make_case(13, 33, 640, seed++, true), "invalid code 3 panel");
    test_case(make_case(3, 13, 384, seed++, true), "invalid code 3");
    test_case(make_case(1, 9, 256, seed++, true), "invalid code 3 gemv");
    Rng rng(99);
    for (int i = 0; i < 12; ++i)
        test_case(make_case(rng.uniform(1, 20), rng.uniform(1, 150), 128 * rng.uniform(1, 12),
                            seed++, i % 4 == 0),
                  "random");
    // Layout v2, K padded, through every thread configuration: the published widths
    // (bitnet_b1_58-3B's FFN 8640, -xl's 5460; the end-to-end test's hidden 200 and FFN 540;
    // 100, one head of head_dim 100), a panel with a padded K tail, garbage padding codes.
    for (int64_t K : {100, 200, 540})  // N = 67: 4-row groups, a row tail, a second 64-row chunk
        test_case(make_case(1, 67, K, seed++, false), "padded gemv");
    for (int64_t K : {5460, 8640})  // the long rows with fewer of them, to keep qemu runs short
        test_case(make_case(1, 13, K, seed++, false), "padded gemv long");
    for (int64_t K : {1, 200, 540})
        test_case(make_case(17, 13, K, seed++, false), "padded gemm");
    test_case(make_case(25, 48, 1000, seed++, false), "padded panel k");
    // The AVX2 and AVX-512 GEMVs sum 4x each block's sum while 4 * 3 * 128 * K fits int32 (K <= 128 * 10922) and take
    // plain blocks beyond: both sides of that bound, with extreme rows (all -1 / +1 against -128) and code 3.
    // x86 only: these 1.4M-wide rows would take minutes under qemu, and the ARM kernels have no such bound.
#if defined(__x86_64__) || defined(_M_X64)
    for (int64_t K : {128 * INT64_C(10922), 128 * INT64_C(10923)}) {
        test_case(make_case(1, 5, K, seed++, false, true), "long gemv, extreme sums");
        Case c = make_case(1, 5, K, seed++, true);  // every code 3 against -128: sum = -384 K, the largest
        std::fill(c.xq.begin(), c.xq.end(), static_cast<int8_t>(-128));
        std::fill(c.packed.begin(), c.packed.end(), static_cast<uint8_t>(0xFF));
        test_case(c, "long gemv, all code 3 x -128");
    }
#endif
    test_case(make_case(13, 33, 700, seed++, true), "padded, garbage padding codes");
    for (int i = 0; i < 8; ++i)
        test_case(make_case(rng.uniform(1, 20), rng.uniform(1, 150), rng.uniform(1, 1500),
                            seed++, i % 4 == 0),
                  "random padded");
}

// Every K from 1 to 300 (every tail length of a 128-weight block, three block counts) at
// M = 1, 3, 13, 33 (decode, the 4-row GEMM tile with a tail, the panel threshold, two
// panels) with N cycling through tails of the 4-row and 64-row chunking. Each buffer is
// exactly what edgebit_kernels.h documents (x and xq M*K, packed N*Kp/4, gammas N) and sits
// flush against an inaccessible page. One thread configuration a case (pool3 or 1, in turn)
// keeps the run short under qemu; test_shapes above takes padded shapes through all of them.
void test_padded_k() {
    const int64_t Ms[] = {1, 3, 13, 33};
    const int64_t Ns[] = {1, 3, 4, 5, 7, 13, 33, 67};
    uint64_t seed = 100000;
    int64_t i = 0;
    for (int64_t K = 1; K <= 300; ++K) {
        for (int64_t M : Ms) {
            const int64_t N = Ns[i++ % 8];
            const Case c = make_case(M, N, K, seed++, K % 7 == 0);
            const std::string shape = fmt("M=%lld N=%lld K=%lld", M, N, K) + " padded";
            const Guarded x(c.x.data(), c.x.size() * sizeof(float));
            const Guarded xq(c.xq.data(), c.xq.size());
            const Guarded w(c.packed.data(), c.packed.size());
            const Guarded g(c.gammas.data(), c.gammas.size() * sizeof(float));
            auto go = [&](const edgebit_threading* t) {
                return run_on(c, static_cast<const float*>(x.data),
                              static_cast<const int8_t*>(xq.data),
                              static_cast<const uint8_t*>(w.data),
                              static_cast<const float*>(g.data), t);
            };
            check(c.packed.size() == static_cast<size_t>(N * padded(K) / 4), "packed size", shape);
            edgebit_force_variant("scalar");
            const Outputs ref = go(nullptr);
            check(ref.status == 0, "scalar status", shape + " " + edgebit_last_error());
            check(ref.acc == naive_gemm(c.xq, M, c.packed, N, K), "scalar vs naive", shape);
            // The float entry points quantize then multiply: their sums are those of the
            // quantized rows, checked against the plain int reference too.
            std::vector<int8_t> q(c.x.size());
            std::vector<float> s(static_cast<size_t>(M));
            bool f32 = edgebit_quantize_rows(c.x.data(), M, K, q.data(), s.data()) == 0;
            const std::vector<int32_t> acc = naive_gemm(q, M, c.packed, N, K);
            for (int64_t m = 0; f32 && m < M; ++m)
                for (int64_t n = 0; n < N; ++n) {
                    const float want = (static_cast<float>(acc[m * N + n]) / s[m]) * c.gamma;
                    f32 = f32 && memcmp(&want, &ref.y_f32[m * N + n], 4) == 0;
                }
            check(f32, "linear_f32 vs naive", shape);
            // One thread configuration per case, alternating (chunking never depends on threads;
            // test_shapes takes padded shapes through all of them).
            const bool pooled = i % 2 == 0;
            for (const std::string& v : g_variants) {
                if (v == "scalar") continue;  // ref is the scalar variant
                edgebit_force_variant(v.c_str());
                check(same(ref, go(pooled ? &g_pool3 : &kOne)), "bit-exact",
                      v + (pooled ? " threads=pool3 " : " threads=1 ") + shape);
            }
        }
    }
    edgebit_force_variant("auto");
}

void test_quantize() {
    // Ties: absmax 127 gives s == 1 exactly, so x = k + 0.5 must round half to even.
    const float ties[] = {127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f, -127.0f, 3.0f};
    const int8_t want[] = {127, 0, 2, 2, 0, -2, -2, 126, -127, 3};
    int8_t q[10];
    float s = 0.0f;
    check(edgebit_quantize_rows(ties, 1, 10, q, &s) == 0 && s == 1.0f &&
              memcmp(q, want, 10) == 0,
          "quantize ties half-even");
    // The same ties across the vector body (16+ elements) and tail.
    std::vector<float> row(67);
    for (size_t k = 0; k < row.size(); ++k) row[k] = static_cast<float>(int(k % 9) - 4) + 0.5f;
    row[0] = -127.0f;
    row[33] = 126.5f;
    std::vector<int8_t> got(row.size()), ref(row.size());
    float rs = 0.0f;
    reference_quantize(row.data(), 67, ref.data(), &rs);
    check(edgebit_quantize_rows(row.data(), 1, 67, got.data(), &s) == 0 && s == rs && got == ref,
          "quantize ties, vector body");
    // Non-finite rows (defined in edgebit_kernels.h): scale NaN, codes 0, in the vector body
    // and in the tail; the other row of the call is untouched.
    for (int pos : {0, 20, 63, 66}) {
        for (float bad : {NAN, INFINITY, -INFINITY}) {
            std::vector<float> two(row);
            two.insert(two.end(), row.begin(), row.end());
            two[pos] = bad;
            std::vector<int8_t> q2(two.size(), 5);
            float s2[2] = {0.0f, 0.0f};
            check(edgebit_quantize_rows(two.data(), 2, 67, q2.data(), s2) == 0 && s2[0] != s2[0] &&
                      std::vector<int8_t>(q2.begin(), q2.begin() + 67) == std::vector<int8_t>(67, 0) &&
                      s2[1] == rs && std::vector<int8_t>(q2.begin() + 67, q2.end()) == ref,
                  "quantize non-finite row");
        }
    }
    // Zero row: scale from the 1e-5 clamp, all codes 0.
    std::vector<float> zeros(256, 0.0f);
    std::vector<int8_t> zq(256, 5);
    check(edgebit_quantize_rows(zeros.data(), 1, 256, zq.data(), &s) == 0 &&
              s == 127.0f / 1e-5f && zq == std::vector<int8_t>(256, 0),
          "quantize zero row");
    // A NaN in a short (tail-only) row poisons it too.
    const float withnan[] = {1.0f, NAN, -1.0f};
    int8_t nq[3];
    check(edgebit_quantize_rows(withnan, 1, 3, nq, &s) == 0 && s != s && nq[0] == 0 && nq[1] == 0 &&
              nq[2] == 0,
          "quantize NaN");
    // Random rows of many magnitudes against nearbyintf; K not a multiple of 128 is fine here.
    Rng rng(7);
    for (int t = 0; t < 40; ++t) {
        const int64_t M = rng.uniform(1, 4), K = rng.uniform(1, 700);
        std::vector<float> x(static_cast<size_t>(M * K));
        const float mag = ldexpf(1.0f, static_cast<int>(rng.uniform(-30, 30)));
        for (float& v : x) v = static_cast<float>(rng.uniform(-1000000, 1000000)) * 1e-6f * mag;
        std::vector<int8_t> got(x.size()), ref(x.size());
        std::vector<float> gs(static_cast<size_t>(M)), rs(static_cast<size_t>(M));
        const int st = edgebit_quantize_rows(x.data(), M, K, got.data(), gs.data());
        for (int64_t m = 0; m < M; ++m)
            reference_quantize(x.data() + m * K, K, ref.data() + m * K, &rs[m]);
        check(st == 0 && got == ref && memcmp(gs.data(), rs.data(), gs.size() * 4) == 0,
              "quantize vs nearbyintf", fmt("M=%lld K=%lld t=%lld", M, K, t));
    }
}

// The ReLU^2 GLU entry with a non-finite or negative-zero gate, in the vector body and in the tail of the gate loop:
// NaN and +inf poison the row (relu keeps NaN; inf * inf * up is not finite), -inf and -0 are relu's zero (the row
// stays the written-out formula's, bit for bit), and the other row of the call is untouched.
void test_relu2_gate_specials() {
    const Case c = make_case(2, 9, 131, 777001, false);
    const std::vector<float> nw = norm_weight(c.K);
    const std::vector<float> clean = gate_up(c.x.data(), c.M, c.K);
    auto glu = [&](const std::vector<float>& gu) {
        std::vector<float> y(static_cast<size_t>(c.M * c.N), -1.0f);
        check(edgebit_ternary_linear_f32_relu2(gu.data(), c.M, c.K, nw.data(), kNormEps, c.packed.data(), c.N,
                                               c.gammas.data(), y.data(), nullptr) == 0,
              "relu2 entry status");
        return y;
    };
    auto formula = [&](const std::vector<float>& gu) {  // relu(gate)^2 * up written out, then the fused norm
        const std::vector<float> h = relu2_by_formula(gu, c.M, c.K);
        std::vector<float> y(static_cast<size_t>(c.M * c.N), -1.0f);
        check(edgebit_ternary_linear_f32_rmsnorm(h.data(), c.M, c.K, nw.data(), kNormEps, c.packed.data(), c.N,
                                                 c.gammas.data(), y.data(), nullptr) == 0,
              "rmsnorm entry status");
        return y;
    };
    // Every variant (the gate is shared code, the GEMM is not); forcing one also leaves a rejected EDGEBIT_KERNEL
    // setting (the qemu runs on a CPU without the named variant), under which the entries refuse to run.
    for (const std::string& v : g_variants) {
        check(edgebit_force_variant(v.c_str()) == 0, "force", v);
        const std::vector<float> base = glu(clean);
        for (int64_t pos : {int64_t{5}, c.K - 1}) {  // vector body, scalar tail
            for (float special : {NAN, INFINITY, -INFINITY, -0.0f}) {
                std::vector<float> gu(clean);
                gu[pos] = special;
                const std::vector<float> y = glu(gu);
                char what[96];
                snprintf(what, sizeof what, "%s gate[%lld] = %g", v.c_str(), static_cast<long long>(pos),
                         static_cast<double>(special));
                bool row0 = true;
                if (special == special && special != INFINITY) {
                    row0 = memcmp(y.data(), formula(gu).data(), c.N * sizeof(float)) == 0;
                } else {
                    for (int64_t n = 0; n < c.N; ++n) row0 = row0 && y[n] != y[n];
                }
                check(row0, "relu2 gate special value, its row", what);
                check(memcmp(y.data() + c.N, base.data() + c.N, c.N * sizeof(float)) == 0,
                      "relu2 gate special value, the other row untouched", what);
            }
        }
    }
}

void expect_status(int got, int want, const char* what) {
    check(got == want, what,
          fmt("status %lld want %lld", got, want, 0) + " msg: " + edgebit_last_error());
    check(got == 0 || strlen(edgebit_last_error()) > 0, "error message set", what);
}

void test_errors() {
    edgebit_force_variant("auto");
    float x[128] = {0}, y[4] = {0}, sc[1] = {1.0f};
    int8_t xq[128] = {0};
    uint8_t w[32] = {0};
    int32_t acc[4] = {0};
    expect_status(edgebit_ternary_linear_f32(nullptr, 1, 128, w, 1, 1.0f, y, nullptr),
                  EDGEBIT_ERR_NULL_POINTER, "null x");
    expect_status(edgebit_ternary_linear_f32(x, 1, 128, nullptr, 1, 1.0f, y, nullptr),
                  EDGEBIT_ERR_NULL_POINTER, "null packed");
    expect_status(edgebit_ternary_gemm_q8(xq, nullptr, 1, w, 1, 128, 1.0f, y, nullptr),
                  EDGEBIT_ERR_NULL_POINTER, "null scales");
    const float g1[1] = {1.0f};
    expect_status(edgebit_ternary_linear_f32_channels(x, 1, 128, w, 1, nullptr, y, nullptr),
                  EDGEBIT_ERR_NULL_POINTER, "channels: null gamma");
    // Layout v2: K needs no multiple of 128 (one padded 32-byte row for K <= 128).
    expect_status(edgebit_ternary_linear_f32_channels(x, 1, 100, w, 1, g1, y, nullptr),
                  EDGEBIT_OK, "channels: K=100");
    expect_status(edgebit_ternary_gemm_i32(xq, 1, w, 1, 1, acc, nullptr), EDGEBIT_OK, "K=1");
    expect_status(edgebit_ternary_gemm_i32(xq, 1, w, 1, 128, nullptr, nullptr),
                  EDGEBIT_ERR_NULL_POINTER, "null acc");
    expect_status(edgebit_quantize_rows(x, 1, 128, nullptr, sc), EDGEBIT_ERR_NULL_POINTER,
                  "null xq");
    expect_status(edgebit_ternary_linear_f32(x, 0, 128, w, 1, 1.0f, y, nullptr),
                  EDGEBIT_ERR_BAD_SHAPE, "M=0");
    expect_status(edgebit_ternary_linear_f32(x, 1, 128, w, -1, 1.0f, y, nullptr),
                  EDGEBIT_ERR_BAD_SHAPE, "N<0");
    expect_status(edgebit_ternary_gemm_i32(xq, 1, w, 1, -128, acc, nullptr),
                  EDGEBIT_ERR_BAD_SHAPE, "K<0");
    expect_status(edgebit_ternary_gemm_i32(xq, 1, w, 1, int64_t(1) << 23, acc, nullptr),
                  EDGEBIT_ERR_BAD_SHAPE, "K too large");
    expect_status(edgebit_ternary_gemm_i32(xq, 1, w, 1, EDGEBIT_MAX_K + 1, acc, nullptr),
                  EDGEBIT_ERR_BAD_SHAPE, "K = max + 1");
    expect_status(edgebit_ternary_gemm_i32(xq, int64_t(1) << 40, w, 1, 128, acc, nullptr),
                  EDGEBIT_ERR_BAD_SHAPE, "M absurd");
    expect_status(edgebit_quantize_rows(x, 1, 0, xq, sc), EDGEBIT_ERR_BAD_SHAPE, "quantize K=0");
    float normed[128];
    expect_status(edgebit_rms_norm_rows(x, 1, 0, x, 1e-6f, normed), EDGEBIT_ERR_BAD_SHAPE, "rms norm K=0");
    expect_status(edgebit_rms_norm_rows(x, 1, 128, nullptr, 1e-6f, normed), EDGEBIT_ERR_NULL_POINTER, "rms norm w");
    expect_status(edgebit_ternary_linear_f32_rmsnorm(x, 1, 128, nullptr, 1e-6f, w, 1, sc, y, nullptr),
                  EDGEBIT_ERR_NULL_POINTER, "fused norm without its weight");

    // Variant selection errors leave the previous selection in place.
    const std::string before = edgebit_kernel_variant();
    expect_status(edgebit_force_variant("bogus"), EDGEBIT_ERR_UNKNOWN_VARIANT, "force bogus");
#if defined(__aarch64__)
    expect_status(edgebit_force_variant("avx2"), EDGEBIT_ERR_VARIANT_NOT_BUILT, "force avx2 on arm");
#else
    expect_status(edgebit_force_variant("neon"), EDGEBIT_ERR_VARIANT_NOT_BUILT, "force neon on x86");
#endif
    check(before == edgebit_kernel_variant(), "selection kept after error");
    check(edgebit_variant_supported("scalar") == 1 && edgebit_variant_supported("bogus") == 0,
          "variant_supported");
    check(edgebit_layout_version() == EDGEBIT_LAYOUT_VERSION && EDGEBIT_LAYOUT_VERSION == 2,
          "layout version");
    check(EDGEBIT_PADDED_K(1) == 128 && EDGEBIT_PADDED_K(128) == 128 &&
              EDGEBIT_PADDED_K(129) == 256 && EDGEBIT_PACKED_ROW_BYTES(8640) == 2176 &&
              EDGEBIT_PACKED_ROW_BYTES(100) == 32,
          "padded K macros");
    check(strcmp(edgebit_variant_name(0), "scalar") == 0 &&
              edgebit_variant_name(edgebit_variant_count()) == nullptr,
          "variant list");
}

// Runs before anything forces a variant: EDGEBIT_KERNEL must take effect, or be rejected
// with a status (never SIGILL) when it names a variant this CPU or build cannot run.
void test_env_selection() {
    const char* env = getenv("EDGEBIT_KERNEL");
    if (env == nullptr || env[0] == '\0' || strcmp(env, "auto") == 0) {
        printf("auto-selected variant: %s\n", edgebit_kernel_variant());
        check(strcmp(edgebit_kernel_variant(), "none") != 0, "auto selection");
        return;
    }
    float x[128] = {0}, y[1] = {0};
    uint8_t w[32] = {0};
    const int st = edgebit_ternary_linear_f32(x, 1, 128, w, 1, 1.0f, y, nullptr);
    if (edgebit_variant_supported(env)) {
        printf("EDGEBIT_KERNEL=%s selected: %s\n", env, edgebit_kernel_variant());
        check(st == 0 && strcmp(edgebit_kernel_variant(), env) == 0, "env selection", env);
    } else {
        printf("EDGEBIT_KERNEL=%s rejected (status %d): %s\n", env, st, edgebit_last_error());
        check(st != 0 && strcmp(edgebit_kernel_variant(), "none") == 0 &&
                  strstr(edgebit_last_error(), "EDGEBIT_KERNEL") != nullptr,
              "env selection rejected", env);
    }
}

// ---- edgebit_threadpool -------------------------------------------------------------

// Each task records which thread ran it and bumps its own counter: every task must run
// exactly once, and with several threads more than one thread should take part.
struct CountCtx {
    std::vector<std::atomic<int>> hits;
    std::atomic<int64_t> sum{0};
    explicit CountCtx(int64_t n) : hits(static_cast<size_t>(n)) {}
};
void count_task(void* ctx, int64_t i) {
    CountCtx& c = *static_cast<CountCtx*>(ctx);
    c.hits[static_cast<size_t>(i)].fetch_add(1);
    c.sum.fetch_add(i + 1);
}
bool all_once(const CountCtx& c) {
    for (const auto& h : c.hits)
        if (h.load() != 1) return false;
    return true;
}

// Nested: a task calling back into the pool it runs on must not deadlock.
struct NestCtx {
    edgebit_threadpool* pool;
    std::atomic<int64_t> inner{0};
};
void inner_task(void* ctx, int64_t) { static_cast<NestCtx*>(ctx)->inner.fetch_add(1); }
void nest_task(void* ctx, int64_t) {
    NestCtx& n = *static_cast<NestCtx*>(ctx);
    edgebit_threadpool_parallel_for(n.pool, 5, inner_task, &n);
}

void test_threadpool() {
    // Bad counts are errors with a message, NULL pools are no-ops / serial.
    check(edgebit_threadpool_create(0) == nullptr && strstr(edgebit_last_error(), "num_threads"),
          "pool create 0 rejected");
    check(edgebit_threadpool_create(-3) == nullptr, "pool create -3 rejected");
    check(edgebit_threadpool_create(1025) == nullptr, "pool create 1025 rejected");
    edgebit_threadpool_destroy(nullptr);
    {
        CountCtx c(7);
        edgebit_threadpool_parallel_for(nullptr, 7, count_task, &c);
        check(all_once(c), "pool NULL runs serially");
    }
    // Many consecutive tiny calls (the decode pattern) with 1, 2, 3, 8 threads; n_tasks 0
    // and 1 included. Every task exactly once, every call complete when it returns.
    for (int nt : {1, 2, 3, 8}) {
        edgebit_threadpool* pool = edgebit_threadpool_create(nt);
        check(pool != nullptr, "pool create", std::to_string(nt) + " " + edgebit_last_error());
        if (pool == nullptr) continue;
        bool ok = true;
        for (int call = 0; call < 2000 && ok; ++call) {
            const int64_t n = call % 11;
            CountCtx c(n);
            edgebit_threadpool_parallel_for(pool, n, count_task, &c);
            ok = all_once(c) && c.sum.load() == n * (n + 1) / 2;
        }
        check(ok, "pool 2000 tiny calls", std::to_string(nt) + " threads");
        NestCtx nest{pool, {0}};
        edgebit_threadpool_parallel_for(pool, 9, nest_task, &nest);
        check(nest.inner.load() == 45, "pool nested call");
        edgebit_threadpool_destroy(pool);
    }
    // Create/destroy loops, with and without work in between (a worker may still be waking
    // up for the last dispatch when destroy runs).
    bool ok = true;
    for (int i = 0; i < 200 && ok; ++i) {
        edgebit_threadpool* pool = edgebit_threadpool_create(1 + i % 4);
        ok = pool != nullptr;
        if (ok && i % 2 == 0) {
            CountCtx c(16);
            edgebit_threadpool_parallel_for(pool, 16, count_task, &c);
            ok = all_once(c);
        }
        edgebit_threadpool_destroy(pool);
    }
    check(ok, "pool create/destroy loop");
    // Two pools driven from two threads at once, plus one pool shared by two threads (calls
    // that find it busy run serially), plus the fallback pool from two threads.
    edgebit_threadpool* a = edgebit_threadpool_create(2);
    edgebit_threadpool* b = edgebit_threadpool_create(3);
    check(a != nullptr && b != nullptr, "pool create two");
    if (a != nullptr && b != nullptr) {
        const Case c = make_case(3, 300, 512, 4242, false);
        edgebit_force_variant("scalar");
        const Outputs ref = run(c, nullptr);
        edgebit_force_variant("auto");
        const Outputs want = run(c, nullptr);
        check(same(ref, want), "auto vs scalar (pool threads test)");
        edgebit_threading ta = {edgebit_threadpool_parallel_for, a, 0};
        edgebit_threading tb = {edgebit_threadpool_parallel_for, b, 0};
        const edgebit_threading* cfgs[2][2] = {{&ta, &tb}, {&ta, &ta}};
        const char* names[2] = {"two pools, two threads", "one pool, two threads"};
        for (int k = 0; k < 3; ++k) {
            std::atomic<int> bad{0};
            auto body = [&](const edgebit_threading* t) {
                for (int i = 0; i < 60; ++i)
                    if (!same(want, run(c, t))) bad.fetch_add(1);
            };
            const edgebit_threading* t0 = k < 2 ? cfgs[k][0] : &kFallback2;
            const edgebit_threading* t1 = k < 2 ? cfgs[k][1] : &kFallback3;
            std::thread th0(body, t0), th1(body, t1);
            th0.join();
            th1.join();
            check(bad.load() == 0, "pool concurrent bit-exact",
                  k < 2 ? names[k] : "fallback, two threads");
        }
    }
    edgebit_threadpool_destroy(a);
    edgebit_threadpool_destroy(b);
}

}  // namespace

void ktest::check(bool ok, const char* what, const std::string& detail) { ::check(ok, what, detail); }

int main() {
    test_env_selection();
    for (int i = 0; i < edgebit_variant_count(); ++i) {
        const char* name = edgebit_variant_name(i);
        if (edgebit_variant_supported(name)) {
            g_variants.push_back(name);
            printf("variant %-13s compiled, supported: tested\n", name);
        } else {
            const int st = edgebit_force_variant(name);
            printf("variant %-13s compiled, unsupported on this CPU: %s\n", name,
                   edgebit_last_error());
            check(st == EDGEBIT_ERR_VARIANT_UNSUPPORTED, "force unsupported is an error", name);
        }
    }
    edgebit_threadpool* pools[4] = {edgebit_threadpool_create(1), edgebit_threadpool_create(2),
                                    edgebit_threadpool_create(3), edgebit_threadpool_create(8)};
    check(pools[0] && pools[1] && pools[2] && pools[3], "create test pools", edgebit_last_error());
    g_pool1.pool_ctx = pools[0];
    g_pool2.pool_ctx = pools[1];
    g_pool3.pool_ctx = pools[2];
    g_pool8.pool_ctx = pools[3];
    test_quantize();
    test_errors();
    test_threadpool();
    test_shapes();
    test_padded_k();
    test_binary();
    test_rope();
    test_relu2_gate_specials();
    ktest::ThreadList threads;
    for (const ThreadCfg& tc : kThreadCfgs) threads.emplace_back(tc.name, tc.t);
    test_qlinear(g_variants, threads);
    test_attention(g_variants, threads);
    for (edgebit_threadpool* p : pools) edgebit_threadpool_destroy(p);
    check(g_custom_calls.load() > 0, "custom parallel_for used");
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
