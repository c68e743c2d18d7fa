// tokenizer.json in C++: byte-level BPE (GPT-2 / Llama 3 / GPT-NeoX style) with added and special tokens (matched
// before or after normalization, as each asks), the NFC normalizer, the pre-tokenizers those families use, the
// TemplateProcessing post-processor and the ByteLevel decoder. Ids equal
// `tokenizers`' ids; anything the file asks for that this reader cannot honour is an error at load, never
// silently different ids.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "pretokenize.h"

namespace edgebit::engine {

class Tokenizer {
  public:
    // Throws std::runtime_error("<path>: ...") for a missing, corrupt or unsupported file.
    static std::unique_ptr<Tokenizer> load(const std::string& path);

    // Throws std::invalid_argument for invalid UTF-8.
    std::vector<int32_t> encode(const std::string& text, bool add_special) const;
    std::string decode(const std::vector<int32_t>& ids, bool skip_special) const;

    // The bytes an id decodes to (ByteLevel decoder rule), and whether it is a special added token.
    const std::string& token_bytes(int32_t id) const;
    bool is_special(int32_t id) const;
    bool valid_id(int32_t id) const { return id >= 0 && static_cast<size_t>(id) < bytes_.size(); }
    int32_t id_of(const std::string& content) const;  // an added token's or vocab token's id, -1 if none
    int32_t bos_id() const { return bos_id_; }          // the post-processor's leading special token, -1 if none
    size_t size() const { return bytes_.size(); }

  private:
    struct Added {
        int32_t id;
        std::string content;
        bool lstrip, rstrip;
    };
    struct AddedSet {
        std::vector<Added> tokens;                   // sorted longest first, for leftmost-longest matching
        std::vector<std::vector<size_t>> by_byte;    // first byte -> indexes into tokens
    };
    struct PreStep {
        enum Kind { Split, ByteLevel } kind;
        SplitPattern pattern;
        bool add_prefix_space = false;
        bool use_regex = false;
    };
    struct Merge {
        int32_t rank, id;
    };
    void encode_segment(const std::string& seg, std::vector<int32_t>* out) const;
    template <class F>
    void split_added(const std::string& text, const AddedSet& set, std::vector<int32_t>* out, F rest) const;
    void bpe(const std::string& piece, std::vector<int32_t>* out) const;

    std::unordered_map<std::string, int32_t> vocab_;   // raw bytes -> id (byte-level tokens)
    std::unordered_map<std::string, int32_t> by_name_; // token string as written in the file -> id
    std::unordered_map<uint64_t, Merge> merges_;       // (left id << 32 | right id)
    std::vector<std::string> bytes_;                   // id -> bytes it decodes to
    std::vector<uint8_t> special_;
    AddedSet added_raw_, added_norm_;                  // matched in the text as given / after normalization
    std::vector<PreStep> pre_;
    std::vector<int32_t> prefix_ids_, suffix_ids_;     // TemplateProcessing "single" around $A
    int32_t byte_id_[256];
    int32_t bos_id_ = -1;
    bool ignore_merges_ = false;
    bool nfc_ = false;
    mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

// Streams decoded text: whole UTF-8 characters only, a character split across tokens held back until complete.
class TextStreamer {
  public:
    explicit TextStreamer(const Tokenizer& t, bool skip_special = true) : t_(t), skip_(skip_special) {}
    std::string push(int32_t id);
    std::string flush();  // what is held back, decoded lossily (U+FFFD for an incomplete character)

  private:
    const Tokenizer& t_;
    bool skip_;
    std::string pending_;
};

}  // namespace edgebit::engine
