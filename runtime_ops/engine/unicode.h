// The Unicode classes of the pre-tokenizers' split patterns: \p{L}, \p{N} and \s (White_Space).
#pragma once
#include <cstdint>

namespace edgebit::engine {

bool is_letter(uint32_t cp);
bool is_number(uint32_t cp);
bool is_space(uint32_t cp);

}  // namespace edgebit::engine
