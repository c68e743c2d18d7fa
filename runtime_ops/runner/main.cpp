// edgebit-runner ARTIFACT_DIR [options]: latency and memory of an edgebit ONNX artifact on this machine.
// Prints one JSON object on stdout; any error is one line on stderr and exit code 2 (1 for usage).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "edgebit_kernels.h"
#include "manifest.h"
#include "session.h"
#include "sysinfo.h"

using namespace edgebit_runner;

namespace {

const char* kUsage =
    "usage: edgebit-runner ARTIFACT_DIR [--threads N] [--prompt-len P | --prompt-ids a,b,c] [--gen-len G]\n"
    "                      [--runs R] [--warmup W] [--seed S] [--op-library PATH] [--profile PREFIX]\n"
    "  --profile PREFIX: the runtime's per-op profile: ONNX Runtime's profiling JSON (PREFIX_<date>.json) or\n"
    "                    an ETDump (PREFIX.etdump; read it with executorch.devtools.Inspector)\n";

struct Args {
    std::string artifact;
    int threads = 0;
    int64_t prompt_len = 16, gen_len = 16;
    int runs = 3, warmup = 1;
    uint64_t seed = 0;
    std::vector<int64_t> prompt_ids;
    std::string op_library;  // default: the artifact's own (manifest op_library)
    bool op_library_set = false;
    std::string ort_profile;
};

[[noreturn]] void usage_error(const std::string& msg) {
    std::fprintf(stderr, "edgebit-runner: %s\n%s", msg.c_str(), kUsage);
    std::exit(1);
}

int64_t to_int(const std::string& flag, const char* v, int64_t lo, int64_t hi) {
    char* end = nullptr;
    long long x = std::strtoll(v, &end, 10);
    if (!*v || *end || x < lo || x > hi)
        usage_error(flag + " wants an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + v + "'");
    return x;
}

Args parse(int argc, char** argv) {
    Args a;
    for (int i = 1; i < argc; ++i) {
        std::string f = argv[i];
        if (f == "-h" || f == "--help") { std::fputs(kUsage, stdout); std::exit(0); }
        if (f.rfind("--", 0) != 0) {
            if (!a.artifact.empty()) usage_error("more than one artifact dir given");
            a.artifact = f;
            continue;
        }
        if (i + 1 >= argc) usage_error(f + " needs a value");
        const char* v = argv[++i];
        if (f == "--threads") a.threads = static_cast<int>(to_int(f, v, 0, 1024));
        else if (f == "--prompt-len") a.prompt_len = to_int(f, v, 1, 1 << 20);
        else if (f == "--gen-len") a.gen_len = to_int(f, v, 1, 1 << 20);
        else if (f == "--runs") a.runs = static_cast<int>(to_int(f, v, 1, 100000));
        else if (f == "--warmup") a.warmup = static_cast<int>(to_int(f, v, 0, 100000));
        else if (f == "--seed") a.seed = static_cast<uint64_t>(to_int(f, v, 0, INT64_MAX));
        else if (f == "--op-library") { a.op_library = v; a.op_library_set = true; }
        else if (f == "--ort-profile" || f == "--profile") a.ort_profile = v;
        else if (f == "--prompt-ids") {
            std::stringstream ss(v);
            std::string tok;
            while (std::getline(ss, tok, ',')) a.prompt_ids.push_back(to_int(f, tok.c_str(), 0, INT64_MAX));
            if (a.prompt_ids.empty()) usage_error("--prompt-ids is empty");
        } else usage_error("unknown option " + f);
    }
    if (a.artifact.empty()) usage_error("no ARTIFACT_DIR given");
    return a;
}

std::string jstr(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') { o += '\\'; o += c; }
        else if (static_cast<unsigned char>(c) < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); o += b; }
        else o += c;
    }
    return o + "\"";
}

std::string jnum(double x) {
    if (!std::isfinite(x)) return "null";
    char b[32];
    std::snprintf(b, sizeof b, "%.4f", x);
    return b;
}

