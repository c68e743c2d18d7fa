// Where the engine's memory goes, from the kernel's own accounting (/proc/self/smaps): the weights mapped from the
// artifact's files, other file-backed pages (the code of the libraries), anonymous memory (heap, runtime arenas,
// prepacked copies, activations, the KV cache); and what an artifact would need before it is opened
// (--max-memory). docs/performance.md, "Memory", has the figures and what each runtime maps or copies.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "manifest.h"

namespace edgebit::engine {

// Prompts are prefilled this many tokens at a time (engine.cpp): the largest activation (the logits, [1, T, vocab]
// fp32, and the intermediates of a T-token step) is bounded by the chunk, not by the prompt.
constexpr int64_t kPrefillChunk = 128;

struct MemorySplit {
    bool available = false;        // false where /proc/self/smaps is missing (figures 0)
    int64_t rss = 0;               // every mapping's Rss
    int64_t weights_mapped = 0;    // Rss of mappings of the artifact's model files (file-backed: the page cache's)
    int64_t weights_mapped_size = 0;  // their mapped size, resident or not
    int64_t weights_huge = 0;      // of weights_mapped, the bytes on 2 MB pages ("FilePmdMapped:", weight_map.h)
    int64_t other_file = 0;        // Rss of other file-backed mappings (libraries' code and data)
    int64_t anonymous = 0;         // "Anonymous:" over all mappings (heap, arenas, stacks, private copies)
};

// The artifact files that hold weights (model file and its external data / .ptd / .data files): every file of the
// manifest that is not the op library, the tokenizer or a JSON file, as absolute real paths.
std::vector<std::string> weight_files(const std::string& artifact_dir, const Manifest& m);
int64_t files_bytes(const std::vector<std::string>& paths);

// Reads /proc/self/smaps; mappings of `weight_paths` (real paths) count as weights.
MemorySplit memory_split(const std::vector<std::string>& weight_paths);

// Drops this process's resident pages of read-only private mappings of `paths` (madvise MADV_DONTNEED): the pages
// stay in the page cache and fault back in when read. Used after a runtime's load touched a whole file (ONNX
// Runtime prepacking a weight from the mapped file) so that only what the model reads stays resident. Returns the
// bytes of mappings advised.
int64_t release_mapped_pages(const std::vector<std::string>& paths);

// The KV cache of `tokens` positions: keys and values, every layer, fp32.
int64_t kv_cache_bytes(const Manifest& m, int64_t tokens);

// What opening the artifact will need at most, as the engine's figures count it (docs/performance.md): the weight
// files (mapped, all resident once every weight has been read), the copies the runtime makes of weights it
// repacks (ONNX Runtime's MatMulNBits / Gemm head; XNNPACK's linear head), the KV cache at max_seq_len
// (ONNX: a past and a present at once), the largest activation (twice the logits of a prefill chunk) and a
// fixed allowance for the runtime's code, arenas and the engine.
struct MemoryNeed {
    int64_t weights = 0, repacked = 0, kv_cache = 0, activations = 0, runtime = 0;
    int64_t total() const { return weights + repacked + kv_cache + activations + runtime; }
};
MemoryNeed memory_need(const std::string& artifact_dir, const Manifest& m);

}  // namespace edgebit::engine
