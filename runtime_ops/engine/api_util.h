// Small helpers shared by the C API's translation units.
#pragma once
#include <algorithm>
#include <cstring>
#include <string>

namespace edgebit::engine {

// Writes msg NUL-terminated into buf[0..size), truncated to fit (nothing when buf is NULL or size is 0).
inline void copy_error(const std::string& msg, char* buf, size_t size) {
    if (!buf || !size) return;
    const size_t n = std::min(size - 1, msg.size());
    std::memcpy(buf, msg.data(), n);
    buf[n] = '\0';
}

}  // namespace edgebit::engine
