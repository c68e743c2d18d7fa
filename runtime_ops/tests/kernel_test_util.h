// What the kernel test files share: the check counter, the deterministic generator and the thread
// configurations (defined in kernel_tests.cpp).
#ifndef EDGEBIT_KERNEL_TEST_UTIL_H
#define EDGEBIT_KERNEL_TEST_UTIL_H

#include <stdint.h>

#include <string>
#include <utility>
#include <vector>

#include "edgebit_kernels.h"

namespace ktest {

void check(bool ok, const char* what, const std::string& detail = "");

// xorshift64*: deterministic across platforms, unlike std:: distributions.
struct Rng {
    uint64_t s;
    explicit Rng(uint64_t seed) : s(seed * 2654435761ULL + 1) {}
    uint64_t next() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 2685821657736338717ULL;
    }
    int64_t uniform(int64_t lo, int64_t hi) {  // inclusive
        return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
    }
};

using ThreadList = std::vector<std::pair<std::string, const edgebit_threading*>>;

}  // namespace ktest

void test_qlinear(const std::vector<std::string>& variants, const ktest::ThreadList& threads);
void test_attention(const std::vector<std::string>& variants, const ktest::ThreadList& threads);

#endif  // EDGEBIT_KERNEL_TEST_UTIL_H
