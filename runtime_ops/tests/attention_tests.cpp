// Tests of decode attention (edgebit_attention_f32, _f16kv): the scalar variant against an independent naive
// softmax in double precision; every compiled variant this CPU supports bit-exact to scalar for
// several thread configurations; outputs that do not depend on the thread count; shapes that cross
// the key chunks and the query blocks, head sizes that are not a multiple of 8, grouped and plain
// heads, saturated softmaxes; stale cache rows past a query's position never read; errors. The fp16 cache: in
// every variant bit for bit the fp32 kernel on the cache widened by an independent decoding (ldexp), and
// edgebit_f32_to_f16 the nearest half (ties to even) of every float it is given. The int8 cache likewise: bit for
// bit the fp32 kernel on the cache dequantized here (code * scale), and edgebit_f32_to_q8_row's codes the nearest
// multiples of max|x| / 127.
#include <math.h>
#include <cmath>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

#include "edgebit_kernels.h"
#include "kernel_test_util.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace {

struct ACase {
    int64_t T, Hq, Hkv, S, D;
    std::vector<int64_t> pos;
    int64_t start;
    float scale;
    std::vector<float> q, k, v;
};

ACase make(int64_t T, int64_t Hq, int64_t Hkv, int64_t S, int64_t D, std::vector<int64_t> pos, float scale,
           uint64_t seed, int64_t start = 0) {
    ktest::Rng rng(seed);
    ACase c{T, Hq, Hkv, S, D, std::move(pos), start, scale, {}, {}, {}};
    auto fill = [&](std::vector<float>& x, int64_t n) {
        for (int64_t i = 0; i < n; ++i) x.push_back(static_cast<float>(rng.uniform(-200000, 200000)) / 100000.0f);
    };
    fill(c.q, T * Hq * D);
    fill(c.k, Hkv * S * D);
    fill(c.v, Hkv * S * D);
    // Stale rows after the largest position: NaN, so reading one shows up in every output it touches.
    int64_t last = 0;
    for (int64_t p : c.pos) last = p > last ? p : last;
    // And rows before the first key (a batch row's left padding).
    for (int64_t h = 0; h < Hkv; ++h)
        for (int64_t j = 0; j < S; ++j)
            if (j > last || j < start)
                for (int64_t d = 0; d < D; ++d) c.k[(h * S + j) * D + d] = c.v[(h * S + j) * D + d] = NAN;
    return c;
}

// The exact output and, per output, sum_j p_j |v_j|: the size of the terms its float sum adds up,
// which bounds its rounding error (outputs that cancel to near zero have the same absolute error).
std::vector<double> naive(const ACase& c, std::vector<double>* magnitude) {
    const int64_t G = c.Hq / c.Hkv;
    std::vector<double> out(static_cast<size_t>(c.T * c.Hq * c.D));
    magnitude->assign(out.size(), 0.0);
    for (int64_t t = 0; t < c.T; ++t)
        for (int64_t h = 0; h < c.Hq; ++h) {
            const float* q = c.q.data() + (t * c.Hq + h) * c.D;
            const int64_t kh = h / G, n = c.pos[t] + 1;
            if (n <= c.start) {  // a padding query: zeros
                for (int64_t d = 0; d < c.D; ++d) (*magnitude)[(t * c.Hq + h) * c.D + d] = 1.0;
                continue;
            }
            std::vector<double> s(static_cast<size_t>(n));
            double mx = -INFINITY, sum = 0.0;
            for (int64_t j = c.start; j < n; ++j) {
                double dot = 0.0;
                for (int64_t d = 0; d < c.D; ++d) dot += static_cast<double>(q[d]) * c.k[(kh * c.S + j) * c.D + d];
                s[j] = dot * c.scale;
                mx = s[j] > mx ? s[j] : mx;
            }
            for (int64_t j = c.start; j < n; ++j) sum += (s[j] = exp(s[j] - mx));
            for (int64_t d = 0; d < c.D; ++d) {
                double o = 0.0, mag = 0.0;
                for (int64_t j = c.start; j < n; ++j) {
                    o += s[j] * c.v[(kh * c.S + j) * c.D + d];
                    mag += s[j] * fabs(c.v[(kh * c.S + j) * c.D + d]);
                }
                out[(t * c.Hq + h) * c.D + d] = o / sum;
                (*magnitude)[(t * c.Hq + h) * c.D + d] = mag / sum;
            }
        }
    return out;
}

