/* edgebit engine: the on-device text generator behind every native front end (the edgebit-runner CLI, the
 * profiler, the Android app's JNI bridge, tests). Loads an edgebit artifact directory (ONNX or ExecuTorch .pte
 * with its manifest.json and tokenizer.json), tokenizes in C++, prefills, samples and decodes with the KV cache,
 * streams UTF-8 text, and keeps timing and memory figures. No Python anywhere.
 *
 * Threading: one engine is used by one thread at a time, except edgebit_engine_cancel(), which any thread may
 * call while a generation runs. Several engines in one process may generate at once, each on its own thread
 * (tests/engine/test_engine_threads.py runs four under ThreadSanitizer, with cancels and close/reopen). Strings returned by the engine stay valid until the next call on that engine.
 * Errors: functions return EDGEBIT_OK (0) or a negative EDGEBIT_E_* code; edgebit_engine_last_error() gives
 * the one-line message (it names the file, option or limit involved). Nothing here aborts the process. */
#ifndef EDGEBIT_ENGINE_H
#define EDGEBIT_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define EDGEBIT_ENGINE_API __declspec(dllexport)
#else
#define EDGEBIT_ENGINE_API __attribute__((visibility("default")))
#endif

#define EDGEBIT_ENGINE_ABI_VERSION 3 /* 2: edgebit_engine_config.verify; 3: .max_memory_mb */

enum edgebit_status {
    EDGEBIT_OK = 0,
    EDGEBIT_E_INVALID_ARGUMENT = -1, /* a NULL pointer, an out-of-range option, invalid UTF-8 */
    EDGEBIT_E_ARTIFACT = -2,         /* the artifact dir, manifest, model file or op library is unusable */
    EDGEBIT_E_TOKENIZER = -3,        /* tokenizer.json missing, corrupt or of a kind the engine cannot honour */
    EDGEBIT_E_CONTEXT_FULL = -4,     /* prompt (+ chat history) does not fit in the artifact's max_seq_len */
    EDGEBIT_E_RUNTIME = -5           /* ONNX Runtime / ExecuTorch failed while running */
};

/* Why the last generation ended. */
enum edgebit_stop_reason {
    EDGEBIT_STOP_NONE = 0,       /* nothing generated yet */
    EDGEBIT_STOP_EOS = 1,        /* an end-of-sequence or end-of-turn id was sampled (not streamed) */
    EDGEBIT_STOP_MAX_TOKENS = 2, /* max_new_tokens reached */
    EDGEBIT_STOP_CONTEXT = 3,    /* the KV cache is full (max_seq_len) */
    EDGEBIT_STOP_CANCELLED = 4,  /* edgebit_engine_cancel() or the callback returned non-zero */
    EDGEBIT_STOP_ERROR = 5
};

/* How edgebit_engine_open checks the artifact's files against manifest.json (docs/engine.md). Whatever the mode,
 * the manifest's format and weight-layout version, the presence of every listed file and the op library's ELF
 * header (machine, class, truncation) are checked. */
enum edgebit_verify {
    EDGEBIT_VERIFY_CACHED = 0, /* sha256 of every listed file, skipping files unchanged (same device, inode, size,
                                  mtime, ctime) since a successful check recorded in the stamp cache (default) */
    EDGEBIT_VERIFY_FULL = 1,   /* sha256 of every listed file at every open */
    EDGEBIT_VERIFY_OFF = 2     /* no hashing */
};

typedef struct edgebit_engine edgebit_engine;

typedef struct {
    int32_t threads;            /* intra-op threads; 0 = the runtime's default */
    const char* op_library;     /* NULL = the one next to libedgebit_engine.so (a bundle's lib/, built for this
                                   device) if there, else the artifact's own (manifest "op_library") */
    const char* profile_prefix; /* NULL = off; else ONNX Runtime's profile JSON prefix or PREFIX.etdump */
    int32_t verify;             /* enum edgebit_verify; default EDGEBIT_VERIFY_CACHED */
    int64_t max_memory_mb;      /* 0 = no limit; else edgebit_engine_open refuses (NULL, one line naming the
                                   figure it would need) an artifact whose estimated peak memory (weights,
                                   the runtime's repacked copies, KV cache at max_seq_len, largest activation,
                                   runtime allowance; docs/performance.md) is above this many MB (10^6 bytes) */
} edgebit_engine_config;

