// Tests of the quantized linear (edgebit_qlinear_*, the LM head's GEMV): the scalar reference
// against an independent naive sum that reads weights through its own unpacking; every compiled
// variant this CPU supports bit-exact to the scalar reference (int32 sums and float outputs) for
// several thread configurations; all nibble and byte values (-8 and -128 included), group scales
// 0..255, K that is not a multiple of 128, buffers flush against an inaccessible page; errors.
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "edgebit_kernels.h"
#include "kernel_test_util.h"

namespace {

// Weight k of row n, by the documented layout, as (signed value, group scale).
int64_t weight(const std::vector<uint8_t>& w, int64_t row_bytes, int64_t n, int64_t k, int64_t Kp, int bits) {
    const uint8_t* row = w.data() + n * row_bytes;
    if (bits == 8) return static_cast<int64_t>(row[k]) - 128;
    const uint8_t byte = row[(k / 64) * 32 + (k % 32)];
    const int64_t nib = (k % 64) < 32 ? (byte & 0x0F) : (byte >> 4);
    return (nib - 8) * static_cast<int64_t>(row[Kp / 2 + 2 * (k / 64) + (k % 8) / 4]);
}

std::vector<int32_t> naive(const std::vector<int8_t>& xq, int64_t M, int64_t K, const std::vector<uint8_t>& w,
                           int64_t N, int bits) {
    const int64_t Kp = (K + 127) / 128 * 128;
    const int64_t rb = edgebit_qlinear_row_bytes(K, bits);
    std::vector<int32_t> out(static_cast<size_t>(M * N));
    for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
            int64_t s = 0;
            for (int64_t k = 0; k < K; ++k) s += xq[m * K + k] * weight(w, rb, n, k, Kp, bits);
            out[m * N + n] = static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(s)));
        }
    return out;
}

struct QCase {
    int64_t M, N, K;
    int bits;
    std::vector<float> x;
    std::vector<int8_t> xq;
    std::vector<uint8_t> w;
    std::vector<float> scale;
};

QCase make(int64_t M, int64_t N, int64_t K, int bits, uint64_t seed) {
    ktest::Rng rng(seed);
    QCase c{M, N, K, bits, {}, {}, {}, {}};
    for (int64_t i = 0; i < M * K; ++i) {
        c.x.push_back(static_cast<float>(rng.uniform(-100000, 100000)) / 3000.0f);
        c.xq.push_back(static_cast<int8_t>(rng.uniform(-127, 127)));
    }
    for (int64_t m = 0; m < M && m < 1; ++m)  // an extreme row: the largest sums
        for (int64_t k = 0; k < K; ++k) c.xq[m * K + k] = (k % 2) ? -127 : 127;
    const int64_t rb = edgebit_qlinear_row_bytes(K, bits);
    c.w.resize(static_cast<size_t>(N * rb));
    for (auto& b : c.w) b = static_cast<uint8_t>(rng.uniform(0, 255));  // padding bytes too: any value
    if (N > 1) memset(c.w.data() + rb, bits == 8 ? 0x00 : 0x00, static_cast<size_t>(rb));  // -128 / -8, scale 0
    if (N > 2 && bits == 4) {  // all -8 with scale 255 against the extreme row
        memset(c.w.data() + 2 * rb, 0x00, static_cast<size_t>(rb));
        const int64_t Kp = (K + 127) / 128 * 128;
        memset(c.w.data() + 2 * rb + Kp / 2, 0xFF, static_cast<size_t>(Kp / 32));
    }
    for (int64_t n = 0; n < N; ++n) c.scale.push_back(static_cast<float>(rng.uniform(1, 100000)) / 77777.0f);
    return c;
}

struct QOut {
    std::vector<int32_t> acc;
    std::vector<float> y;
    int status = 0;
};

QOut run(const QCase& c, const uint8_t* w, const edgebit_threading* t) {
    QOut o;
    o.acc.assign(static_cast<size_t>(c.M * c.N), 0x7f7f7f7f);
    o.y.assign(static_cast<size_t>(c.M * c.N), -1.0f);
    o.status |= edgebit_qlinear_i32(c.xq.data(), c.M, c.K, w, c.N, c.bits, o.acc.data(), t);
    o.status |= edgebit_qlinear_f32(c.x.data(), c.M, c.K, w, c.N, c.bits, c.scale.data(), o.y.data(), t);
    return o;
}