std::vector<float> run(const ACase& c, const edgebit_threading* th, int* status) {
    std::vector<float> out(static_cast<size_t>(c.T * c.Hq * c.D), -7.0f);
    *status = edgebit_attention_f32(c.q.data(), c.T, c.Hq, c.k.data(), c.v.data(), c.Hkv, c.S, c.D, c.pos.data(),
                                    c.start, c.scale, out.data(), th);
    return out;
}

std::vector<int64_t> run_of(int64_t first, int64_t count) {
    std::vector<int64_t> p;
    for (int64_t i = 0; i < count; ++i) p.push_back(first + i);
    return p;
}

std::string name(const ACase& c) {
    return "T=" + std::to_string(c.T) + " Hq=" + std::to_string(c.Hq) + " Hkv=" + std::to_string(c.Hkv) +
           " S=" + std::to_string(c.S) + " D=" + std::to_string(c.D) + " pos0=" + std::to_string(c.pos[0]);
}

// Independent binary16 decoding (double arithmetic, not the kernels' bit manipulation).
float widen(uint16_t h) {
    const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    const double mag = e == 0x1f ? (m ? NAN : INFINITY) : e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return static_cast<float>((h & 0x8000) ? -mag : mag);
}

std::vector<uint16_t> to_half(const std::vector<float>& x) {
    std::vector<uint16_t> h(x.size());
    edgebit_f32_to_f16(x.data(), static_cast<int64_t>(x.size()), h.data());
    return h;
}

std::vector<float> run_f16(const ACase& c, const std::vector<uint16_t>& k, const std::vector<uint16_t>& v,
                           const edgebit_threading* th, int* status) {
    std::vector<float> out(static_cast<size_t>(c.T * c.Hq * c.D), -7.0f);
    *status = edgebit_attention_f16kv(c.q.data(), c.T, c.Hq, k.data(), v.data(), c.Hkv, c.S, c.D, c.pos.data(),
                                      c.start, c.scale, out.data(), th);
    return out;
}

// Rows of D floats (x holds whole rows) to the int8 cache's rows of D codes and a float32 scale.
std::vector<int8_t> to_q8(const std::vector<float>& x, int64_t D) {
    const int64_t rows = static_cast<int64_t>(x.size()) / D;
    std::vector<int8_t> q(static_cast<size_t>(rows * (D + 4)));
    for (int64_t r = 0; r < rows; ++r) edgebit_f32_to_q8_row(x.data() + r * D, D, q.data() + r * (D + 4));
    return q;
}

float q8_scale(const int8_t* row, int64_t D) {
    float s;
    memcpy(&s, row + D, sizeof s);
    return s;
}

// The int8 rows read back as floats: code * scale.
std::vector<float> from_q8(const std::vector<int8_t>& q, int64_t D) {
    const int64_t rows = static_cast<int64_t>(q.size()) / (D + 4);
    std::vector<float> x(static_cast<size_t>(rows * D));
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < D; ++i)
            x[r * D + i] = static_cast<float>(q[r * (D + 4) + i]) * q8_scale(q.data() + r * (D + 4), D);
    return x;
}

std::vector<float> run_q8(const ACase& c, const std::vector<int8_t>& k, const std::vector<int8_t>& v,
                          const edgebit_threading* th, int* status) {
    std::vector<float> out(static_cast<size_t>(c.T * c.Hq * c.D), -7.0f);
    *status = edgebit_attention_q8kv(c.q.data(), c.T, c.Hq, k.data(), v.data(), c.Hkv, c.S, c.D, c.pos.data(),
                                     c.start, c.scale, out.data(), th);
    return out;
}

