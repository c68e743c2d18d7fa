#include "tokenizer.h"

#include <algorithm>
#include <queue>
#include <stdexcept>

#include "json.h"
#include "normalize.h"
#include "unicode.h"
#include "utf8.h"

namespace edgebit::engine {
namespace {

// GPT-2's bytes_to_unicode: printable bytes stand for themselves, the other 68 for U+0100.. in byte order.
struct ByteMap {
    uint32_t to_cp[256];
    std::unordered_map<uint32_t, uint8_t> to_byte;
    ByteMap() {
        uint32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
            to_cp[b] = printable ? static_cast<uint32_t>(b) : next++;
            to_byte[to_cp[b]] = static_cast<uint8_t>(b);
        }
    }
};
const ByteMap& byte_map() {
    static const ByteMap m;
    return m;
}

// The ByteLevel decoder's rule for one token string: its characters as bytes when every one is a byte
// character, else the string's own UTF-8.
bool to_raw_bytes(const std::string& token, std::string* out) {
    const ByteMap& m = byte_map();
    out->clear();
    const unsigned char* s = reinterpret_cast<const unsigned char*>(token.data());
    for (size_t i = 0; i < token.size();) {
        uint32_t cp;
        const size_t len = decode_utf8(s + i, token.size() - i, &cp);
        auto it = len ? m.to_byte.find(cp) : m.to_byte.end();
        if (it == m.to_byte.end()) return false;
        out->push_back(static_cast<char>(it->second));
        i += len;
    }
    return true;
}

std::string decoded_bytes(const std::string& token) {
    std::string raw;
    return to_raw_bytes(token, &raw) ? raw : token;
}

bool flag(const Json& obj, const char* key, bool dflt = false) {
    const Json* v = obj.find(key);
    return v && v->kind == Json::Bool ? v->boolean : dflt;
}

std::string type_of(const Json& obj) {
    const Json* t = obj.find("type");
    return t && t->kind == Json::String ? t->str : std::string("?");
}

// Unicode White_Space, as Rust's char::is_whitespace (lstrip/rstrip of added tokens).
size_t strip_left(const std::string& s, size_t start, size_t floor) {
    while (start > floor) {
        size_t k = start - 1;
        while (k > floor && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
        uint32_t cp;
        if (!decode_utf8(reinterpret_cast<const unsigned char*>(s.data()) + k, start - k, &cp) || !is_space(cp)) break;
        start = k;
    }
    return start;
}

size_t strip_right(const std::string& s, size_t end) {
    while (end < s.size()) {
        uint32_t cp;
        const size_t len = decode_utf8(reinterpret_cast<const unsigned char*>(s.data()) + end, s.size() - end, &cp);
        if (!len || !is_space(cp)) break;
        end += len;
    }
    return end;
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path) {
    std::unique_ptr<Tokenizer> t(new Tokenizer);
    Json root;
    try {
        root = parse_json(read_file(path));
    } catch (const std::exception& e) {
        const std::string what = e.what();
        throw std::runtime_error(what.rfind(path, 0) == 0 ? what : path + ": " + what);
    }
    auto fail = [&](const std::string& what) -> void { throw std::runtime_error(path + ": " + what); };
    if (root.kind != Json::Object) fail("not a tokenizer.json object");

    const Json& model = json_field(root, "model", path);
    if (type_of(model) != "BPE") fail("model type '" + type_of(model) + "' is not supported (byte-level BPE only)");
    for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        const Json* v = model.find(key);
        if (v && !v->is_null() && !(v->kind == Json::String && v->str.empty()))
            fail(std::string("model.") + key + " is not supported");
    }
    if (flag(model, "byte_fallback")) fail("model.byte_fallback is not supported");
    const Json* dropout = model.find("dropout");
    if (dropout && !dropout->is_null() && dropout->number != 0) fail("model.dropout is not supported");
    t->ignore_merges_ = flag(model, "ignore_merges");

    const Json& vocab = json_field(model, "vocab", path + " model");
    if (vocab.kind != Json::Object || vocab.fields.empty()) fail("model.vocab must be a non-empty object");
    size_t n = 0;
    for (const auto& kv : vocab.fields) {
        if (kv.second.kind != Json::Number || kv.second.number < 0 || kv.second.number > 16777216 ||
            kv.second.number != static_cast<int32_t>(kv.second.number))
            fail("model.vocab['" + kv.first + "'] is not a valid id");
        n = std::max(n, static_cast<size_t>(kv.second.number) + 1);
    }
    const Json* added = root.find("added_tokens");
    if (added && added->kind == Json::Array)
        for (const Json& a : added->items)
            n = std::max(n, static_cast<size_t>(json_int(a, "id", path + " added_tokens", 0, 16777216)) + 1);
    t->bytes_.assign(n, std::string());
    t->special_.assign(n, 0);
    std::vector<uint8_t> seen(n, 0);
    std::string raw;
    for (const auto& kv : vocab.fields) {
        const int32_t id = static_cast<int32_t>(kv.second.number);
        if (seen[id]) fail("model.vocab has id " + std::to_string(id) + " twice");
        seen[id] = 1;
        t->by_name_[kv.first] = id;
        t->bytes_[id] = decoded_bytes(kv.first);
        if (to_raw_bytes(kv.first, &raw)) t->vocab_.emplace(raw, id);
    }
    for (int b = 0; b < 256; ++b) {
        auto it = t->vocab_.find(std::string(1, static_cast<char>(b)));
        t->byte_id_[b] = it == t->vocab_.end() ? -1 : it->second;
    }

    const Json& merges = json_field(model, "merges", path + " model");
    if (merges.kind != Json::Array) fail("model.merges must be a list");
    int32_t rank = 0;
    for (const Json& m : merges.items) {
        std::string a, b;
        if (m.kind == Json::String) {
            const size_t sp = m.str.find(' ');
            if (sp == std::string::npos || m.str.find(' ', sp + 1) != std::string::npos)
                fail("model.merges[" + std::to_string(rank) + "] is not 'a b'");
            a = m.str.substr(0, sp);
            b = m.str.substr(sp + 1);
        } else if (m.kind == Json::Array && m.items.size() == 2 && m.items[0].kind == Json::String &&
                   m.items[1].kind == Json::String) {
            a = m.items[0].str;
            b = m.items[1].str;
        } else {
            fail("model.merges[" + std::to_string(rank) + "] is neither 'a b' nor [a, b]");
        }
        auto ia = t->by_name_.find(a), ib = t->by_name_.find(b), ic = t->by_name_.find(a + b);
        if (ia == t->by_name_.end() || ib == t->by_name_.end() || ic == t->by_name_.end())
            fail("model.merges[" + std::to_string(rank) + "] ('" + a + "', '" + b + "') uses a token outside the vocab");
        const uint64_t key = (static_cast<uint64_t>(ia->second) << 32) | static_cast<uint32_t>(ib->second);
        t->merges_.emplace(key, Merge{rank, ic->second});
        ++rank;
    }

    // Normalizer: none, or NFC (GPT-NeoX's and OLMo's tokenizer.json), alone or as a one-step Sequence.
    const Json* norm = root.find("normalizer");
    if (norm && type_of(*norm) == "Sequence") {
        const Json& list = json_field(*norm, "normalizers", path + " normalizer");
        if (list.items.size() > 1) fail("normalizer Sequence of " + std::to_string(list.items.size()) +
                                        " steps is not supported (NFC alone)");
        norm = list.items.empty() ? nullptr : &list.items[0];
    }
    if (norm && !norm->is_null()) {
        if (type_of(*norm) != "NFC") fail("normalizer '" + type_of(*norm) + "' is not supported (NFC only)");
        t->nfc_ = true;
    }

    // Pre-tokenizer: ByteLevel, Split (GPT-2 / Llama 3 pattern, Isolated), or a Sequence of those.
    const Json* pre = root.find("pre_tokenizer");
    std::vector<const Json*> steps;
    if (pre && type_of(*pre) == "Sequence") {
        const Json& list = json_field(*pre, "pretokenizers", path + " pre_tokenizer");
        for (const Json& s : list.items) steps.push_back(&s);
    } else if (pre && !pre->is_null()) {
        steps.push_back(pre);
    }
    bool byte_level = false;
    for (const Json* s : steps) {
        const std::string kind = type_of(*s);
        PreStep step{};
        if (kind == "ByteLevel") {
            step.kind = PreStep::ByteLevel;
            step.add_prefix_space = flag(*s, "add_prefix_space", true);
            step.use_regex = flag(*s, "use_regex", true);
            step.pattern = SplitPattern::Gpt2;
            byte_level = true;
        } else if (kind == "Split") {
            step.kind = PreStep::Split;
            const Json& pat = json_field(*s, "pattern", path + " pre_tokenizer Split");
            const Json* re = pat.find("Regex");
            if (!re || re->kind != Json::String || !recognise_split_pattern(re->str, &step.pattern))
                fail("pre_tokenizer Split pattern is not one the engine knows (GPT-2's or Llama 3's regex)");
            const Json* behavior = s->find("behavior");
            if (!behavior || behavior->str != "Isolated" || flag(*s, "invert"))
                fail("pre_tokenizer Split must be behavior Isolated, invert false");
        } else {
            fail("pre_tokenizer '" + kind + "' is not supported (ByteLevel, Split or a Sequence of them)");
        }
        t->pre_.push_back(step);
    }
    if (!byte_level) fail("no ByteLevel pre_tokenizer: only byte-level BPE tokenizers are supported");
    for (int b = 0; b < 256; ++b)
        if (t->byte_id_[b] < 0) fail("byte " + std::to_string(b) + " has no token in model.vocab");

    const Json* dec = root.find("decoder");
    if (!dec || type_of(*dec) != "ByteLevel") fail("decoder must be ByteLevel");

    if (added && added->kind == Json::Array) {
        for (const Json& a : added->items) {
            const std::string where = path + " added_tokens";
            const int32_t id = static_cast<int32_t>(json_int(a, "id", where, 0, 16777216));
            const std::string content = json_string(a, "content", where);
            if (content.empty()) fail("added token " + std::to_string(id) + " has empty content");
            if (flag(a, "single_word")) fail("added token '" + content + "': single_word is not supported");
            // `tokenizers` matches "normalized" tokens in the normalized text, the others in the text as given
            // (AddedToken's default: normalized unless special).
            const bool special = flag(a, "special");
            (flag(a, "normalized", !special) ? t->added_norm_ : t->added_raw_)
                .tokens.push_back(Added{id, content, flag(a, "lstrip"), flag(a, "rstrip")});
            t->special_[id] = special;
            t->bytes_[id] = decoded_bytes(content);
            t->by_name_[content] = id;
        }
    }
    for (AddedSet* set : {&t->added_raw_, &t->added_norm_}) {
        std::stable_sort(set->tokens.begin(), set->tokens.end(),
                         [](const Added& x, const Added& y) { return x.content.size() > y.content.size(); });
        set->by_byte.assign(256, {});
        for (size_t i = 0; i < set->tokens.size(); ++i)
            set->by_byte[static_cast<unsigned char>(set->tokens[i].content[0])].push_back(i);
    }

    // Post-processor: TemplateProcessing (its "single" template), ByteLevel (nothing for ids), or a Sequence.
    const Json* post = root.find("post_processor");
    std::vector<const Json*> posts;
    if (post && type_of(*post) == "Sequence") {
        for (const Json& p : json_field(*post, "processors", path + " post_processor").items) posts.push_back(&p);
    } else if (post && !post->is_null()) {
        posts.push_back(post);
    }
    for (const Json* p : posts) {
        const std::string kind = type_of(*p);
        if (kind == "ByteLevel") continue;
        if (kind != "TemplateProcessing") fail("post_processor '" + kind + "' is not supported");
        const Json& single = json_field(*p, "single", path + " post_processor");
        const Json& specials = json_field(*p, "special_tokens", path + " post_processor");
        bool after = false;
        for (const Json& piece : single.items) {
            if (piece.find("Sequence")) {
                if (json_string(*piece.find("Sequence"), "id", path + " post_processor") != "A")
                    fail("post_processor single template uses a sequence other than $A");
                after = true;
            } else if (const Json* sp = piece.find("SpecialToken")) {
                const std::string name = json_string(*sp, "id", path + " post_processor");
                const Json& entry = json_field(specials, name, path + " post_processor special_tokens");
                for (const Json& v : json_field(entry, "ids", path + " post_processor special_tokens").items) {
                    const int32_t id = static_cast<int32_t>(v.number);
                    if (!t->valid_id(id)) fail("post_processor special token '" + name + "' id out of range");
                    (after ? t->suffix_ids_ : t->prefix_ids_).push_back(id);
                }
            } else {
                fail("post_processor single template has an unknown piece");
            }
        }
    }
    if (!t->prefix_ids_.empty()) t->bos_id_ = t->prefix_ids_[0];
    return t;
}

const std::string& Tokenizer::token_bytes(int32_t id) const { return bytes_.at(static_cast<size_t>(id)); }
bool Tokenizer::is_special(int32_t id) const { return valid_id(id) && special_[id]; }

int32_t Tokenizer::id_of(const std::string& content) const {
    auto it = by_name_.find(content);
    return it == by_name_.end() ? -1 : it->second;
}

template <class F>
void Tokenizer::split_added(const std::string& text, const AddedSet& set, std::vector<int32_t>* out, F rest) const {
    // Added tokens leftmost, then longest, with their lstrip/rstrip; the text between goes to `rest`.
    size_t seg_start = 0, i = 0;
    while (i < text.size() && !set.tokens.empty()) {
        const Added* hit = nullptr;
        for (size_t k : set.by_byte[static_cast<unsigned char>(text[i])]) {
            const Added& a = set.tokens[k];
            if (text.compare(i, a.content.size(), a.content) == 0) { hit = &a; break; }
        }
        if (!hit) { ++i; continue; }
        size_t start = i, end = i + hit->content.size();
        if (hit->lstrip) start = strip_left(text, start, seg_start);
        if (hit->rstrip) end = strip_right(text, end);
        if (start > seg_start) rest(text.substr(seg_start, start - seg_start));
        out->push_back(hit->id);
        seg_start = i = end;
    }
    if (seg_start < text.size()) rest(seg_start == 0 ? text : text.substr(seg_start));
}

std::vector<int32_t> Tokenizer::encode(const std::string& text, bool add_special) const {
    const size_t bad = first_invalid_utf8(text.data(), text.size());
    if (bad != text.size())
        throw std::invalid_argument("text is not valid UTF-8 (byte " + std::to_string(bad) + ")");
    std::vector<int32_t> out;
    if (add_special) out = prefix_ids_;
    // As `tokenizers` (AddedVocabulary::extract_and_normalize): the added tokens that are not "normalized" are
    // split off the text as given; each piece between them is normalized, then split at the "normalized" added
    // tokens; the rest goes through the pre-tokenizers and BPE.
    split_added(text, added_raw_, &out, [&](const std::string& piece) {
        split_added(nfc_ ? nfc(piece) : piece, added_norm_, &out,
                    [&](const std::string& rest) { encode_segment(rest, &out); });
    });
    if (add_special) out.insert(out.end(), suffix_ids_.begin(), suffix_ids_.end());
    return out;
}

void Tokenizer::encode_segment(const std::string& seg, std::vector<int32_t>* out) const {
    std::vector<std::string> pieces{seg}, next;
    std::vector<size_t> lens;
    for (const PreStep& step : pre_) {
        next.clear();
        for (std::string& p : pieces) {
            if (step.kind == PreStep::ByteLevel && step.add_prefix_space && (p.empty() || p[0] != ' ')) p.insert(0, 1, ' ');
            if (step.kind == PreStep::ByteLevel && !step.use_regex) { next.push_back(std::move(p)); continue; }
            lens.clear();
            split_pieces(step.pattern, p, &lens);
            size_t off = 0;
            for (size_t len : lens) { next.push_back(p.substr(off, len)); off += len; }
        }
        pieces.swap(next);
    }
    for (const std::string& p : pieces)
        if (!p.empty()) bpe(p, out);
}

void Tokenizer::bpe(const std::string& piece, std::vector<int32_t>* out) const {
    if (ignore_merges_) {
        auto it = vocab_.find(piece);
        if (it != vocab_.end()) { out->push_back(it->second); return; }
    }
    auto cached = cache_.find(piece);
    if (cached != cache_.end()) {
        out->insert(out->end(), cached->second.begin(), cached->second.end());
        return;
    }
    // Symbols in a linked list; a heap of candidate merges ordered by (rank, position), stale entries skipped:
    // the lowest-ranked pair merges first, the leftmost among equals, as `tokenizers` does.
    const size_t n = piece.size();
    std::vector<int32_t> id(n);
    std::vector<int> prev(n), next(n);
    std::vector<uint8_t> alive(n, 1);
    for (size_t i = 0; i < n; ++i) {
        id[i] = byte_id_[static_cast<unsigned char>(piece[i])];
        prev[i] = static_cast<int>(i) - 1;
        next[i] = i + 1 < n ? static_cast<int>(i + 1) : -1;
    }
    struct Cand {
        int32_t rank;
        int pos;
        int32_t left, right;
        bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
    auto consider = [&](int a) {
        if (a < 0 || next[a] < 0) return;
        auto it = merges_.find((static_cast<uint64_t>(id[a]) << 32) | static_cast<uint32_t>(id[next[a]]));
        if (it != merges_.end()) heap.push(Cand{it->second.rank, a, id[a], id[next[a]]});
    };
    for (size_t i = 0; i + 1 < n; ++i) consider(static_cast<int>(i));
    while (!heap.empty()) {
        const Cand c = heap.top();
        heap.pop();
        const int a = c.pos, b = next[a];
        if (!alive[a] || b < 0 || id[a] != c.left || id[b] != c.right) continue;  // stale
        id[a] = merges_.find((static_cast<uint64_t>(c.left) << 32) | static_cast<uint32_t>(c.right))->second.id;
        alive[b] = 0;
        next[a] = next[b];
        if (next[b] >= 0) prev[next[b]] = a;
        consider(prev[a]);
        consider(a);
    }
    std::vector<int32_t> ids;
    for (int i = 0; i >= 0; i = next[i]) ids.push_back(id[i]);
    if (cache_.size() > (1u << 16)) cache_.clear();
    out->insert(out->end(), ids.begin(), ids.end());
    cache_.emplace(piece, std::move(ids));
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
    std::string bytes, out;
    for (int32_t id : ids) {
        if (!valid_id(id)) throw std::invalid_argument("token id " + std::to_string(id) + " is outside the vocabulary");
        if (skip_special && special_[id]) continue;
        bytes += bytes_[id];
    }
    append_utf8_lossy(out, bytes.data(), bytes.size(), false);
    return out;
}

std::string TextStreamer::push(int32_t id) {
    if (!t_.valid_id(id) || (skip_ && t_.is_special(id))) return std::string();
    pending_ += t_.token_bytes(id);
    std::string out;
    const size_t held = append_utf8_lossy(out, pending_.data(), pending_.size(), true);
    pending_.erase(0, pending_.size() - held);
    return out;
}

std::string TextStreamer::flush() {
    std::string out;
    append_utf8_lossy(out, pending_.data(), pending_.size(), false);
    pending_.clear();
    return out;
}

}  // namespace edgebit::engine