typedef struct {
    int32_t max_new_tokens;   /* default 64 (as `edgebit run`) */
    float temperature;        /* 0 = greedy (default) */
    int32_t top_k;            /* 0 = off */
    float top_p;              /* 1 = off */
    float repetition_penalty; /* 1 = off; >1 divides positive / multiplies negative logits of seen ids */
    uint64_t seed;            /* the sampler's RNG seed (same seed, same tokens) */
    int32_t ignore_eos;       /* non-zero: do not stop at EOS / end-of-turn ids (benchmarks: fixed lengths) */
} edgebit_sampling;

typedef struct {
    double load_ms;               /* edgebit_engine_open */
    double ttft_ms;               /* last generation: prompt submitted -> first token sampled */
    double prefill_tokens_per_s;  /* prompt tokens / prefill time */
    double decode_tokens_per_s;   /* tokens after the first / their time (0 when only one) */
    int64_t prompt_tokens;        /* tokens prefilled by the last call (a chat turn: just that turn's) */
    int64_t generated_tokens;     /* tokens sampled by the last call, including a final EOS */
    int64_t context_tokens;       /* tokens in the KV cache now */
    int64_t max_seq_len;          /* the artifact's context */
    int64_t rss_after_load_bytes; /* VmRSS after open (0 where /proc is missing) */
    int64_t peak_rss_bytes;       /* VmHWM now */
    int32_t stop_reason;          /* enum edgebit_stop_reason */
} edgebit_stats;

/* Called once per sampled token, in order, with the text it completes. `text` holds whole UTF-8 characters only
 * (a character split across tokens is held back until complete), may be empty (a token that completes nothing
 * yet, or a special token), and is not NUL-terminated. A stop id (EOS, end of turn) is not passed. When the
 * generation ends with bytes still held back, one last call with token_id -1 passes them (U+FFFD for an
 * incomplete character). Return non-zero to stop the generation (stop_reason CANCELLED). */
typedef int (*edgebit_token_callback)(const char* text, size_t text_len, int32_t token_id, void* user);

EDGEBIT_ENGINE_API int32_t edgebit_engine_abi_version(void);
EDGEBIT_ENGINE_API void edgebit_engine_config_init(edgebit_engine_config* cfg);
EDGEBIT_ENGINE_API void edgebit_sampling_init(edgebit_sampling* s);

/* Opens an artifact dir. On failure returns NULL and writes the message (NUL-terminated, truncated to fit)
 * into error[0..error_size) when error is not NULL. cfg may be NULL (defaults). */
EDGEBIT_ENGINE_API edgebit_engine* edgebit_engine_open(const char* artifact_dir, const edgebit_engine_config* cfg,
                                                       char* error, size_t error_size);
EDGEBIT_ENGINE_API void edgebit_engine_close(edgebit_engine* e);
EDGEBIT_ENGINE_API const char* edgebit_engine_last_error(const edgebit_engine* e);

/* One JSON object: runtime, runtime_version, kernel_variant, target, model_file, op_library, vocab_size,
 * max_seq_len, bos_token_id, eos_token_ids, has_tokenizer, has_chat_template, cpu_features, cpu_model, arch,
 * online_cpus, artifact_bytes, verify ({mode, files, hashed, hashed_bytes, ms, sha256}: the open's file check). */
EDGEBIT_ENGINE_API const char* edgebit_engine_info_json(edgebit_engine* e);

/* Plain completion: clears the KV cache, encodes prompt_utf8 as the tokenizer's post-processor does (e.g. a
 * BOS in front), prefills it and samples up to max_new_tokens, streaming through cb (may be NULL).
 * s may be NULL (greedy, 64 tokens). Generates at most max_seq_len - prompt tokens (as `edgebit run`). */
EDGEBIT_ENGINE_API int edgebit_engine_generate(edgebit_engine* e, const char* prompt_utf8, const edgebit_sampling* s,
                                               edgebit_token_callback cb, void* user);
/* The same from token ids (benchmarks and profiling: no tokenizer involved). */
EDGEBIT_ENGINE_API int edgebit_engine_generate_ids(edgebit_engine* e, const int32_t* prompt_ids, size_t n_prompt,
                                                   const edgebit_sampling* s, edgebit_token_callback cb, void* user);

