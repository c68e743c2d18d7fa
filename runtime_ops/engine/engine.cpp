// The engine half of the C API (edgebit_engine.h): artifact -> tokenizer -> prefill -> sample/decode -> stats.
// Every front end (edgebit-runner, the profiler through it, the Android JNI bridge, tests) goes through here.
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "api_util.h"
#include "artifact_check.h"
#include "decoder.h"
#include "edgebit_engine.h"
#include "elf_check.h"
#include "json.h"
#include "kernel_info.h"
#include "manifest.h"
#include "memory.h"
#include "sampler.h"
#include "sha256.h"
#include "sysinfo.h"
#include "tokenizer.h"
#include "unicode.h"
#include "utf8.h"

using namespace edgebit::engine;

namespace {

std::string mb_text(int64_t bytes) {
    char b[32];
    std::snprintf(b, sizeof b, "%.0f MB", bytes / 1e6);
    return b;
}

// A failure with the status the C API returns for it.
struct Failure : std::runtime_error {
    int status;
    Failure(int s, const std::string& msg) : std::runtime_error(msg), status(s) {}
};

std::string trim_spaces(const std::string& s) {
    size_t a = 0, b = s.size();
    uint32_t cp;
    while (a < b) {
        const size_t len = decode_utf8(reinterpret_cast<const unsigned char*>(s.data()) + a, b - a, &cp);
        if (!len || !is_space(cp)) break;
        a += len;
    }
    while (b > a) {
        size_t k = b - 1;
        while (k > a && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
        const size_t len = decode_utf8(reinterpret_cast<const unsigned char*>(s.data()) + k, b - k, &cp);
        if (!len || !is_space(cp)) break;
        b = k;
    }
    return s.substr(a, b - a);
}

// The directory libedgebit_engine.so was loaded from (a bundle's lib/), "" if unknown.
std::string engine_dir() {
    Dl_info info;
    if (!dladdr(reinterpret_cast<void*>(&edgebit_engine_abi_version), &info) || !info.dli_fname) return "";
    const std::string path = info.dli_fname;
    const size_t slash = path.rfind('/');
    return slash == std::string::npos ? "" : path.substr(0, slash);
}

std::string checked_text(const char* text, const char* what) {
    if (!text) throw Failure(EDGEBIT_E_INVALID_ARGUMENT, std::string(what) + " is NULL");
    const size_t n = std::strlen(text);
    const size_t bad = first_invalid_utf8(text, n);
    if (bad != n)
        throw Failure(EDGEBIT_E_INVALID_ARGUMENT, std::string(what) + " is not valid UTF-8 (byte " + std::to_string(bad) + ")");
    return std::string(text, n);
}

}  // namespace

struct edgebit_engine {
    std::string dir;
    Manifest m;
    std::unique_ptr<Decoder> dec;
    std::unique_ptr<Tokenizer> tok;  // null when the artifact has no tokenizer.json (ids only)
    std::string tokenizer_error;     // why tok is null
    std::string op_library;
    std::vector<std::string> weight_files;
    MemoryNeed need;
    VerifyReport verified;
    double load_ms = 0;
    int64_t rss_after_load = 0;
    std::atomic<bool> cancel{false};
    std::string error, info, profile_path, memory;
    // The last generation.
    std::vector<int32_t> prompt_ids, generated_ids;
    std::vector<double> token_ms;
    double ttft_ms = 0, prefill_tps = 0, decode_tps = 0;
    int32_t stop_reason = EDGEBIT_STOP_NONE;
    // Chat.
    bool chat_started = false;
    std::string system_prompt;

    const Tokenizer& tokenizer() const {
        if (!tok) throw Failure(EDGEBIT_E_TOKENIZER, tokenizer_error);
        return *tok;
    }

