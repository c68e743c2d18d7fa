#include "bench_mode.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "json_out.h"
#include "sysinfo.h"

namespace edgebit_runner {
namespace {

double percentile(std::vector<double> v, double q) {  // linear interpolation, numpy's default
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    const double pos = q * (v.size() - 1);
    const size_t lo = static_cast<size_t>(pos), hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

struct Run {
    edgebit_stats stats;
    std::vector<int32_t> ids;
    std::vector<double> token_ms;
};

Run one_run(edgebit_engine* e, const std::vector<int32_t>& prompt, const edgebit_sampling& s) {
    if (edgebit_engine_generate_ids(e, prompt.data(), prompt.size(), &s, nullptr, nullptr) != EDGEBIT_OK)
        throw std::runtime_error(edgebit_engine_last_error(e));
    Run r;
    edgebit_engine_stats(e, &r.stats);
    r.ids.resize(edgebit_engine_last_generated_ids(e, nullptr, 0));
    edgebit_engine_last_generated_ids(e, r.ids.data(), r.ids.size());
    r.token_ms.resize(edgebit_engine_last_token_latencies_ms(e, nullptr, 0));
    edgebit_engine_last_token_latencies_ms(e, r.token_ms.data(), r.token_ms.size());
    return r;
}

}  // namespace

int run_benchmark(edgebit_engine* e, const Args& a, const char* argv0, double load_ms, long long rss_before) {
    const std::string info = edgebit_engine_info_json(e);
    const int64_t vocab = json_int_field(info, "vocab_size");
    std::vector<int32_t> prompt = a.prompt_ids;
    if (prompt.empty()) {
        std::mt19937_64 rng(a.seed);
        std::uniform_int_distribution<int64_t> dist(0, vocab - 1);
        for (int64_t i = 0; i < a.prompt_len; ++i) prompt.push_back(static_cast<int32_t>(dist(rng)));
    }
    const int64_t max_seq = json_int_field(info, "max_seq_len");
    const int64_t P = static_cast<int64_t>(prompt.size());
    if (P + a.gen_len > max_seq)
        throw std::runtime_error("prompt " + std::to_string(P) + " + gen " + std::to_string(a.gen_len) +
                                 " tokens exceed the artifact's max_seq_len " + std::to_string(max_seq));
    edgebit_sampling s;
    edgebit_sampling_init(&s);
    s.max_new_tokens = static_cast<int32_t>(a.gen_len);
    s.ignore_eos = 1;  // fixed lengths: every run times the same work
    for (int i = 0; i < a.warmup; ++i) one_run(e, prompt, s);
    std::vector<Run> runs;
    for (int i = 0; i < a.runs; ++i) runs.push_back(one_run(e, prompt, s));
    const std::string profile_file = edgebit_engine_end_profiling(e);
    for (size_t i = 1; i < runs.size(); ++i)
        if (runs[i].ids != runs[0].ids) throw std::runtime_error("greedy tokens differ between repetitions");

    std::vector<double> ttft, prefill, decode, all_tokens;
    for (const Run& r : runs) {
        ttft.push_back(r.stats.ttft_ms);
        prefill.push_back(r.stats.prefill_tokens_per_s);
        if (!r.token_ms.empty()) decode.push_back(r.stats.decode_tokens_per_s);
        all_tokens.insert(all_tokens.end(), r.token_ms.begin(), r.token_ms.end());
    }
    edgebit_stats now;
    edgebit_engine_stats(e, &now);
    const std::string runner = std::string(argv0).substr(std::string(argv0).rfind('/') + 1);
    const bool ort = json_string_field(info, "runtime") == "onnxruntime";
    JsonObject o(info);  // the engine's description (runtime, kernel variant, CPU, ...) first
    o.str("runner", runner).str("artifact", a.artifact);
    o.str("kernel_variant_source", "edgebit core linked into the engine (same dispatch as the op library)");
    o.num("threads", a.threads).num("prompt_tokens", P).num("gen_tokens", a.gen_len);
    o.num("runs", a.runs).num("warmup", a.warmup).num("seed", static_cast<double>(a.seed));
    o.real("load_ms", load_ms).real("ttft_ms", percentile(ttft, 0.5));
    o.real("prefill_tokens_per_s", percentile(prefill, 0.5));
    o.real("decode_tokens_per_s", decode.empty() ? NAN : percentile(decode, 0.5));
    o.raw("token_latency_ms", "{\"p50\": " + real_text(percentile(all_tokens, 0.5)) + ", \"p90\": " +
                                  real_text(percentile(all_tokens, 0.9)) + ", \"max\": " +
                                  real_text(all_tokens.empty() ? NAN : *std::max_element(all_tokens.begin(), all_tokens.end())) + "}");
    o.num("rss_before_load_bytes", static_cast<double>(rss_before));
    o.num("rss_after_load_bytes", static_cast<double>(now.rss_after_load_bytes));
    o.num("peak_rss_bytes", static_cast<double>(now.peak_rss_bytes));
    o.raw("memory", edgebit_engine_memory_json(e));  // the split at the end of the runs (/proc/self/smaps)
    o.ids("prompt_ids", prompt).ids("generated_ids", runs[0].ids);
    o.reals("ttft_ms_per_run", ttft).reals("token_latencies_ms", runs.back().token_ms);
    o.opt_str("profile_file", profile_file).opt_str("ort_profile_file", ort ? profile_file : "");
    std::fputs((o.close() + "\n").c_str(), stdout);
    return 0;
}

}  // namespace edgebit_runner