/* Chat: the artifact's chat template (rendered at export into per-role prefix/suffix strings in the manifest).
 * chat_reset clears the history and KV cache and sets an optional system prompt (NULL or "" = none);
 * chat_send appends a user turn and the assistant's reply, keeping the KV cache between turns. When the turn
 * does not fit in the context it returns EDGEBIT_E_CONTEXT_FULL and changes nothing. An artifact without a
 * chat template fails with EDGEBIT_E_ARTIFACT. */
EDGEBIT_ENGINE_API int edgebit_engine_chat_reset(edgebit_engine* e, const char* system_prompt_utf8);
EDGEBIT_ENGINE_API int edgebit_engine_chat_send(edgebit_engine* e, const char* user_message_utf8,
                                                const edgebit_sampling* s, edgebit_token_callback cb, void* user);

/* Thread-safe: the running generation stops after the token being computed (stop_reason CANCELLED). A call
 * with nothing running is forgotten when the next generation starts. */
EDGEBIT_ENGINE_API void edgebit_engine_cancel(edgebit_engine* e);

EDGEBIT_ENGINE_API int edgebit_engine_stats(const edgebit_engine* e, edgebit_stats* out);
/* Ids of the last generation's prompt / sampled tokens, and per-token decode latencies in ms (one fewer than
 * sampled tokens). Each returns the full count and copies min(count, cap) entries (out may be NULL). */
EDGEBIT_ENGINE_API size_t edgebit_engine_last_prompt_ids(const edgebit_engine* e, int32_t* out, size_t cap);
EDGEBIT_ENGINE_API size_t edgebit_engine_last_generated_ids(const edgebit_engine* e, int32_t* out, size_t cap);
EDGEBIT_ENGINE_API size_t edgebit_engine_last_token_latencies_ms(const edgebit_engine* e, double* out, size_t cap);

/* Where the process's memory is now, from /proc/self/smaps, as one JSON object (bytes): rss, weights_mapped
 * (resident pages of the artifact's weight files, mapped: the page cache's), weights_mapped_size (their mapped
 * size), other_file (libraries), anonymous (heap, arenas, prepacked copies, activations, the KV cache),
 * kv_cache (the KV cache's share of anonymous, by the model's shape at the tokens now cached; a .pte: its whole
 * planned cache), peak_rss (VmHWM), weights_file (bytes of the weight files), released (bytes of weight mappings
 * whose resident pages the engine dropped after the runtime's load), available (false without /proc: all 0),
 * need (the open's estimate, as for max_memory_mb: weights, repacked, kv_cache, activations, runtime, total). */
EDGEBIT_ENGINE_API const char* edgebit_engine_memory_json(edgebit_engine* e);

/* Writes the runtime's per-op profile (config.profile_prefix) and returns its path, "" when profiling is off. */
EDGEBIT_ENGINE_API const char* edgebit_engine_end_profiling(edgebit_engine* e);

/* ---- The tokenizer alone (also inside every engine): tokenizer.json, byte-level BPE. ---- */
typedef struct edgebit_tokenizer edgebit_tokenizer;
EDGEBIT_ENGINE_API edgebit_tokenizer* edgebit_tokenizer_open(const char* tokenizer_json_path, char* error,
                                                             size_t error_size);
EDGEBIT_ENGINE_API void edgebit_tokenizer_close(edgebit_tokenizer* t);
/* Encodes text[0..len) (UTF-8; invalid UTF-8 is EDGEBIT_E_INVALID_ARGUMENT). add_special: apply the
 * post-processor (BOS). Returns the count (>= 0) and copies min(count, cap) ids, or a negative status. */
EDGEBIT_ENGINE_API int64_t edgebit_tokenizer_encode(edgebit_tokenizer* t, const char* text, size_t len,
                                                    int add_special, int32_t* ids, size_t cap);
/* Decodes ids to UTF-8 (special tokens skipped when skip_special). Returns the byte count and copies
 * min(count, cap) bytes (no NUL), or a negative status. */
EDGEBIT_ENGINE_API int64_t edgebit_tokenizer_decode(edgebit_tokenizer* t, const int32_t* ids, size_t n,
                                                    int skip_special, char* out, size_t cap);
EDGEBIT_ENGINE_API const char* edgebit_tokenizer_last_error(const edgebit_tokenizer* t);

#ifdef __cplusplus
}
#endif
#endif /* EDGEBIT_ENGINE_H */
