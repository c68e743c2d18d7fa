#include "unicode.h"

#include <algorithm>
#include <iterator>

namespace edgebit::engine {
namespace {

struct CodeRange {
    uint32_t lo, hi;
};

#include "unicode_tables.inc"

template <size_t N>
bool in_table(const CodeRange (&t)[N], uint32_t cp) {
    const CodeRange* end = t + N;
    const CodeRange* r = std::upper_bound(t, end, cp, [](uint32_t c, const CodeRange& x) { return c < x.lo; });
    return r != t && cp <= (r - 1)->hi;
}

}  // namespace

bool is_letter(uint32_t cp) {
    if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
    return in_table(kLetter, cp);
}

bool is_number(uint32_t cp) {
    if (cp < 0x80) return cp >= '0' && cp <= '9';
    return in_table(kNumber, cp);
}

bool is_space(uint32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    return in_table(kWhiteSpace, cp);
}

}  // namespace edgebit::engine