template <class T, class F>
std::string jlist(const std::vector<T>& v, F f) {
    std::string o = "[";
    for (size_t i = 0; i < v.size(); ++i) o += (i ? ", " : "") + f(v[i]);
    return o + "]";
}

double percentile(std::vector<double> v, double q) {  // linear interpolation, numpy's default
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    double pos = q * (v.size() - 1);
    size_t lo = static_cast<size_t>(pos);
    size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

std::string cpu_features() {
    std::vector<std::string> f;
    for (int i = 0; i < edgebit_variant_count(); ++i) {
        const char* n = edgebit_variant_name(i);
        if (n && edgebit_variant_supported(n)) f.push_back(n);
    }
    return jlist(f, jstr);
}

struct RunResult {
    double ttft_ms = 0, decode_ms = 0;
    std::vector<double> token_ms;
    std::vector<int64_t> ids;
};

RunResult one_run(Decoder& d, const std::vector<int64_t>& prompt, int64_t gen) {
    RunResult r;
    d.reset();
    double t0 = now_ms();
    int64_t next = d.forward_argmax(prompt);
    r.ttft_ms = now_ms() - t0;
    r.ids.push_back(next);
    for (int64_t i = 1; i < gen; ++i) {
        double t = now_ms();
        next = d.forward_argmax({next});
        r.token_ms.push_back(now_ms() - t);
        r.ids.push_back(next);
    }
    for (double x : r.token_ms) r.decode_ms += x;
    return r;
}

}  // namespace

