// Shared by the libFuzzer targets: a byte reader over the fuzz input and the op's documented
// semantics written as plainly as possible (no SIMD, no threads), to hold every entry point to.
#ifndef EDGEBIT_FUZZ_COMMON_H
#define EDGEBIT_FUZZ_COMMON_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

namespace fuzz {

// Reads integers and bytes off the input; past its end it yields zeros (never out of bounds).
struct Reader {
    const uint8_t* p;
    size_t n;
    size_t i = 0;
    Reader(const uint8_t* data, size_t size) : p(data), n(size) {}
    uint8_t u8() { return i < n ? p[i++] : 0; }
    uint32_t u32() {
        uint32_t v = 0;
        for (int b = 0; b < 4; ++b) v |= uint32_t(u8()) << (8 * b);
        return v;
    }
    // The rest of the input, repeated, fills `bytes` (so small inputs still give full tensors);
    // past the end, a fixed pattern.
    void fill(void* dst, size_t bytes) {
        uint8_t* d = static_cast<uint8_t*>(dst);
        const size_t left = n > i ? n - i : 0;
        for (size_t k = 0; k < bytes; ++k) d[k] = left ? p[i + k % left] : uint8_t(k * 131u);
        i += bytes < left ? bytes : left;  // the next tensor starts on fresh bytes
    }
};

// Activations from raw bytes are mostly NaN-free garbage of every magnitude; mixing in small
// integers and the occasional NaN/Inf keeps quantization ties and non-finite rows common.
inline void make_activations(Reader& r, std::vector<float>& x) {
    r.fill(x.data(), x.size() * sizeof(float));
    const uint8_t mode = r.u8();
    for (size_t k = 0; k < x.size(); ++k) {
        const uint32_t h = uint32_t(k) * 2654435761u + mode;
        if ((mode & 3) == 0) x[k] = float(int((h >> 8) % 17) - 8) * 0.5f;  // ties
        if ((mode & 12) == 4 && (h >> 20) % 97 == 0) x[k] = (h & 1) ? NAN : -INFINITY;
    }
}

// The documented semantics (edgebit_kernels.h): per-row int8 quantization (a row with NaN or
// +-Inf: scale NaN, codes 0), exact int32 sums with code 3 read as weight +2, float epilogue.
inline void ref_quantize(const float* x, int64_t K, int8_t* q, float* s) {
    float absmax = 0.0f;
    bool bad = false;
    for (int64_t k = 0; k < K; ++k) {
        bad = bad || !isfinite(x[k]);
        absmax = fmaxf(absmax, fabsf(x[k]));
    }
    if (bad) {
        *s = NAN;
        for (int64_t k = 0; k < K; ++k) q[k] = 0;
        return;
    }
    *s = 127.0f / fmaxf(absmax, 1e-5f);
    for (int64_t k = 0; k < K; ++k) q[k] = int8_t(fminf(fmaxf(nearbyintf(x[k] * *s), -128.0f), 127.0f));
}

// Layout v2: rows of ceil(K/128)*32 bytes; the padding weights (k >= K) are never read here, so
// whatever the fuzz input put there must not change any output.
inline int64_t row_bytes(int64_t K) { return (K + 127) / 128 * 32; }

// A K from one fuzz byte: below 0x80 the whole-block widths 0, 128, 256, 384 (as before layout v2,
// so saved inputs keep their shapes), from 0x80 the widths 1 + 3j (j < 128), which hit every
// tail length mod 128 across one to three blocks.
inline int64_t pick_k(uint8_t b) { return b & 0x80 ? 1 + 3 * int64_t(b & 0x7f) : 128 * int64_t(b % 4); }

inline int ref_weight(const uint8_t* packed, int64_t K, int64_t n, int64_t k) {
    const uint8_t byte = packed[n * row_bytes(K) + 32 * (k / 128) + (k % 32)];
    return int((byte >> (2 * ((k % 128) / 32))) & 3) - 1;
}

inline int32_t ref_acc(const int8_t* q, const uint8_t* packed, int64_t K, int64_t m, int64_t n) {
    int32_t acc = 0;
    for (int64_t k = 0; k < K; ++k) acc += int32_t(q[m * K + k]) * ref_weight(packed, K, n, k);
    return acc;
}

inline float ref_out(int32_t acc, float s, float g) { return (float(acc) / s) * g; }

// Bitwise equality that treats every NaN as equal to every other NaN.
inline bool same_float(float a, float b) {
    if (a != a || b != b) return a != a && b != b;
    return memcmp(&a, &b, sizeof a) == 0;
}

[[noreturn]] inline void fail(const char* what, long long a, long long b, long long c) {
    fprintf(stderr, "FUZZ MISMATCH: %s (%lld, %lld, %lld)\n", what, a, b, c);
    abort();
}

}  // namespace fuzz

#endif
