// Loop nest shared by the SIMD variants: splits a TileArgs into register tiles and tails.
// Each ISA file includes this and instantiates run_tiles<Micro> with its own micro-kernel
// struct (declared in an anonymous namespace), so the instantiation has internal linkage
// and is compiled with that file's ISA flags only: there is no shared inline copy that
// the linker could pick from a file compiled for a wider ISA.
//
// A micro-kernel struct provides:
//   kGemvRows                       weight rows per GEMV call (decode, one activation row)
//   template <int R> gemv(x, xsum, w, row_bytes, nblocks, out)
//       out[r] = sum_k x[k] * w_r[k] for R (1..kGemvRows) packed rows w + r * row_bytes
//   kTileM, kTileN                  GEMM register tile (activation rows x weight rows)
//   gemm(x, K, xsum, w, row_bytes, nblocks, acc, ld)
//       acc[m * ld + r] for a full kTileM x kTileN tile (x rows m at x + m * K)
#ifndef EDGEBIT_TILE_DRIVER_H
#define EDGEBIT_TILE_DRIVER_H

#include "kernel_variant.h"

namespace edgebit {
namespace {

// Decode streams 4 rows side by side, but each row is short (K/4 bytes: 640 for K = 2560),
// too short for hardware stream prefetchers to train on, and a fresh set of streams starts
// every few hundred nanoseconds. The rows of a group are contiguous, so the kernel instead
// prefetches linearly: while consuming 32 bytes of each of R rows (R * 32 bytes) it requests
// the same amount of the group kPrefetchGroups ahead, keeping a steady distance of
// kPrefetchGroups * R * row_bytes. Prefetches never fault; the address is formed as an
// integer so running past the end of the matrix is not pointer arithmetic out of bounds.
constexpr int kPrefetchGroups = 1;

template <int R>
inline void prefetch_ahead(const uint8_t* w, int64_t row_bytes, int64_t b) {
    const uintptr_t base = reinterpret_cast<uintptr_t>(w) +
                           static_cast<uintptr_t>(kPrefetchGroups * R * row_bytes + b * R * 32);
    for (int line = 0; line < R * 32; line += 64)
        __builtin_prefetch(reinterpret_cast<const void*>(base + line), 0, 0);
}

template <class Micro>
void run_tiles(const TileArgs& a) {
    const int64_t K = a.K;
    const int64_t row_bytes = K / 4;
    const int64_t nblocks = K / 128;
    int64_t m = 0;
    // GEMM: each unpacked weight block is reused across kTileM activation rows.
    for (; m + Micro::kTileM <= a.M; m += Micro::kTileM) {
        const int8_t* x = a.xq + m * K;
        int64_t n = 0;
        for (; n + Micro::kTileN <= a.nr; n += Micro::kTileN) {
            Micro::gemm(x, K, a.xsum + m, a.w + n * row_bytes, row_bytes, nblocks,
                        a.acc + m * a.ld + n, a.ld);
        }
        for (; n < a.nr; ++n) {
            for (int mm = 0; mm < Micro::kTileM; ++mm) {
                Micro::template gemv<1>(x + mm * K, a.xsum[m + mm], a.w + n * row_bytes,
                                        row_bytes, nblocks, a.acc + (m + mm) * a.ld + n);
            }
        }
    }
    // GEMV for the remaining rows (all of them when decoding, M == 1).
    for (; m < a.M; ++m) {
        const int8_t* x = a.xq + m * K;
        int32_t* out = a.acc + m * a.ld;
        int64_t n = 0;
        for (; n + Micro::kGemvRows <= a.nr; n += Micro::kGemvRows) {
            Micro::template gemv<Micro::kGemvRows>(x, a.xsum[m], a.w + n * row_bytes,
                                                   row_bytes, nblocks, out + n);
        }
        for (; n < a.nr; ++n) {
            Micro::template gemv<1>(x, a.xsum[m], a.w + n * row_bytes, row_bytes, nblocks,
                                    out + n);
        }
    }
}

}  // namespace
}  // namespace edgebit

#endif  // EDGEBIT_TILE_DRIVER_H