int main(int argc, char** argv) {
    Args a = parse(argc, argv);
    try {
        Manifest m = read_manifest(a.artifact);
        if (m.target != Decoder::artifact_target())
            throw std::runtime_error(a.artifact + ": a '" + m.target + "' artifact; this runner (" +
                                     Decoder::runtime_name() + ") runs '" + Decoder::artifact_target() +
                                     "' artifacts" + (m.target == "executorch" ? " (use edgebit-runner-et)" :
                                     m.target == "onnx" ? " (use edgebit-runner)" : ""));
        std::vector<int64_t> prompt = a.prompt_ids;
        if (prompt.empty()) {
            std::mt19937_64 rng(a.seed);
            std::uniform_int_distribution<int64_t> dist(0, m.vocab_size - 1);
            for (int64_t i = 0; i < a.prompt_len; ++i) prompt.push_back(dist(rng));
        }
        for (int64_t id : prompt)
            if (id >= m.vocab_size)
                throw std::runtime_error("prompt id " + std::to_string(id) + " >= vocab_size " + std::to_string(m.vocab_size));
        const int64_t P = static_cast<int64_t>(prompt.size());
        if (P + a.gen_len > m.max_seq_len)
            throw std::runtime_error("prompt " + std::to_string(P) + " + gen " + std::to_string(a.gen_len) +
                                     " tokens exceed the artifact's max_seq_len " + std::to_string(m.max_seq_len));
        SessionConfig cfg;
        cfg.artifact_dir = a.artifact;
        cfg.threads = a.threads;
        cfg.profile_prefix = a.ort_profile;
        if (a.op_library_set) cfg.op_library = a.op_library;
        else if (!m.op_library.empty()) cfg.op_library = a.artifact + "/" + m.op_library;

        const int64_t rss_before = proc_status_bytes("VmRSS");
        double t0 = now_ms();
        Decoder d(cfg, m);
        const double load_ms = now_ms() - t0;
        const int64_t rss_after_load = proc_status_bytes("VmRSS");

        for (int i = 0; i < a.warmup; ++i) one_run(d, prompt, a.gen_len);
        std::vector<RunResult> runs;
        for (int i = 0; i < a.runs; ++i) runs.push_back(one_run(d, prompt, a.gen_len));
        std::string profile_file = d.end_profiling();

        std::vector<double> ttft, prefill_tps, decode_tps, all_tokens;
        for (auto& r : runs) {
            ttft.push_back(r.ttft_ms);
            prefill_tps.push_back(P / (r.ttft_ms / 1000.0));
            if (!r.token_ms.empty()) decode_tps.push_back(r.token_ms.size() / (r.decode_ms / 1000.0));
            all_tokens.insert(all_tokens.end(), r.token_ms.begin(), r.token_ms.end());
        }
        for (size_t i = 1; i < runs.size(); ++i)
            if (runs[i].ids != runs[0].ids) throw std::runtime_error("greedy tokens differ between repetitions");

        auto num = [](double x) { return jnum(x); };
        auto integer = [](int64_t x) { return std::to_string(x); };
        std::string o = "{";
        o += "\"runner\": " + jstr(argv[0] ? std::string(argv[0]).substr(std::string(argv[0]).rfind('/') + 1) : "") +
             ", \"runtime\": " + jstr(Decoder::runtime_name()) + ", \"runtime_version\": " +
             jstr(Decoder::runtime_version());
        o += ", \"artifact\": " + jstr(a.artifact) + ", \"model_file\": " + jstr(m.model_file);
        o += ", \"op_library\": " + jstr(cfg.op_library);
        const char* kv = edgebit_kernel_variant();
        o += ", \"kernel_variant\": " + jstr(kv ? kv : "unknown");
        o += ", \"kernel_variant_source\": \"edgebit core linked into the runner (same dispatch as the op library)\"";
        o += ", \"cpu_features\": " + cpu_features();
        o += ", \"cpu_model\": " + jstr(cpu_model()) + ", \"arch\": " + jstr(machine_arch());
        o += ", \"online_cpus\": " + std::to_string(online_cpus());
        o += ", \"threads\": " + std::to_string(a.threads);
        o += ", \"prompt_tokens\": " + std::to_string(P) + ", \"gen_tokens\": " + std::to_string(a.gen_len);
        o += ", \"runs\": " + std::to_string(a.runs) + ", \"warmup\": " + std::to_string(a.warmup);
        o += ", \"seed\": " + std::to_string(a.seed);
        o += ", \"load_ms\": " + jnum(load_ms);
        o += ", \"ttft_ms\": " + jnum(median(ttft));
        o += ", \"prefill_tokens_per_s\": " + jnum(median(prefill_tps));
        o += ", \"decode_tokens_per_s\": " + (decode_tps.empty() ? std::string("null") : jnum(median(decode_tps)));
        o += ", \"token_latency_ms\": {\"p50\": " + jnum(percentile(all_tokens, 0.5)) +
             ", \"p90\": " + jnum(percentile(all_tokens, 0.9)) + ", \"max\": " +
             (all_tokens.empty() ? std::string("null") : jnum(*std::max_element(all_tokens.begin(), all_tokens.end()))) + "}";
        o += ", \"rss_before_load_bytes\": " + std::to_string(rss_before);
        o += ", \"rss_after_load_bytes\": " + std::to_string(rss_after_load);
        o += ", \"peak_rss_bytes\": " + std::to_string(proc_status_bytes("VmHWM"));
        o += ", \"artifact_bytes\": " + std::to_string(dir_bytes(a.artifact));
        o += ", \"prompt_ids\": " + jlist(prompt, integer);
        o += ", \"generated_ids\": " + jlist(runs[0].ids, integer);
        o += ", \"ttft_ms_per_run\": " + jlist(ttft, num);
        o += ", \"token_latencies_ms\": " + jlist(runs.back().token_ms, num);
        o += ", \"profile_file\": " + (profile_file.empty() ? std::string("null") : jstr(profile_file));
        const bool ort = std::string(Decoder::runtime_name()) == "onnxruntime";
        o += ", \"ort_profile_file\": " + (profile_file.empty() || !ort ? std::string("null") : jstr(profile_file));
        o += "}\n";
        std::fputs(o.c_str(), stdout);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "edgebit-runner: error: %s\n", e.what());
        return 2;
    }
}
