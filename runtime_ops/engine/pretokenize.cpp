#include "pretokenize.h"

#include "unicode.h"
#include "utf8.h"

namespace edgebit::engine {
namespace {

const char* const kGpt2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const char* const kLlama3 =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

struct Text {
    std::vector<uint32_t> cp;
    std::vector<size_t> off;  // byte offset of each code point, plus the end
    size_t n() const { return cp.size(); }
    bool L(size_t i) const { return i < n() && is_letter(cp[i]); }
    bool N(size_t i) const { return i < n() && is_number(cp[i]); }
    bool S(size_t i) const { return i < n() && is_space(cp[i]); }
    bool other(size_t i) const { return i < n() && !is_space(cp[i]) && !is_letter(cp[i]) && !is_number(cp[i]); }
    bool newline(size_t i) const { return i < n() && (cp[i] == '\r' || cp[i] == '\n'); }
    template <class F>
    size_t run(size_t i, F in) const {
        while (i < n() && in(i)) ++i;
        return i;
    }
};

// Oniguruma's (?i) for the contraction letters: ASCII case, plus U+017F (long s) which case-folds to 's'.
bool ci(uint32_t c, char lower) {
    if (c == static_cast<uint32_t>(lower) || c == static_cast<uint32_t>(lower - 32)) return true;
    return lower == 's' && c == 0x17F;
}

size_t contraction(const Text& t, size_t i, bool fold) {
    if (t.cp[i] != '\'' || i + 1 >= t.n()) return 0;
    auto is = [&](size_t k, char c) { return k < t.n() && (fold ? ci(t.cp[k], c) : t.cp[k] == static_cast<uint32_t>(c)); };
    const size_t j = i + 1;
    if (is(j, 's') || is(j, 't')) return 2;
    if ((is(j, 'r') && is(j + 1, 'e')) || (is(j, 'v') && is(j + 1, 'e'))) return 3;
    if (is(j, 'm')) return 2;
    if (is(j, 'l') && is(j + 1, 'l')) return 3;
    if (is(j, 'd')) return 2;
    return 0;
}

// \s+(?!\S) then \s+ : a whitespace run, leaving its last space to the next piece when a non-space follows.
size_t spaces(const Text& t, size_t i) {
    const size_t j = t.run(i, [&](size_t k) { return t.S(k); });
    if (j == t.n() || j - 1 > i) return (j == t.n() ? j : j - 1) - i;
    return j - i;
}

size_t gpt2_piece(const Text& t, size_t i) {
    if (size_t c = contraction(t, i, false)) return c;
    const bool sp = t.cp[i] == ' ';
    auto prefixed = [&](auto cls) -> size_t {
        if (sp && cls(i + 1)) return t.run(i + 1, cls) - i;
        if (cls(i)) return t.run(i, cls) - i;
        return 0;
    };
    if (size_t c = prefixed([&](size_t k) { return t.L(k); })) return c;
    if (size_t c = prefixed([&](size_t k) { return t.N(k); })) return c;
    if (size_t c = prefixed([&](size_t k) { return t.other(k); })) return c;
    return spaces(t, i);
}

size_t llama3_piece(const Text& t, size_t i) {
    if (size_t c = contraction(t, i, true)) return c;
    auto letters = [&](size_t k) { return t.L(k); };
    if (t.L(i)) return t.run(i, letters) - i;
    if (!t.newline(i) && !t.N(i) && t.L(i + 1)) return t.run(i + 1, letters) - i;
    if (t.N(i)) {
        size_t j = i;
        while (j < t.n() && j - i < 3 && t.N(j)) ++j;
        return j - i;
    }
    auto others_then_newlines = [&](size_t k) {
        k = t.run(k, [&](size_t q) { return t.other(q); });
        return t.run(k, [&](size_t q) { return t.newline(q); }) - i;
    };
    if (t.cp[i] == ' ' && t.other(i + 1)) return others_then_newlines(i + 1);
    if (t.other(i)) return others_then_newlines(i);
    // \s*[\r\n]+ : through the last line break of the whitespace run.
    const size_t j = t.run(i, [&](size_t k) { return t.S(k); });
    for (size_t k = j; k > i; --k)
        if (t.newline(k - 1)) return k - i;
    return spaces(t, i);
}

}  // namespace

bool recognise_split_pattern(const std::string& regex, SplitPattern* out) {
    if (regex == kGpt2) { *out = SplitPattern::Gpt2; return true; }
    if (regex == kLlama3) { *out = SplitPattern::Llama3; return true; }
    return false;
}

void split_pieces(SplitPattern p, const std::string& text, std::vector<size_t>* piece_lengths) {
    Text t;
    const unsigned char* s = reinterpret_cast<const unsigned char*>(text.data());
    for (size_t i = 0; i < text.size();) {
        uint32_t cp = 0xFFFD;
        size_t len = decode_utf8(s + i, text.size() - i, &cp);
        if (!len) len = 1;  // callers validate; never loop forever on bad input
        t.cp.push_back(cp);
        t.off.push_back(i);
        i += len;
    }
    t.off.push_back(text.size());
    for (size_t i = 0; i < t.n();) {
        size_t c = p == SplitPattern::Gpt2 ? gpt2_piece(t, i) : llama3_piece(t, i);
        if (c == 0) c = 1;
        piece_lengths->push_back(t.off[i + c] - t.off[i]);
        i += c;
    }
}

}  // namespace edgebit::engine
