#include "sha256.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_SHA2
#define HWCAP_SHA2 (1UL << 6)
#endif
#endif

namespace edgebit::engine {

// Round constants (the first 32 bits of the fractional parts of the cube roots of the first 64 primes); the
// accelerated versions read them too.
extern const uint32_t kSha256K[64];
const uint32_t kSha256K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

namespace {

inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void blocks_scalar(uint32_t state[8], const uint8_t* p, size_t n_blocks) {
    for (; n_blocks > 0; --n_blocks, p += 64) {
        uint32_t w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 | uint32_t(p[4 * i + 2]) << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; ++i) {
            const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int i = 0; i < 64; ++i) {
            const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + kSha256K[i] + w[i];
            const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1;
            d = c; c = b; b = a; a = t1 + t2;
        }
        state[0] += a; state[1] += b; state[2] += c; state[3] += d;
        state[4] += e; state[5] += f; state[6] += g; state[7] += h;
    }
}

struct Choice {
    Sha256Blocks fn;
    const char* name;
};

Choice choose() {
    const char* force = std::getenv("EDGEBIT_SHA256");
    if (force && std::strcmp(force, "scalar") == 0) return {blocks_scalar, "scalar"};
#if defined(__x86_64__) || defined(_M_X64)
    unsigned a, b, c, d;
    // SHA-NI (leaf 7 EBX bit 29) with SSSE3 and SSE4.1 (leaf 1 ECX bits 9, 19), which the shuffles need.
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 9)) && (c & (1u << 19)) &&
        __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29)))
        return {sha256_blocks_shani, "sha-ni"};
#elif defined(__aarch64__) && defined(__linux__)
    if (getauxval(AT_HWCAP) & HWCAP_SHA2) return {sha256_blocks_armv8, "armv8-sha2"};
#endif
    return {blocks_scalar, "scalar"};
}

const Choice& chosen() {
    static const Choice c = choose();
    return c;
}

}  // namespace

Sha256::Sha256()
    : state_{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19},
      blocks_(chosen().fn) {}

void Sha256::update(const void* data, size_t n) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    total_ += n;
    if (tail_len_) {
        const size_t take = n < 64 - tail_len_ ? n : 64 - tail_len_;
        std::memcpy(tail_ + tail_len_, p, take);
        tail_len_ += take;
        p += take;
        n -= take;
        if (tail_len_ < 64) return;
        blocks_(state_, tail_, 1);
        tail_len_ = 0;
    }
    if (n >= 64) {
        blocks_(state_, p, n / 64);
        p += n / 64 * 64;
        n %= 64;
    }
    std::memcpy(tail_, p, n);
    tail_len_ = n;
}

std::string Sha256::hex_digest() {
    // Padding: 0x80, zeros to 56 mod 64, the message length in bits (big-endian).
    const uint64_t bits = total_ * 8;
    uint8_t pad[72] = {0x80};
    const size_t pad_len = (tail_len_ < 56 ? 56 : 120) - tail_len_;
    for (int i = 0; i < 8; ++i) pad[pad_len + i] = uint8_t(bits >> (56 - 8 * i));
    update(pad, pad_len + 8);
    static const char hex[] = "0123456789abcdef";
    std::string out(64, '0');
    for (int i = 0; i < 8; ++i)
        for (int j = 0; j < 4; ++j) {
            const uint8_t byte = uint8_t(state_[i] >> (24 - 8 * j));
            out[8 * i + 2 * j] = hex[byte >> 4];
            out[8 * i + 2 * j + 1] = hex[byte & 15];
        }
    return out;
}

std::string sha256_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(path + ": cannot read it (" + std::strerror(errno) + ")");
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    constexpr size_t kChunk = size_t(4) << 20;
    std::unique_ptr<uint8_t[]> buf(new uint8_t[kChunk]);
    Sha256 h;
    for (;;) {
        const ssize_t got = ::read(fd, buf.get(), kChunk);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            const int err = errno;
            ::close(fd);
            throw std::runtime_error(path + ": cannot read it (" + std::strerror(err) + ")");
        }
        if (got == 0) break;
        h.update(buf.get(), static_cast<size_t>(got));
    }
    ::close(fd);
    return h.hex_digest();
}

const char* sha256_implementation() { return chosen().name; }

}  // namespace edgebit::engine