    // Prefill prompt (after the tokens already in the cache unless fresh) and sample; see edgebit_engine.h.
    void run(const std::vector<int32_t>& prompt, bool fresh, const edgebit_sampling& s,
             const std::vector<int64_t>& stop_ids, edgebit_token_callback cb, void* user) {
        if (const char* bad = check_sampling(s); *bad) throw Failure(EDGEBIT_E_INVALID_ARGUMENT, bad);
        if (prompt.empty()) throw Failure(EDGEBIT_E_INVALID_ARGUMENT, "the prompt is empty (no tokens)");
        for (int32_t id : prompt)
            if (id < 0 || id >= m.vocab_size)
                throw Failure(EDGEBIT_E_INVALID_ARGUMENT, "prompt token id " + std::to_string(id) +
                              " is outside the vocabulary (0.." + std::to_string(m.vocab_size - 1) + ")");
        const int64_t used = fresh ? 0 : dec->length();
        const int64_t room = m.max_seq_len - used - static_cast<int64_t>(prompt.size());
        if (room < 1)
            throw Failure(EDGEBIT_E_CONTEXT_FULL,
                          "context full: " + std::to_string(used) + " tokens in the cache + " +
                          std::to_string(prompt.size()) + " new leave no room in the artifact's max_seq_len " +
                          std::to_string(m.max_seq_len));
        const int64_t limit = std::min<int64_t>(s.max_new_tokens, room);
        cancel.store(false);
        if (fresh) dec->reset();
        prompt_ids = prompt;
        generated_ids.clear();
        token_ms.clear();
        ttft_ms = prefill_tps = decode_tps = 0;
        stop_reason = EDGEBIT_STOP_ERROR;

        Sampler sampler(s);
        for (int32_t id : prompt) sampler.note(id);
        std::unique_ptr<TextStreamer> stream(tok ? new TextStreamer(*tok) : nullptr);
        const double t0 = now_ms();
        const float* logits = nullptr;
        const size_t chunk = static_cast<size_t>(kPrefillChunk);  // memory.h: bounds the largest activation
        for (size_t i = 0; i < prompt.size(); i += chunk)
            logits = forward(std::vector<int64_t>(prompt.begin() + i, prompt.begin() + std::min(prompt.size(), i + chunk)));
        double decode_total = 0;
        for (;;) {
            const int32_t id = sampler.pick(logits, dec->vocab_size());
            const double t_pick = now_ms();
            if (generated_ids.empty()) {
                ttft_ms = t_pick - t0;
                prefill_tps = prompt.size() / (ttft_ms / 1000.0);
            }
            generated_ids.push_back(id);
            sampler.note(id);
            if (!s.ignore_eos && std::find(stop_ids.begin(), stop_ids.end(), id) != stop_ids.end()) {
                stop_reason = EDGEBIT_STOP_EOS;
                break;
            }
            if (cb) {
                const std::string piece = stream ? stream->push(id) : std::string();
                if (cb(piece.data(), piece.size(), id, user) != 0) cancel.store(true);
            }
            if (cancel.load()) { stop_reason = EDGEBIT_STOP_CANCELLED; break; }
            if (static_cast<int64_t>(generated_ids.size()) >= limit) {
                stop_reason = limit < s.max_new_tokens ? EDGEBIT_STOP_CONTEXT : EDGEBIT_STOP_MAX_TOKENS;
                break;
            }
            const double t = now_ms();
            logits = forward({id});
            token_ms.push_back(now_ms() - t);
            decode_total += token_ms.back();
        }
        if (decode_total > 0) decode_tps = token_ms.size() / (decode_total / 1000.0);
        if (cb && stream) {
            const std::string rest = stream->flush();
            if (!rest.empty()) cb(rest.data(), rest.size(), -1, user);
        }
    }

