// UTF-8 as the tokenizer and the text stream need it: strict decoding, validation, and the lossy decoding
// (one U+FFFD per maximal invalid subpart) that Rust's String::from_utf8_lossy, and so `tokenizers`, applies.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace edgebit::engine {

void append_utf8(std::string& out, uint32_t cp);

// Length of the valid UTF-8 sequence at s[0..n) (1..4), or 0 when it is invalid or cut short; *cp gets the
// code point. *truncated is set when the bytes so far are a valid prefix that n cuts off.
size_t decode_utf8(const unsigned char* s, size_t n, uint32_t* cp, bool* truncated = nullptr);

// Offset of the first byte that does not start a complete valid sequence, or n if all of s is valid.
size_t first_invalid_utf8(const char* s, size_t n);

// Appends bytes to out as from_utf8_lossy would. With hold_tail, a valid but incomplete sequence at the end is
// not decoded; its length is returned (the caller keeps those bytes for later). Otherwise returns 0.
size_t append_utf8_lossy(std::string& out, const char* s, size_t n, bool hold_tail);

}  // namespace edgebit::engine
