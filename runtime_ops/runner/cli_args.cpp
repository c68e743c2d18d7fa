#include "cli_args.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace edgebit_runner {

const char* const kUsage =
    "usage: edgebit-runner ARTIFACT_DIR [mode] [options]\n"
    "modes:\n"
    "  --prompt TEXT          generate from TEXT, streaming the text (then prefill/decode tokens/s on stderr)\n"
    "  --chat                 chat over stdin, one message per line, keeping the KV cache between turns\n"
    "                         (/reset starts over, /quit or end of input ends); --system TEXT sets a system prompt;\n"
    "                         with --json, one JSON object per turn (JSON lines) instead of text\n"
    "  (neither)              benchmark: a prompt of --prompt-len P random ids (--seed) or --prompt-ids a,b,c,\n"
    "                         --gen-len G greedy tokens, --warmup W + --runs R repetitions, one JSON object\n"
    "  --soak SECONDS         conversations until the context is full, again and again, for SECONDS (sampled and\n"
    "                         greedy turns, cancels from another thread, resets): one JSON line per conversation\n"
    "                         (RSS, anonymous memory, decode speed); `edgebit soak` judges their drift\n"
    "sampling (as `edgebit run`): --max-new-tokens N (64) --temperature T (0 = greedy) --top-k K (0 = off)\n"
    "                         --top-p P (1 = off) --repetition-penalty R (1 = off) --seed S\n"
    "other: --threads N (0 = runtime default) --json (one JSON object instead of streamed text)\n"
    "       --op-library PATH (default: the artifact's own) --profile PREFIX (ONNX Runtime's profiling JSON\n"
    "       PREFIX_<date>.json, or PREFIX.etdump for a .pte; read it with executorch.devtools.Inspector)\n"
    "       --verify cached|full|off: the sha256 check of the artifact's files against manifest.json before\n"
    "       loading (cached: files unchanged since their last check are not hashed again; default);\n"
    "       --no-verify = --verify off\n"
    "       --max-memory MB: refuse to open (exit 2, one line naming the figure needed) an artifact whose estimated\n"
    "       peak memory is above MB (10^6 bytes); the benchmark JSON's \"memory\" has the split (/proc smaps)\n";

namespace {

[[noreturn]] void usage_error(const std::string& msg) {
    std::fprintf(stderr, "edgebit-runner: %s\n%s", msg.c_str(), kUsage);
    std::exit(1);
}

int64_t to_int(const std::string& flag, const char* v, int64_t lo, int64_t hi) {
    char* end = nullptr;
    errno = 0;
    long long x = std::strtoll(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi)
        usage_error(flag + " wants an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + v + "'");
    return x;
}

float to_float(const std::string& flag, const char* v, double lo, double hi, bool lo_open) {
    char* end = nullptr;
    double x = std::strtod(v, &end);
    if (!*v || *end || !std::isfinite(x) || x > hi || (lo_open ? x <= lo : x < lo))
        usage_error(flag + " wants a number in " + (lo_open ? "(" : "[") + std::to_string(lo) + ", " +
                    std::to_string(hi) + "], got '" + v + "'");
    return static_cast<float>(x);
}

}  // namespace

Args parse_args(int argc, char** argv) {
    Args a;
    edgebit_sampling_init(&a.sampling);
    bool text = false, chat = false, bench_flag = false, soak = false;
    for (int i = 1; i < argc; ++i) {
        const std::string f = argv[i];
        if (f == "-h" || f == "--help") { std::fputs(kUsage, stdout); std::exit(0); }
        if (f.rfind("--", 0) != 0) {
            if (!a.artifact.empty()) usage_error("more than one artifact dir given ('" + a.artifact + "', '" + f + "')");
            a.artifact = f;
            continue;
        }
        if (f == "--chat") { chat = true; continue; }
        if (f == "--json") { a.json = true; continue; }
        if (f == "--no-verify") { a.verify = EDGEBIT_VERIFY_OFF; continue; }
        if (i + 1 >= argc) usage_error(f + " needs a value");
        const char* v = argv[++i];
        if (f == "--threads") a.threads = static_cast<int>(to_int(f, v, 0, 1024));
        else if (f == "--prompt") { a.prompt = v; text = true; }
        else if (f == "--system") a.system = v;
        else if (f == "--max-new-tokens") a.sampling.max_new_tokens = static_cast<int32_t>(to_int(f, v, 1, 1 << 24));
        else if (f == "--temperature") a.sampling.temperature = to_float(f, v, 0, 1e6, false);
        else if (f == "--top-k") a.sampling.top_k = static_cast<int32_t>(to_int(f, v, 0, 1 << 24));
        else if (f == "--top-p") a.sampling.top_p = to_float(f, v, 0, 1, true);
        else if (f == "--repetition-penalty") a.sampling.repetition_penalty = to_float(f, v, 0, 1e6, true);
        else if (f == "--seed") { a.seed = static_cast<uint64_t>(to_int(f, v, 0, INT64_MAX)); a.sampling.seed = a.seed; }
        else if (f == "--prompt-len") { a.prompt_len = to_int(f, v, 1, 1 << 24); bench_flag = true; }
        else if (f == "--gen-len") { a.gen_len = to_int(f, v, 1, 1 << 24); bench_flag = true; }
        else if (f == "--runs") { a.runs = static_cast<int>(to_int(f, v, 1, 100000)); bench_flag = true; }
        else if (f == "--warmup") { a.warmup = static_cast<int>(to_int(f, v, 0, 100000)); bench_flag = true; }
        else if (f == "--soak") { a.soak_seconds = to_float(f, v, 0, 1e7, true); soak = true; }
        else if (f == "--op-library") a.op_library = v;
        else if (f == "--max-memory") a.max_memory_mb = to_int(f, v, 1, int64_t(1) << 40);
        else if (f == "--verify") {
            const std::string m = v;
            if (m == "cached") a.verify = EDGEBIT_VERIFY_CACHED;
            else if (m == "full") a.verify = EDGEBIT_VERIFY_FULL;
            else if (m == "off") a.verify = EDGEBIT_VERIFY_OFF;
            else usage_error("--verify wants cached, full or off, got '" + m + "'");
        }
        else if (f == "--profile" || f == "--ort-profile") a.profile = v;
        else if (f == "--prompt-ids") {
            std::stringstream ss(v);
            std::string tok;
            while (std::getline(ss, tok, ','))
                a.prompt_ids.push_back(static_cast<int32_t>(to_int(f, tok.c_str(), 0, INT32_MAX)));
            if (a.prompt_ids.empty()) usage_error("--prompt-ids is empty");
            bench_flag = true;
        } else {
            usage_error("unknown option " + f);
        }
    }
    if (a.artifact.empty()) usage_error("no ARTIFACT_DIR given");
    if (text + chat + bench_flag + soak > 1)
        usage_error("--prompt, --chat, --soak and the benchmark options (--prompt-ids, --prompt-len, --gen-len, "
                    "--runs, --warmup) exclude each other");
    if (!a.system.empty() && !chat) usage_error("--system is for --chat");
    a.mode = text ? Mode::Text : chat ? Mode::Chat : soak ? Mode::Soak : Mode::Bench;
    return a;
}

}  // namespace edgebit_runner
