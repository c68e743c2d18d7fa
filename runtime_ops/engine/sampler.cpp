#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace edgebit::engine {

const char* check_sampling(const edgebit_sampling& s) {
    if (s.max_new_tokens < 1) return "--max-new-tokens must be at least 1";
    if (!(s.temperature >= 0) || !std::isfinite(s.temperature)) return "--temperature must be a number >= 0";
    if (s.top_k < 0) return "--top-k must be >= 0 (0 = off)";
    if (!(s.top_p > 0 && s.top_p <= 1)) return "--top-p must be in (0, 1]";
    if (!(s.repetition_penalty > 0) || !std::isfinite(s.repetition_penalty))
        return "--repetition-penalty must be a number > 0 (1 = off)";
    return "";
}

double Sampler::uniform() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * (1.0 / 9007199254740992.0);
}

int32_t Sampler::pick(const float* logits, int64_t vocab) {
    if (s_.temperature <= 0 && s_.repetition_penalty == 1.0f) {  // plain greedy: no copy of the logits
        int64_t best = 0;
        for (int64_t v = 1; v < vocab; ++v)
            if (logits[v] > logits[best]) best = v;
        return static_cast<int32_t>(best);
    }
    work_.assign(logits, logits + vocab);
    if (s_.repetition_penalty != 1.0f)
        for (int32_t id : seen_)
            if (id >= 0 && id < vocab)
                work_[id] = work_[id] > 0 ? work_[id] / s_.repetition_penalty : work_[id] * s_.repetition_penalty;
    if (s_.temperature <= 0) {  // greedy: the first maximum, like numpy's argmax
        int64_t best = 0;
        for (int64_t v = 1; v < vocab; ++v)
            if (work_[v] > work_[best]) best = v;
        return static_cast<int32_t>(best);
    }
    // Softmax of logits / temperature in double, as edgebit.generate.pick_token does.
    double top = -INFINITY;
    for (double& x : work_) { x /= s_.temperature; top = std::max(top, x); }
    order_.resize(vocab);
    std::iota(order_.begin(), order_.end(), 0);
    auto by_prob = [&](int32_t a, int32_t b) { return work_[a] > work_[b] || (work_[a] == work_[b] && a < b); };
    size_t keep = static_cast<size_t>(vocab);
    if (s_.top_k > 0 && s_.top_k < vocab) {
        keep = static_cast<size_t>(s_.top_k);
        std::partial_sort(order_.begin(), order_.begin() + keep, order_.end(), by_prob);
    } else if (s_.top_p < 1) {
        std::sort(order_.begin(), order_.end(), by_prob);
    }
    double total = 0;
    for (size_t i = 0; i < keep; ++i) total += (work_[order_[i]] = std::exp(work_[order_[i]] - top));
    if (s_.top_p < 1) {  // order_[0..keep) is sorted: the smallest prefix whose mass reaches top_p
        double cum = 0;
        size_t n = 0;
        while (n < keep && cum < s_.top_p * total) cum += work_[order_[n++]];
        keep = std::max<size_t>(n, 1);
        total = cum > 0 ? cum : work_[order_[0]];
    }
    double r = uniform() * total;
    for (size_t i = 0; i < keep; ++i) {
        r -= work_[order_[i]];
        if (r < 0) return order_[i];
    }
    return order_[keep - 1];
}

}  // namespace edgebit::engine
