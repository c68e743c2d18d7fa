#include "text_mode.h"

#include <csignal>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "json_out.h"

namespace edgebit_runner {
namespace {

const char* stop_name(int32_t r) {
    switch (r) {
        case EDGEBIT_STOP_EOS: return "eos";
        case EDGEBIT_STOP_MAX_TOKENS: return "max_new_tokens";
        case EDGEBIT_STOP_CONTEXT: return "context_full";
        case EDGEBIT_STOP_CANCELLED: return "cancelled";
        case EDGEBIT_STOP_ERROR: return "error";
        default: return "none";
    }
}

struct Sink {
    bool print;
    std::string text;
};

int on_token(const char* text, size_t len, int32_t, void* user) {
    Sink* s = static_cast<Sink*>(user);
    s->text.append(text, len);
    if (s->print && len) {
        std::fwrite(text, 1, len, stdout);
        std::fflush(stdout);
    }
    return 0;
}

// Ctrl-C stops the reply being generated, not the program (edgebit_engine_cancel is an atomic store).
edgebit_engine* g_running = nullptr;
void on_sigint(int) {
    if (g_running) edgebit_engine_cancel(g_running);
}

std::vector<int32_t> fetch(size_t (*get)(const edgebit_engine*, int32_t*, size_t), const edgebit_engine* e) {
    std::vector<int32_t> v(get(e, nullptr, 0));
    get(e, v.data(), v.size());
    return v;
}

void print_speed(const edgebit_stats& st, const std::string& runtime, int threads) {
    const std::string t = threads == 0 ? "default threads" : threads == 1 ? "1 thread" : std::to_string(threads) + " threads";
    std::fprintf(stderr, "prefill %lld tokens: %.1f tok/s; decode %lld tokens: %.1f tok/s (%s, %s)\n",
                 static_cast<long long>(st.prompt_tokens), st.prefill_tokens_per_s,
                 static_cast<long long>(st.generated_tokens), st.decode_tokens_per_s, runtime.c_str(), t.c_str());
}

}  // namespace

int run_prompt(edgebit_engine* e, const Args& a) {
    const std::string info = edgebit_engine_info_json(e);
    Sink sink{!a.json, {}};
    g_running = e;
    std::signal(SIGINT, on_sigint);
    const int rc = edgebit_engine_generate(e, a.prompt.c_str(), &a.sampling, on_token, &sink);
    g_running = nullptr;
    if (rc != EDGEBIT_OK) throw std::runtime_error(edgebit_engine_last_error(e));
    edgebit_stats st;
    edgebit_engine_stats(e, &st);
    if (!a.json) {
        std::fputc('\n', stdout);
        print_speed(st, json_string_field(info, "runtime"), a.threads);
        return 0;
    }
    JsonObject o(info);
    o.str("artifact", a.artifact).num("threads", a.threads);
    o.ids("prompt_ids", fetch(edgebit_engine_last_prompt_ids, e));
    o.ids("generated_ids", fetch(edgebit_engine_last_generated_ids, e));
    o.str("text", sink.text).str("stop_reason", stop_name(st.stop_reason));
    o.real("load_ms", st.load_ms).real("ttft_ms", st.ttft_ms);
    o.real("prefill_tokens_per_s", st.prefill_tokens_per_s).real("decode_tokens_per_s", st.decode_tokens_per_s);
    o.num("rss_after_load_bytes", static_cast<double>(st.rss_after_load_bytes));
    o.num("peak_rss_bytes", static_cast<double>(st.peak_rss_bytes));
    o.raw("memory", edgebit_engine_memory_json(e));
    std::fputs((o.close() + "\n").c_str(), stdout);
    return 0;
}

int run_chat(edgebit_engine* e, const Args& a) {
    if (edgebit_engine_chat_reset(e, a.system.c_str()) != EDGEBIT_OK)
        throw std::runtime_error(edgebit_engine_last_error(e));
    std::signal(SIGINT, on_sigint);
    if (!a.json) std::fputs("chat: one message per line; /reset starts over, /quit ends\n", stderr);
    std::string line;
    for (;;) {
        if (!a.json) {
            std::fputs("> ", stderr);
            std::fflush(stderr);
        }
        if (!std::getline(std::cin, line) || line == "/quit") break;
        if (line.empty()) continue;
        if (line == "/reset") {
            if (edgebit_engine_chat_reset(e, a.system.c_str()) != EDGEBIT_OK)
                throw std::runtime_error(edgebit_engine_last_error(e));
            std::fputs("(conversation cleared)\n", stderr);
            continue;
        }
        Sink sink{!a.json, {}};
        g_running = e;
        const int rc = edgebit_engine_chat_send(e, line.c_str(), &a.sampling, on_token, &sink);
        g_running = nullptr;
        edgebit_stats st;
        edgebit_engine_stats(e, &st);
        if (rc == EDGEBIT_E_CONTEXT_FULL) {
            std::fprintf(stderr, "edgebit-runner: the context is full (%lld of %lld tokens used); /reset to start a "
                                 "new conversation\n", static_cast<long long>(st.context_tokens),
                         static_cast<long long>(st.max_seq_len));
            continue;
        }
        if (rc == EDGEBIT_E_INVALID_ARGUMENT) {  // e.g. a line that is not UTF-8: say so, keep chatting
            std::fprintf(stderr, "edgebit-runner: %s\n", edgebit_engine_last_error(e));
            continue;
        }
        if (rc != EDGEBIT_OK) throw std::runtime_error(edgebit_engine_last_error(e));
        if (a.json) {  // one line per turn, for programs driving the chat
            JsonObject o;
            o.ids("prompt_ids", fetch(edgebit_engine_last_prompt_ids, e));
            o.ids("generated_ids", fetch(edgebit_engine_last_generated_ids, e));
            o.str("text", sink.text).str("stop_reason", stop_name(st.stop_reason));
            o.num("context_tokens", static_cast<double>(st.context_tokens)).num("max_seq_len", static_cast<double>(st.max_seq_len));
            o.real("decode_tokens_per_s", st.decode_tokens_per_s);
            std::fputs((o.close() + "\n").c_str(), stdout);
            std::fflush(stdout);
            continue;
        }
        std::fputc('\n', stdout);
        std::fflush(stdout);
        if (st.stop_reason == EDGEBIT_STOP_CONTEXT)
            std::fputs("(reply cut short: the context is full; /reset to start over)\n", stderr);
        std::fprintf(stderr, "[%lld tokens, %.1f tok/s; context %lld/%lld]\n",
                     static_cast<long long>(st.generated_tokens), st.decode_tokens_per_s,
                     static_cast<long long>(st.context_tokens), static_cast<long long>(st.max_seq_len));
    }
    return 0;
}

}  // namespace edgebit_runner