// edgebit_f32_to_q8_row against its definition, in double: the scale max|x| / 127, each code the nearest integer to
// x / scale (ties to even), the largest magnitude 127 (for a normal scale); zero rows, rows of tiny subnormals, NaN and infinity.
void test_f32_to_q8_row() {
    ktest::Rng rng(41);
    for (int it = 0; it < 2000; ++it) {
        const int64_t D = 1 + it % 131;
        std::vector<float> x(static_cast<size_t>(D));
        const float mag = ldexpf(1.0f, static_cast<int>(rng.uniform(-140, 120)));
        for (float& f : x) f = static_cast<float>(rng.uniform(-1000, 1000)) / 1000.0f * mag;
        if (it % 7 == 0) x[static_cast<size_t>(it % D)] = 0.5f * mag * (it % 2 ? 1 : -1);  // ties somewhere
        const std::vector<int8_t> q = to_q8(x, D);
        const float s = q8_scale(q.data(), D);
        double amax = 0.0;
        for (float f : x) amax = fabs(f) > amax ? fabs(f) : amax;
        bool ok = s == static_cast<float>(amax) / 127.0f;
        int top = 0;
        for (int64_t i = 0; i < D && ok; ++i) {
            const int c = q[i];
            top = abs(c) > top ? abs(c) : top;
            if (s == 0.0f) { ok = c == 0; continue; }
            const double r = static_cast<double>(static_cast<float>(x[i] / s));  // the float quotient, rounded here
            ok = c >= -127 && c <= 127 && (fabs(r - c) < 0.5 || (fabs(r - c) == 0.5 && c % 2 == 0) ||
                                           (fabs(r) > 127.0 && abs(c) == 127));
        }
        ok = ok && (s < ldexpf(1.0f, -126) || top == 127);  // a subnormal scale's few bits may round max|x| off 127
        if (!ok) {
            ktest::check(false, "edgebit_f32_to_q8_row: nearest codes of max|x| / 127", "D=" + std::to_string(D) +
                         " it=" + std::to_string(it));
            return;
        }
    }
    const float special[3] = {NAN, INFINITY, -INFINITY};
    for (float bad : special) {
        std::vector<float> x = {1.0f, bad, -2.0f};
        const std::vector<int8_t> q = to_q8(x, 3);
        ktest::check(q8_scale(q.data(), 3) != q8_scale(q.data(), 3) && q[0] == 0 && q[1] == 0 && q[2] == 0,
                     "edgebit_f32_to_q8_row: a non-finite row reads NaN");
    }
    const std::vector<float> zeros(5, 0.0f), tiny = {ldexpf(1.0f, -149), -ldexpf(3.0f, -149)};
    const std::vector<int8_t> qz = to_q8(zeros, 5), qt = to_q8(tiny, 2);
    ktest::check(q8_scale(qz.data(), 5) == 0.0f && qz[0] == 0, "edgebit_f32_to_q8_row: zero row");
    ktest::check(q8_scale(qt.data(), 2) == 0.0f && qt[0] == 0 && qt[1] == 0, "edgebit_f32_to_q8_row: a scale below "
                 "the smallest subnormal gives zero codes, never a division by zero");
}

