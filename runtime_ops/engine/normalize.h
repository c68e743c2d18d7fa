// Unicode Normalization Form C (UAX #15) of UTF-8 text, for tokenizer.json's {"type": "NFC"} normalizer (GPT-NeoX's
// tokenizer, which OLMo uses; Qwen's): canonical decomposition, canonical ordering of combining marks, canonical
// composition, with the tables of scripts/gen_unicode_tables.py (nfc_tables.inc: Unicode data as `tokenizers`' own
// normalizer applies it, which lags Unicode) and Hangul done by arithmetic.
#pragma once
#include <string>

namespace edgebit::engine {

// Input must be valid UTF-8 (the tokenizer checks first). ASCII text is returned as it is.
std::string nfc(const std::string& text);

}  // namespace edgebit::engine
