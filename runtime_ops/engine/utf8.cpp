#include "utf8.h"

namespace edgebit::engine {

void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

size_t decode_utf8(const unsigned char* s, size_t n, uint32_t* cp, bool* truncated) {
    if (truncated) *truncated = false;
    if (n == 0) return 0;
    const unsigned char b0 = s[0];
    if (b0 < 0x80) { *cp = b0; return 1; }
    size_t len;
    uint32_t v;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte (Unicode Table 3-7)
    if (b0 >= 0xC2 && b0 <= 0xDF) { len = 2; v = b0 & 0x1F; }
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3; v = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4; v = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        return 0;
    }
    for (size_t k = 1; k < len; ++k) {
        if (k >= n) {
            if (truncated) *truncated = true;
            return 0;
        }
        const unsigned char b = s[k];
        const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (b < l || b > h) return 0;
        v = (v << 6) | (b & 0x3F);
    }
    *cp = v;
    return len;
}

size_t first_invalid_utf8(const char* s, size_t n) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(s);
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) { ++i; continue; }
        uint32_t cp;
        const size_t len = decode_utf8(p + i, n - i, &cp);
        if (!len) return i;
        i += len;
    }
    return n;
}

// The maximal subpart at s: the longest prefix that could begin a valid sequence (at least 1 byte).
static size_t maximal_subpart(const unsigned char* s, size_t n) {
    const unsigned char b0 = s[0];
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) len = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) { len = 3; if (b0 == 0xE0) lo = 0xA0; if (b0 == 0xED) hi = 0x9F; }
    else if (b0 >= 0xF0 && b0 <= 0xF4) { len = 4; if (b0 == 0xF0) lo = 0x90; if (b0 == 0xF4) hi = 0x8F; }
    else return 1;
    size_t k = 1;
    for (; k < len && k < n; ++k) {
        const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (s[k] < l || s[k] > h) break;
    }
    return k;
}

size_t append_utf8_lossy(std::string& out, const char* s, size_t n, bool hold_tail) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(s);
    size_t i = 0;
    while (i < n) {
        if (p[i] < 0x80) { out += s[i++]; continue; }
        uint32_t cp;
        bool truncated = false;
        const size_t len = decode_utf8(p + i, n - i, &cp, &truncated);
        if (len) {
            out.append(s + i, len);
            i += len;
        } else if (truncated && hold_tail) {
            return n - i;
        } else {
            out += "\xEF\xBF\xBD";
            i += maximal_subpart(p + i, n - i);
        }
    }
    return 0;
}

}  // namespace edgebit::engine