// edgebit_f32_to_f16 against the definition: no half is nearer to x, and of two equally near the even one.
void test_f32_to_f16() {
    std::vector<float> xs = {0.0f, -0.0f, 1.0f, 65504.0f, 65519.996f, 65520.0f, -65520.0f, INFINITY, -INFINITY,
                             ldexpf(1.0f, -24), ldexpf(1.0f, -25), ldexpf(3.0f, -26), ldexpf(1.0f, -26),
                             ldexpf(1.0f, -14), ldexpf(1023.5f, -24), 1.0f + ldexpf(1.0f, -11),
                             1.0f + ldexpf(3.0f, -11), 2049.0f, 2051.0f, 1e-30f, -3e38f};
    ktest::Rng rng(99);
    for (int i = 0; i < 200000; ++i) {  // random bit patterns over every exponent
        const uint32_t bits = static_cast<uint32_t>(rng.uniform(0, 0x7fffffff)) ^ (i % 2 ? 0x80000000u : 0u);
        float f;
        memcpy(&f, &bits, sizeof f);
        if (f == f) xs.push_back(f);
    }
    const std::vector<uint16_t> hs = to_half(xs);
    for (size_t i = 0; i < xs.size(); ++i) {
        const double x = xs[i], got = widen(hs[i]);
        bool ok = (hs[i] & 0x8000) == (std::signbit(xs[i]) ? 0x8000 : 0);
        if (std::isinf(got)) {
            ok = ok && fabs(x) >= 65520.0;  // 65520 is the tie between 65504 and 2^16, which rounds to even: inf
        } else {
            const double err = fabs(x - got);
            for (int step = -1; step <= 1; step += 2) {  // the neighbouring halves of the same sign
                const int nb = (hs[i] & 0x7fff) + step;
                if (nb < 0 || nb >= 0x7c00) continue;
                const double other = fabs(x - widen(static_cast<uint16_t>((hs[i] & 0x8000) | nb)));
                ok = ok && (err < other || (err == other && (hs[i] & 1) == 0));
            }
            ok = ok && fabs(x) < 65520.0;
        }
        if (!ok) {
            ktest::check(false, "edgebit_f32_to_f16 rounds to the nearest half, ties to even",
                         std::to_string(xs[i]) + " -> " + std::to_string(hs[i]));
            return;
        }
    }
    const float nan = NAN;
    uint16_t h = 0;
    edgebit_f32_to_f16(&nan, 1, &h);
    ktest::check((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0, "edgebit_f32_to_f16 NaN stays NaN");
}

// Every variant's edgebit_f32_to_f16 gives the scalar variant's bits (the integer code of half_float.h, held to the
// definition above) for all 2^32 floats on x86, where the others convert with F16C: NaN payloads, float32
// subnormals, the overflow boundary and -0 included; the tiny ones also under FTZ and DAZ. ARM variants convert
// with the scalar code: every 97th slice there (the full sweep under qemu would take many minutes).
void test_f32_to_f16_every_float(const std::vector<std::string>& variants) {
#if defined(__x86_64__) || defined(__i386__)
    const uint32_t stride = 1;
#else
    const uint32_t stride = 97;
#endif
    std::vector<std::string> others;
    for (const std::string& v : variants)
        if (v != "scalar") others.push_back(v);
    if (others.empty()) return;
    const int64_t n = INT64_C(1) << 16;
    std::vector<float> x(n);
    std::vector<uint16_t> ref(n), got(n);
    for (uint32_t hi = 0; hi < (1u << 16); hi += stride) {
        for (int64_t i = 0; i < n; ++i) {
            const uint32_t bits = hi << 16 | static_cast<uint32_t>(i);
            memcpy(&x[i], &bits, sizeof bits);
        }
        edgebit_force_variant("scalar");
        edgebit_f32_to_f16(x.data(), n, ref.data());
        // Where the input is a float32 subnormal or the half is (|x| < 2^-14), again with flush-to-zero and
        // denormals-are-zero set, as a host process may run: the bits must not change.
        const bool tiny = (hi & 0x7fffu) < 0x3880u;
        for (int mode = 0; mode < (tiny ? 2 : 1); ++mode) {
            for (const std::string& v : others) {
                edgebit_force_variant(v.c_str());
#if defined(__x86_64__) || defined(__i386__)
                const unsigned csr = _mm_getcsr();
                if (mode == 1) _mm_setcsr(csr | 0x8040u);  // FTZ (bit 15) and DAZ (bit 6)
                edgebit_f32_to_f16(x.data(), n, got.data());
                _mm_setcsr(csr);
#else
                edgebit_f32_to_f16(x.data(), n, got.data());
#endif
                for (int64_t i = 0; i < n; ++i) {
                    if (got[i] != ref[i]) {
                        char msg[112];
                        snprintf(msg, sizeof msg, "%s%s: float bits 0x%08x -> 0x%04x, scalar 0x%04x", v.c_str(),
                                 mode == 1 ? " (FTZ+DAZ)" : "",
                                 static_cast<unsigned>(hi << 16 | static_cast<uint32_t>(i)), got[i], ref[i]);
                        ktest::check(false, "edgebit_f32_to_f16 the scalar variant's bits for every float", msg);
                        edgebit_force_variant("auto");
                        return;
                    }
                }
            }
        }
    }
    ktest::check(true, "edgebit_f32_to_f16 the scalar variant's bits for every float");
    edgebit_force_variant("auto");
}

void test_errors() {
    ACase c = make(1, 4, 2, 8, 16, {3}, 0.25f, 1);
    std::vector<float> out(64);
    ktest::check(edgebit_attention_f32(nullptr, 1, 4, c.k.data(), c.v.data(), 2, 8, 16, c.pos.data(), 0, 0.25f,
                                       out.data(), nullptr) == EDGEBIT_ERR_NULL_POINTER, "attention null q");
    ktest::check(edgebit_attention_f32(c.q.data(), 1, 3, c.k.data(), c.v.data(), 2, 8, 16, c.pos.data(), 0, 0.25f,
                                       out.data(), nullptr) == EDGEBIT_ERR_BAD_SHAPE, "attention Hq % Hkv");
    const int64_t past[1] = {8}, negative[1] = {-1};
    for (const int64_t* p : {past, negative}) {
        const int st = edgebit_attention_f32(c.q.data(), 1, 4, c.k.data(), c.v.data(), 2, 8, 16, p, 0, 0.25f,
                                             out.data(), nullptr);
        ktest::check(st == EDGEBIT_ERR_BAD_SHAPE && strstr(edgebit_last_error(), "pos[0]") != nullptr,
                     "attention position outside the cache", edgebit_last_error());
    }
    ktest::check(edgebit_attention_f32(c.q.data(), 1, 4, c.k.data(), c.v.data(), 2, 8, 16, c.pos.data(), 8, 0.25f,
                                       out.data(), nullptr) == EDGEBIT_ERR_BAD_SHAPE, "attention kv_start past the cache");
    ktest::check(edgebit_attention_f32(c.q.data(), 1, 4, c.k.data(), c.v.data(), 2, 8, 5000, c.pos.data(), 0, 0.25f,
                                       out.data(), nullptr) == EDGEBIT_ERR_BAD_SHAPE, "attention D too large");
    const std::vector<uint16_t> k16 = to_half(c.k);
    ktest::check(edgebit_attention_f16kv(c.q.data(), 1, 4, k16.data(), nullptr, 2, 8, 16, c.pos.data(), 0, 0.25f,
                                         out.data(), nullptr) == EDGEBIT_ERR_NULL_POINTER, "attention f16kv null v");
    ktest::check(edgebit_attention_f16kv(c.q.data(), 1, 4, k16.data(), k16.data(), 2, 8, 16, c.pos.data(), 8, 0.25f,
                                         out.data(), nullptr) == EDGEBIT_ERR_BAD_SHAPE, "attention f16kv kv_start");
    const std::vector<int8_t> k8 = to_q8(c.k, 16);
    ktest::check(edgebit_attention_q8kv(c.q.data(), 1, 4, nullptr, k8.data(), 2, 8, 16, c.pos.data(), 0, 0.25f,
                                        out.data(), nullptr) == EDGEBIT_ERR_NULL_POINTER, "attention q8kv null k");
    ktest::check(edgebit_attention_q8kv(c.q.data(), 1, 4, k8.data(), k8.data(), 2, 8, 16, past, 0, 0.25f,
                                        out.data(), nullptr) == EDGEBIT_ERR_BAD_SHAPE, "attention q8kv pos");
}

}  // namespace

