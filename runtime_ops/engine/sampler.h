// Picking the next token from logits: greedy, or temperature / top-k / top-p sampling, with HF-style repetition
// penalty over the ids seen so far. The RNG is a fixed algorithm (splitmix64), so a seed gives the same tokens on
// every platform and standard library.
#pragma once
#include <cstdint>
#include <unordered_set>
#include <vector>

#include "edgebit_engine.h"

namespace edgebit::engine {

// Checks ranges; returns "" or a message naming the option (the CLI's names: --temperature, --top-k, ...).
const char* check_sampling(const edgebit_sampling& s);

class Sampler {
  public:
    explicit Sampler(const edgebit_sampling& s) : s_(s), state_(s.seed) {}
    void note(int32_t id) { seen_.insert(id); }  // prompt and generated ids (repetition penalty)
    int32_t pick(const float* logits, int64_t vocab);

  private:
    double uniform();  // [0, 1)
    edgebit_sampling s_;
    uint64_t state_;
    std::unordered_set<int32_t> seen_;
    std::vector<double> work_;
    std::vector<int32_t> order_;
};

}  // namespace edgebit::engine
