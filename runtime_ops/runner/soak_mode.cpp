#include "soak_mode.h"

#include <atomic>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "json_out.h"
#include "sysinfo.h"

namespace edgebit_runner {
namespace {

// What a chat user types: short and long turns, so contexts fill at different depths.
const char* const kMessages[] = {
    "Tell me a short story.",
    "And then what happened?",
    "Why?",
    "Say that again in other words, please, and add one more sentence about the morning.",
    "Who was there?",
    "What did they say to each other when the evening came and the lamps were lit?",
    "Go on.",
};
constexpr int kNumMessages = sizeof(kMessages) / sizeof(kMessages[0]);

struct Cycle {  // one conversation, from an empty context until it is full
    int64_t turns = 0, cancels = 0, decode_tokens = 0, generated = 0;
    double decode_ms = 0;
};

// CPU time of this process: a conversation's CPU time does not grow when other processes share the cores, as
// its wall time does, so a slowdown judged on it is the engine's own.
double process_cpu_ms() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

struct Counter {  // the token callback's count (read by the canceller thread) and the reply's text
    std::atomic<int64_t> tokens{0};
    std::string text;
};

int count_token(const char* text, size_t len, int32_t, void* user) {
    Counter* c = static_cast<Counter*>(user);
    c->text.append(text, len);
    c->tokens.fetch_add(1, std::memory_order_relaxed);
    return 0;
}

// Turn i's sampling: every third greedy, the rest sampled as chat apps do; the same for every cycle, so every
// cycle does the same work and their speeds compare.
edgebit_sampling turn_sampling(int64_t i) {
    edgebit_sampling s;
    edgebit_sampling_init(&s);
    s.max_new_tokens = static_cast<int32_t>(16 + (i * 7) % 48);
    if (i % 3 != 0) {
        s.temperature = 0.8f;
        s.top_k = 40;
        s.top_p = 0.95f;
        s.repetition_penalty = 1.1f;
        s.seed = static_cast<uint64_t>(i);
    }
    s.ignore_eos = 1;  // a turn that ends at EOS at once would not fill the context
    return s;
}

// One turn; every fifth (from the second) is cancelled from another thread after a few tokens (a user tapping stop). Returns the
// engine's status (EDGEBIT_E_CONTEXT_FULL also when the reply filled the context); the reply's text in reply.
int turn(edgebit_engine* e, bool chat, const std::string& text, int64_t i, Cycle& c, std::string& reply) {
    const edgebit_sampling s = turn_sampling(i);
    Counter counter;
    std::atomic<bool> done{false};
    std::thread canceller;
    const bool cancel = i % 5 == 1;  // the second turn: even a small context reaches it
    if (cancel)
        canceller = std::thread([&] {
            while (!done.load() && counter.tokens.load(std::memory_order_relaxed) < 4)
                std::this_thread::sleep_for(std::chrono::microseconds(100));  // not a spin: its CPU time is counted
            if (!done.load()) edgebit_engine_cancel(e);
        });
    const int rc = chat ? edgebit_engine_chat_send(e, text.c_str(), &s, count_token, &counter)
                        : edgebit_engine_generate(e, text.c_str(), &s, count_token, &counter);
    done = true;
    if (canceller.joinable()) canceller.join();
    reply = std::move(counter.text);
    if (rc != EDGEBIT_OK) return rc;
    edgebit_stats st;
    edgebit_engine_stats(e, &st);
    c.turns++;
    c.cancels += st.stop_reason == EDGEBIT_STOP_CANCELLED;
    c.generated += st.generated_tokens;
    if (st.generated_tokens > 1 && st.decode_tokens_per_s > 0) {
        c.decode_tokens += st.generated_tokens - 1;
        c.decode_ms += 1000.0 * (st.generated_tokens - 1) / st.decode_tokens_per_s;
    }
    return st.stop_reason == EDGEBIT_STOP_CONTEXT ? EDGEBIT_E_CONTEXT_FULL : EDGEBIT_OK;
}

// A conversation until the context is full. With a chat template: chat turns on the engine's KV cache. Without
// one (a base model): each turn completes the whole conversation so far as one prompt, the way a completion app
// keeps history.
Cycle conversation(edgebit_engine* e, bool chat) {
    Cycle c;
    if (chat && edgebit_engine_chat_reset(e, "Be brief.") != EDGEBIT_OK)
        throw std::runtime_error(edgebit_engine_last_error(e));
    std::string history, reply;
    for (int64_t i = 0;; ++i) {
        const std::string msg = kMessages[i % kNumMessages];
        const std::string text = chat ? msg : history + msg + "\n";
        const int rc = turn(e, chat, text, i, c, reply);
        if (rc == EDGEBIT_E_CONTEXT_FULL && i == 0)
            throw std::runtime_error("the artifact's context (max_seq_len) cannot hold one turn of the soak: " +
                                     std::string(edgebit_engine_last_error(e)));
        if (rc == EDGEBIT_E_CONTEXT_FULL) break;
        if (rc != EDGEBIT_OK) throw std::runtime_error(edgebit_engine_last_error(e));
        if (!chat) history = text + reply + "\n";
    }
    return c;
}

}  // namespace

int run_soak(edgebit_engine* e, const Args& a) {
    const std::string info = edgebit_engine_info_json(e);
    bool chat = edgebit_engine_chat_reset(e, nullptr) == EDGEBIT_OK;
    const double t0 = edgebit::engine::now_ms();
    int64_t tokens = 0;
    for (int64_t k = 0;; ++k) {
        const double cpu0 = process_cpu_ms();
        const Cycle c = conversation(e, chat);
        const double cpu_ms = process_cpu_ms() - cpu0;
        tokens += c.generated;
        const double elapsed_s = (edgebit::engine::now_ms() - t0) / 1000.0;
        const std::string mem = edgebit_engine_memory_json(e);
        JsonObject o;
        o.num("cycle", static_cast<double>(k)).real("elapsed_s", elapsed_s).num("tokens", static_cast<double>(tokens));
        o.num("turns", static_cast<double>(c.turns)).num("cancels", static_cast<double>(c.cancels));
        o.num("generated", static_cast<double>(c.generated)).real("cpu_ms", cpu_ms);
        o.num("decode_tokens", static_cast<double>(c.decode_tokens)).real("decode_ms", c.decode_ms);
        o.num("rss_bytes", static_cast<double>(edgebit::engine::proc_status_bytes("VmRSS")));
        o.num("anonymous_bytes", static_cast<double>(json_int_field(mem, "anonymous")));
        if (k == 0) o.str("mode", chat ? "chat" : "completion").raw("engine", info);
        std::fputs((o.close() + "\n").c_str(), stdout);
        std::fflush(stdout);  // one line per conversation: the caller draws progress and judges drift from them
        if (elapsed_s >= a.soak_seconds) return 0;
    }
}

}  // namespace edgebit_runner