void test_attention(const std::vector<std::string>& variants, const ktest::ThreadList& threads) {
    test_errors();
    test_f32_to_f16();
    test_f32_to_f16_every_float(variants);
    test_f32_to_q8_row();
    std::vector<ACase> cases;
    cases.push_back(make(1, 1, 1, 1, 1, {0}, 1.0f, 2));                          // one key
    cases.push_back(make(1, 4, 1, 300, 128, {299}, 0.0884f, 3));                 // two chunks, MQA
    cases.push_back(make(1, 20, 5, 2112, 128, {2047}, 0.0884f, 4));              // the 2B4T decode shape
    cases.push_back(make(1, 20, 5, 600, 128, {255}, 0.0884f, 5));                // exactly one chunk
    cases.push_back(make(1, 20, 5, 600, 128, {256}, 0.0884f, 6));                // one key into the next
    cases.push_back(make(3, 6, 2, 40, 13, {0, 5, 39}, 0.3f, 7));                 // D % 8 = 5, G = 3
    cases.push_back(make(2, 2, 2, 64, 7, {10, 11}, 0.4f, 8));                    // D < 8
    cases.push_back(make(2, 4, 4, 64, 24, {30, 20}, 0.2f, 9));                   // D = 3 slices, odd order
    cases.push_back(make(37, 8, 2, 700, 64, run_of(0, 37), 0.125f, 10));          // a prompt: 3 query blocks
    cases.push_back(make(20, 8, 2, 700, 17, run_of(500, 20), 0.25f, 11));        // a later prompt, 2 chunks
    cases.push_back(make(1, 4, 2, 512, 32, {400}, 40.0f, 12));                   // saturated: exp underflows
    cases.push_back(make(1, 20, 5, 2112, 128, {1500}, 0.0884f, 13, 700));        // left padding across chunks
    cases.push_back(make(4, 4, 2, 64, 16, {3, 4, 5, 6}, 0.25f, 14, 5));          // padding queries get zeros
    cases.push_back(make(18, 8, 2, 600, 40, run_of(250, 18), 0.25f, 15, 255));   // a padded prompt
    for (const ACase& c : cases) {
        edgebit_force_variant("scalar");
        int st = 0;
        const std::vector<float> ref = run(c, nullptr, &st);
        ktest::check(st == EDGEBIT_OK, "attention scalar status", name(c) + " " + edgebit_last_error());
        std::vector<double> mag;
        const std::vector<double> want = naive(c, &mag);
        double worst = 0.0;
        for (size_t i = 0; i < ref.size(); ++i) {
            const double err = fabs(ref[i] - want[i]) / mag[i];
            worst = err > worst || err != err ? err : worst;
        }
        ktest::check(worst < 2e-5, "attention scalar vs naive double", name(c) + " worst rel err " + std::to_string(worst));
        for (const std::string& v : variants)
            for (const auto& th : threads) {
                edgebit_force_variant(v.c_str());
                const std::vector<float> got = run(c, th.second, &st);
                ktest::check(st == EDGEBIT_OK && memcmp(got.data(), ref.data(), ref.size() * sizeof(float)) == 0,
                             "attention variant bit-exact to scalar", v + " " + th.first + " " + name(c));
            }
        // The fp16 cache: the fp32 kernel's bits on the independently widened cache, in every variant.
        const std::vector<uint16_t> k16 = to_half(c.k), v16 = to_half(c.v);
        ACase wide = c;
        for (size_t i = 0; i < k16.size(); ++i) {
            wide.k[i] = widen(k16[i]);
            wide.v[i] = widen(v16[i]);
        }
        edgebit_force_variant("scalar");
        const std::vector<float> ref16 = run(wide, nullptr, &st);
        for (const std::string& v : variants)
            for (const auto& th : threads) {
                edgebit_force_variant(v.c_str());
                const std::vector<float> got = run_f16(c, k16, v16, th.second, &st);
                ktest::check(st == EDGEBIT_OK && memcmp(got.data(), ref16.data(), ref16.size() * sizeof(float)) == 0,
                             "attention f16kv bit-exact to f32 on the widened cache", v + " " + th.first + " " + name(c));
            }
        // The int8 cache: the fp32 kernel's bits on the cache dequantized here, in every variant.
        const std::vector<int8_t> k8 = to_q8(c.k, c.D), v8 = to_q8(c.v, c.D);
        ACase deq = c;
        deq.k = from_q8(k8, c.D);
        deq.v = from_q8(v8, c.D);
        edgebit_force_variant("scalar");
        const std::vector<float> ref8 = run(deq, nullptr, &st);
        for (const std::string& v : variants)
            for (const auto& th : threads) {
                edgebit_force_variant(v.c_str());
                const std::vector<float> got = run_q8(c, k8, v8, th.second, &st);
                ktest::check(st == EDGEBIT_OK && memcmp(got.data(), ref8.data(), ref8.size() * sizeof(float)) == 0,
                             "attention q8kv bit-exact to f32 on the dequantized cache",
                             v + " " + th.first + " " + name(c));
            }
    }
    edgebit_force_variant("auto");
}