// The weights copied so that they end flush against a PROT_NONE page: a read past them faults.
struct Guarded {
    uint8_t* base = nullptr;
    size_t len = 0;
    const uint8_t* data = nullptr;
    explicit Guarded(const std::vector<uint8_t>& v) {
        const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
        const size_t body = (v.size() + page - 1) / page * page;
        len = body + page;
        base = static_cast<uint8_t*>(mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
        mprotect(base + body, page, PROT_NONE);
        uint8_t* start = base + body - v.size();
        memcpy(start, v.data(), v.size());
        data = start;
    }
    ~Guarded() { munmap(base, len); }
};

void one_case(const QCase& c, const std::vector<std::string>& variants, const ktest::ThreadList& threads) {
    const std::string shape = "qlinear bits=" + std::to_string(c.bits) + " M=" + std::to_string(c.M) +
                              " N=" + std::to_string(c.N) + " K=" + std::to_string(c.K);
    edgebit_force_variant("scalar");
    const Guarded gw(c.w);
    const QOut ref = run(c, gw.data, nullptr);
    ktest::check(ref.status == 0, "qlinear scalar status", shape + " " + edgebit_last_error());
    ktest::check(ref.acc == naive(c.xq, c.M, c.K, c.w, c.N, c.bits), "qlinear scalar vs naive", shape);
    // The float path: quantize_rows + the i32 sums + the epilogue, spelled out.
    std::vector<int8_t> xq(c.x.size());
    std::vector<float> s(static_cast<size_t>(c.M));
    std::vector<int32_t> acc(static_cast<size_t>(c.M * c.N));
    bool epi = edgebit_quantize_rows(c.x.data(), c.M, c.K, xq.data(), s.data()) == 0 &&
               edgebit_qlinear_i32(xq.data(), c.M, c.K, c.w.data(), c.N, c.bits, acc.data(), nullptr) == 0;
    for (int64_t m = 0; epi && m < c.M; ++m)
        for (int64_t n = 0; n < c.N; ++n) {
            const float want = (static_cast<float>(acc[m * c.N + n]) / s[m]) * c.scale[n];
            epi = epi && memcmp(&want, &ref.y[m * c.N + n], 4) == 0;
        }
    ktest::check(epi, "qlinear epilogue", shape);
    for (const std::string& v : variants) {
        edgebit_force_variant(v.c_str());
        for (const auto& tc : threads) {
            const QOut o = run(c, gw.data, tc.second);
            ktest::check(o.status == 0 && o.acc == ref.acc && memcmp(o.y.data(), ref.y.data(), o.y.size() * 4) == 0,
                         "qlinear bit-exact", v + " threads=" + tc.first + " " + shape);
        }
    }
    edgebit_force_variant("auto");
}

void errors() {
    const std::vector<int8_t> xq(128, 1);
    std::vector<uint8_t> w(1024, 0x88);
    std::vector<int32_t> acc(4);
    const std::vector<float> x(128, 1.0f), scale(4, 1.0f);
    std::vector<float> y(4);
    ktest::check(edgebit_qlinear_i32(xq.data(), 1, 128, w.data(), 1, 5, acc.data(), nullptr) == EDGEBIT_ERR_BAD_SHAPE,
                 "qlinear bits=5 refused");
    ktest::check(strstr(edgebit_last_error(), "bits=5") != nullptr, "qlinear bits message", edgebit_last_error());
    ktest::check(edgebit_qlinear_row_bytes(8193, 4) > 0 && edgebit_qlinear_row_bytes(128, 3) == -1 &&
                     edgebit_qlinear_row_bytes(128, 4) == 64 + 4 && edgebit_qlinear_row_bytes(200, 8) == 256,
                 "qlinear row bytes");
    ktest::check(edgebit_qlinear_f32(x.data(), 1, 8193, w.data(), 1, 4, scale.data(), y.data(), nullptr) ==
                     EDGEBIT_ERR_BAD_SHAPE,
                 "qlinear q4 K > 8192 refused");
    std::vector<int8_t> bad = xq;
    bad[77] = -128;
    ktest::check(edgebit_qlinear_i32(bad.data(), 1, 128, w.data(), 1, 8, acc.data(), nullptr) == EDGEBIT_ERR_BAD_SHAPE,
                 "qlinear -128 activation refused");
    ktest::check(edgebit_qlinear_f32(nullptr, 1, 128, w.data(), 1, 8, scale.data(), y.data(), nullptr) ==
                     EDGEBIT_ERR_NULL_POINTER,
                 "qlinear null refused");
}

}  // namespace

void test_qlinear(const std::vector<std::string>& variants, const ktest::ThreadList& threads) {
    errors();
    uint64_t seed = 900000;
    for (int bits : {8, 4}) {
        for (int64_t K : {1, 31, 64, 128, 200, 300, 2560})
            for (int64_t N : {1, 5, 67}) one_case(make(1, N, K, bits, seed++), variants, threads);
        one_case(make(3, 13, 384, bits, seed++), variants, threads);
        one_case(make(130, 9, 256, bits, seed++), variants, threads);  // more rows than a slab
    }
    one_case(make(1, 7, 8192, 4, seed++), variants, threads);  // the q4 limit: exact at the largest sums
}
