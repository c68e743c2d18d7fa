#include "normalize.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "utf8.h"

namespace edgebit::engine {
namespace {

struct CombiningClass {
    uint32_t lo, hi;
    uint8_t ccc;
};
struct Decomposition {
    uint32_t cp;
    uint16_t offset, length;  // into kDecompositionPool
};
struct Composition {
    uint32_t first, second, composite;
};

#include "nfc_tables.inc"

// Hangul syllables (Unicode chapter 3.12): LV and LVT syllables decompose and compose by arithmetic.
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

uint8_t ccc(uint32_t cp) {
    if (cp < 0x300) return 0;
    const auto* end = std::end(kCombiningClass);
    const auto* r = std::upper_bound(std::begin(kCombiningClass), end, cp,
                                     [](uint32_t c, const CombiningClass& x) { return c < x.lo; });
    return r != std::begin(kCombiningClass) && cp <= (r - 1)->hi ? (r - 1)->ccc : 0;
}

void decompose(uint32_t cp, std::vector<uint32_t>* out) {
    if (cp >= kSBase && cp < kSBase + kSCount) {
        const uint32_t s = cp - kSBase;
        out->push_back(kLBase + s / kNCount);
        out->push_back(kVBase + (s % kNCount) / kTCount);
        if (s % kTCount) out->push_back(kTBase + s % kTCount);
        return;
    }
    if (cp >= 0xC0) {
        const auto* end = std::end(kDecomposition);
        const auto* d = std::lower_bound(std::begin(kDecomposition), end, cp,
                                         [](const Decomposition& x, uint32_t c) { return x.cp < c; });
        if (d != end && d->cp == cp) {
            out->insert(out->end(), kDecompositionPool + d->offset, kDecompositionPool + d->offset + d->length);
            return;
        }
    }
    out->push_back(cp);
}

// The primary composite of (a, b), or 0.
uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
        return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
    if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
        return a + (b - kTBase);
    const auto* end = std::end(kComposition);
    const auto* c = std::lower_bound(std::begin(kComposition), end, std::make_pair(a, b),
                                     [](const Composition& x, const std::pair<uint32_t, uint32_t>& k) {
                                         return x.first != k.first ? x.first < k.first : x.second < k.second;
                                     });
    return c != end && c->first == a && c->second == b ? c->composite : 0;
}

}  // namespace

std::string nfc(const std::string& text) {
    const unsigned char* s = reinterpret_cast<const unsigned char*>(text.data());
    if (std::all_of(s, s + text.size(), [](unsigned char c) { return c < 0x80; })) return text;

    std::vector<uint32_t> cps;
    cps.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
        uint32_t cp = 0xFFFD;
        size_t len = decode_utf8(s + i, text.size() - i, &cp);
        if (!len) len = 1;  // callers validate; never loop forever
        decompose(cp, &cps);
        i += len;
    }
    // Canonical ordering: each run of combining marks (class != 0) stably sorted by class.
    for (size_t i = 1; i < cps.size(); ++i) {
        const uint8_t c = ccc(cps[i]);
        if (c == 0) continue;
        for (size_t j = i; j > 0 && ccc(cps[j - 1]) > c; --j) std::swap(cps[j - 1], cps[j]);
    }
    // Canonical composition: a mark joins the last starter unless a character between them blocks it (class 0, or
    // a class >= its own); a starter joins only the starter right before it.
    std::vector<uint32_t> out;
    out.reserve(cps.size());
    long starter = -1;
    int last = -1;  // class of the last character kept after the starter; -1: none (adjacent)
    for (uint32_t cp : cps) {
        const int c = ccc(cp);
        if (starter >= 0 && last < c) {
            if (const uint32_t composite = compose(out[starter], cp)) {
                out[starter] = composite;
                continue;
            }
        }
        if (c == 0) {
            starter = static_cast<long>(out.size());
            last = -1;
        } else {
            last = c;
        }
        out.push_back(cp);
    }
    std::string result;
    result.reserve(text.size());
    for (uint32_t cp : out) append_utf8(result, cp);
    return result;
}

}  // namespace edgebit::engine