    const float* forward(const std::vector<int64_t>& ids) {
        try {
            const float* logits = dec->forward(ids);
            if (dec->vocab_size() != m.vocab_size)
                throw std::runtime_error("the model gives " + std::to_string(dec->vocab_size()) +
                                         " logits; manifest.json says vocab_size " + std::to_string(m.vocab_size));
            return logits;
        } catch (const Failure&) {
            throw;
        } catch (const std::exception& e) {
            chat_started = false;  // the cache no longer holds the conversation
            throw Failure(EDGEBIT_E_RUNTIME, e.what());
        }
    }

    std::vector<int64_t> chat_stop_ids() const {
        std::vector<int64_t> ids = m.eos_token_ids;
        ids.insert(ids.end(), m.chat.stop_token_ids.begin(), m.chat.stop_token_ids.end());
        return ids;
    }
};

namespace {

// Runs f, turning exceptions into a status and the engine's last error.
template <class F>
int guarded(edgebit_engine* e, F f) {
    if (!e) return EDGEBIT_E_INVALID_ARGUMENT;
    try {
        e->error.clear();
        f();
        return EDGEBIT_OK;
    } catch (const Failure& x) {
        e->error = x.what();
        return x.status;
    } catch (const std::bad_alloc&) {
        e->error = "out of memory";
        return EDGEBIT_E_RUNTIME;
    } catch (const std::exception& x) {
        e->error = x.what();
        return EDGEBIT_E_RUNTIME;
    }
}

std::string verify_json(const VerifyReport& v) {
    char ms[32];
    std::snprintf(ms, sizeof ms, "%.1f", v.ms);
    const char* mode = v.mode == Verify::Full ? "full" : v.mode == Verify::Off ? "off" : "cached";
    return std::string("{\"mode\": \"") + mode + "\", \"files\": " + std::to_string(v.files) +
           ", \"hashed\": " + std::to_string(v.hashed) + ", \"hashed_bytes\": " + std::to_string(v.hashed_bytes) +
           ", \"ms\": " + ms + ", \"sha256\": " + json_quote(sha256_implementation()) + "}";
}

edgebit_sampling sampling_or_default(const edgebit_sampling* s) {
    edgebit_sampling d;
    edgebit_sampling_init(&d);
    return s ? *s : d;
}

}  // namespace

extern "C" {

int32_t edgebit_engine_abi_version(void) { return EDGEBIT_ENGINE_ABI_VERSION; }

void edgebit_engine_config_init(edgebit_engine_config* cfg) {
    if (!cfg) return;
    cfg->threads = 0;
    cfg->op_library = nullptr;
    cfg->profile_prefix = nullptr;
    cfg->verify = EDGEBIT_VERIFY_CACHED;
    cfg->max_memory_mb = 0;
}

void edgebit_sampling_init(edgebit_sampling* s) {
    if (!s) return;
    s->max_new_tokens = 64;
    s->temperature = 0.0f;
    s->top_k = 0;
    s->top_p = 1.0f;
    s->repetition_penalty = 1.0f;
    s->seed = 0;
    s->ignore_eos = 0;
}

edgebit_engine* edgebit_engine_open(const char* artifact_dir, const edgebit_engine_config* cfg, char* error,
                                    size_t error_size) {
    std::unique_ptr<edgebit_engine> e;
    try {
        if (!artifact_dir || !*artifact_dir) throw std::runtime_error("no artifact directory given");
        edgebit_engine_config c;
        edgebit_engine_config_init(&c);
        if (cfg) c = *cfg;
        if (c.threads < 0 || c.threads > 1024) throw std::runtime_error("threads must be in [0, 1024] (0 = default)");
        if (c.verify < EDGEBIT_VERIFY_CACHED || c.verify > EDGEBIT_VERIFY_OFF)
            throw std::runtime_error("verify must be EDGEBIT_VERIFY_CACHED, _FULL or _OFF (0, 1, 2), got " +
                                     std::to_string(c.verify));
        if (c.max_memory_mb < 0) throw std::runtime_error("max_memory_mb must be >= 0 (0 = no limit)");
        e.reset(new edgebit_engine);
        e->dir = artifact_dir;
        const double t0 = now_ms();
        e->m = read_manifest(e->dir);
        // Before any runtime sees a file: every file manifest.json lists, present and (unless off) as exported.
        e->verified = check_artifact_files(e->dir, e->m, c.verify == EDGEBIT_VERIFY_FULL ? Verify::Full
                                                         : c.verify == EDGEBIT_VERIFY_OFF ? Verify::Off
                                                                                           : Verify::Cached);
        e->weight_files = weight_files(e->dir, e->m);
        e->need = memory_need(e->dir, e->m);
        if (c.max_memory_mb > 0 && e->need.total() > c.max_memory_mb * 1000000) {
            const MemoryNeed& n = e->need;
            throw std::runtime_error(
                e->dir + ": needs about " + mb_text(n.total()) + " (weights " + mb_text(n.weights) + ", repacked " +
                mb_text(n.repacked) + ", KV cache " + mb_text(n.kv_cache) + " at max_seq_len " +
                std::to_string(e->m.max_seq_len) + ", activations " + mb_text(n.activations) + ", runtime " +
                mb_text(n.runtime) + "), over the memory limit of " + std::to_string(c.max_memory_mb) +
                " MB: raise the limit, or re-export with a shorter --max-seq-len" +
                (e->m.head == "fp32" ? " or --head int8" : ""));
        }
        DecoderConfig dc;
        dc.artifact_dir = e->dir;
        dc.weight_files = e->weight_files;
        dc.threads = c.threads;
        if (c.profile_prefix) dc.profile_prefix = c.profile_prefix;
        if (c.op_library) dc.op_library = c.op_library;
        else if (!e->m.op_library.empty()) {
            // The op library built with this engine for this device (a bundle's lib/) wins over the artifact's
            // copy, which was built where the artifact was exported (another architecture, on a device).
            const std::string own = engine_dir() + "/" + e->m.op_library;
            dc.op_library = !engine_dir().empty() && is_file(own) ? own : e->dir + "/" + e->m.op_library;
        }
        e->op_library = dc.op_library;
        // Whichever op library is loaded (the bundle's, the artifact's, --op-library), its ELF header first: a
        // foreign or truncated file is named with the reason instead of dlopen's "wrong ELF class" or a SIGBUS.
        if (!dc.op_library.empty() && is_file(dc.op_library)) check_loadable(dc.op_library, "op library");
        const std::string tok_path = e->dir + "/tokenizer.json";
        if (is_file(tok_path)) {
            e->tok = Tokenizer::load(tok_path);
            if (e->tok->size() > static_cast<size_t>(e->m.vocab_size))
                throw std::runtime_error(tok_path + ": " + std::to_string(e->tok->size()) +
                                         " tokens, more than the model's vocab_size " + std::to_string(e->m.vocab_size));
        } else {
            e->tokenizer_error = tok_path + ": missing (text prompts need the artifact's tokenizer.json)";
        }
        e->dec = open_decoder(dc, e->m);
        e->load_ms = now_ms() - t0;
        e->rss_after_load = std::max<int64_t>(0, proc_status_bytes("VmRSS"));
        return e.release();
    } catch (const std::exception& x) {
        copy_error(x.what(), error, error_size);
        return nullptr;
    }
}

void edgebit_engine_close(edgebit_engine* e) { delete e; }

const char* edgebit_engine_last_error(const edgebit_engine* e) { return e ? e->error.c_str() : "no engine"; }

const char* edgebit_engine_info_json(edgebit_engine* e) {
    if (!e) return "{}";
    auto ids = [](const std::vector<int64_t>& v) {
        std::string o = "[";
        for (size_t i = 0; i < v.size(); ++i) o += (i ? ", " : "") + std::to_string(v[i]);
        return o + "]";
    };
    e->info = "{\"runtime\": " + json_quote(e->dec->runtime_name()) +
              ", \"runtime_version\": " + json_quote(e->dec->runtime_version()) +
              ", \"kernel_variant\": " + json_quote(kernel_variant()) +
              ", \"target\": " + json_quote(e->m.target) + ", \"model_file\": " + json_quote(e->m.model_file) +
              ", \"op_library\": " + json_quote(e->op_library) +
              ", \"vocab_size\": " + std::to_string(e->m.vocab_size) +
              ", \"max_seq_len\": " + std::to_string(e->m.max_seq_len) +
              ", \"bos_token_id\": " + std::to_string(e->tok ? e->tok->bos_id() : -1) +
              ", \"eos_token_ids\": " + ids(e->m.eos_token_ids) +
              ", \"has_tokenizer\": " + (e->tok ? "true" : "false") +
              ", \"has_chat_template\": " + (e->m.chat.present ? "true" : "false") +
              ", \"cpu_features\": " + cpu_features_json() + ", \"cpu_model\": " + json_quote(cpu_model()) +
              ", \"arch\": " + json_quote(machine_arch()) + ", \"online_cpus\": " + std::to_string(online_cpus()) +
              ", \"artifact_bytes\": " + std::to_string(dir_bytes(e->dir)) + ", \"verify\": " + verify_json(e->verified) + "}";
    return e->info.c_str();
}

int edgebit_engine_generate(edgebit_engine* e, const char* prompt, const edgebit_sampling* s,
                            edgebit_token_callback cb, void* user) {
    return guarded(e, [&] {
        const std::string text = checked_text(prompt, "the prompt");
        std::vector<int32_t> ids = e->tokenizer().encode(text, true);
        e->chat_started = false;
        e->run(ids, true, sampling_or_default(s), e->m.eos_token_ids, cb, user);
    });
}

int edgebit_engine_generate_ids(edgebit_engine* e, const int32_t* prompt_ids, size_t n, const edgebit_sampling* s,
                                edgebit_token_callback cb, void* user) {
    return guarded(e, [&] {
        if (!prompt_ids && n) throw Failure(EDGEBIT_E_INVALID_ARGUMENT, "prompt_ids is NULL");
        e->chat_started = false;
        e->run(std::vector<int32_t>(prompt_ids, prompt_ids + n), true, sampling_or_default(s), e->m.eos_token_ids,
               cb, user);
    });
}

int edgebit_engine_chat_reset(edgebit_engine* e, const char* system_prompt) {
    return guarded(e, [&] {
        if (!e->m.chat.present)
            throw Failure(EDGEBIT_E_ARTIFACT, e->dir + ": no chat template (the checkpoint's tokenizer_config.json "
                          "has no chat_template); use plain prompts");
        std::string sys = system_prompt ? checked_text(system_prompt, "the system prompt") : std::string();
        if (!sys.empty() && !e->m.chat.has_system)
            throw Failure(EDGEBIT_E_INVALID_ARGUMENT, e->dir + ": this model's chat template has no system role");
        e->system_prompt = sys;
        e->chat_started = false;
        e->dec->reset();
    });
}

int edgebit_engine_chat_send(edgebit_engine* e, const char* message, const edgebit_sampling* s,
                             edgebit_token_callback cb, void* user) {
    return guarded(e, [&] {
        const ChatPieces& c = e->m.chat;
        if (!c.present)
            throw Failure(EDGEBIT_E_ARTIFACT, e->dir + ": no chat template (the checkpoint's tokenizer_config.json "
                          "has no chat_template); use plain prompts");
        std::string msg = checked_text(message, "the message");
        auto content = [&](const std::string& x) { return c.trim_content ? trim_spaces(x) : x; };
        std::string text;
        if (!e->chat_started)
            text = e->system_prompt.empty() ? c.prefix
                                            : c.system_prefix + content(e->system_prompt) + c.system_to_user;
        else
            text = c.assistant_to_user;
        text += content(msg) + c.user_to_assistant;
        const std::vector<int32_t> ids = e->tokenizer().encode(text, false);
        const bool fresh = !e->chat_started;
        e->run(ids, fresh, sampling_or_default(s), e->chat_stop_ids(), cb, user);
        e->chat_started = true;
    });
}

void edgebit_engine_cancel(edgebit_engine* e) {
    if (e) e->cancel.store(true);
}

int edgebit_engine_stats(const edgebit_engine* e, edgebit_stats* out) {
    if (!e || !out) return EDGEBIT_E_INVALID_ARGUMENT;
    out->load_ms = e->load_ms;
    out->ttft_ms = e->ttft_ms;
    out->prefill_tokens_per_s = e->prefill_tps;
    out->decode_tokens_per_s = e->decode_tps;
    out->prompt_tokens = static_cast<int64_t>(e->prompt_ids.size());
    out->generated_tokens = static_cast<int64_t>(e->generated_ids.size());
    out->context_tokens = e->dec->length();
    out->max_seq_len = e->m.max_seq_len;
    out->rss_after_load_bytes = e->rss_after_load;
    out->peak_rss_bytes = std::max<int64_t>(0, proc_status_bytes("VmHWM"));
    out->stop_reason = e->stop_reason;
    return EDGEBIT_OK;
}

size_t edgebit_engine_last_prompt_ids(const edgebit_engine* e, int32_t* out, size_t cap) {
    if (!e) return 0;
    if (out) std::copy_n(e->prompt_ids.begin(), std::min(cap, e->prompt_ids.size()), out);
    return e->prompt_ids.size();
}

size_t edgebit_engine_last_generated_ids(const edgebit_engine* e, int32_t* out, size_t cap) {
    if (!e) return 0;
    if (out) std::copy_n(e->generated_ids.begin(), std::min(cap, e->generated_ids.size()), out);
    return e->generated_ids.size();
}

size_t edgebit_engine_last_token_latencies_ms(const edgebit_engine* e, double* out, size_t cap) {
    if (!e) return 0;
    if (out) std::copy_n(e->token_ms.begin(), std::min(cap, e->token_ms.size()), out);
    return e->token_ms.size();
}

const char* edgebit_engine_memory_json(edgebit_engine* e) {
    if (!e) return "{}";
    const MemorySplit m = memory_split(e->weight_files);
    const MemoryNeed& n = e->need;
    auto num = [](int64_t v) { return std::to_string(v); };
    e->memory = std::string("{\"available\": ") + (m.available ? "true" : "false") + ", \"rss\": " + num(m.rss) +
                ", \"weights_mapped\": " + num(m.weights_mapped) +
                ", \"weights_mapped_size\": " + num(m.weights_mapped_size) +
                ", \"weights_huge\": " + num(m.weights_huge) + ", \"other_file\": " + num(m.other_file) +
                ", \"anonymous\": " + num(m.anonymous) + ", \"kv_cache\": " + num(e->dec->kv_cache_bytes()) +
                ", \"peak_rss\": " + num(std::max<int64_t>(0, proc_status_bytes("VmHWM"))) +
                ", \"weights_file\": " + num(files_bytes(e->weight_files)) +
                ", \"released\": " + num(e->dec->released_bytes()) + ", \"need\": {\"weights\": " + num(n.weights) +
                ", \"repacked\": " + num(n.repacked) + ", \"kv_cache\": " + num(n.kv_cache) +
                ", \"activations\": " + num(n.activations) + ", \"runtime\": " + num(n.runtime) +
                ", \"total\": " + num(n.total()) + "}}";
    return e->memory.c_str();
}

const char* edgebit_engine_end_profiling(edgebit_engine* e) {
    if (!e) return "";
    try {
        e->profile_path = e->dec->end_profiling();
    } catch (const std::exception& x) {
        e->error = x.what();
        e->profile_path.clear();
    }
    return e->profile_path.c_str();
}

}  // extern "C"
