// SHA-256 (FIPS 180-4) for the artifact check: the engine hashes every file manifest.json lists before a runtime
// loads it. No third-party code: the compression function in plain C++ plus, picked at run time, the CPU's SHA
// instructions (x86 SHA-NI, ARMv8 SHA2), which make hashing a 1 GB model a fraction of a second instead of
// several. EDGEBIT_SHA256=scalar in the environment forces the plain version (tests hold every path to hashlib).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace edgebit::engine {

// Compresses n_blocks 64-byte blocks into state[8]. One call per buffer: no per-byte or per-block indirection.
using Sha256Blocks = void (*)(uint32_t state[8], const uint8_t* blocks, size_t n_blocks);

class Sha256 {
  public:
    Sha256();
    void update(const void* data, size_t n);
    std::string hex_digest();  // finishes the hash (the object is spent afterwards)

  private:
    uint32_t state_[8];
    uint8_t tail_[64];
    size_t tail_len_ = 0;
    uint64_t total_ = 0;
    Sha256Blocks blocks_;
};

// The file's SHA-256 as 64 lowercase hex digits, read in 4 MiB chunks. Throws std::runtime_error naming the file
// when it cannot be opened or read.
std::string sha256_file(const std::string& path);

// Which compression function this process uses: "sha-ni", "armv8-sha2" or "scalar".
const char* sha256_implementation();

// The accelerated compression functions (sha256_x86.cpp, sha256_arm.cpp: compiled with the ISA flags only they
// need); called only when the CPU has the instructions.
void sha256_blocks_shani(uint32_t state[8], const uint8_t* blocks, size_t n_blocks);
void sha256_blocks_armv8(uint32_t state[8], const uint8_t* blocks, size_t n_blocks);

}  // namespace edgebit::engine
