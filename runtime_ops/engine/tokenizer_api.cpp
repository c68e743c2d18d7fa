// The tokenizer half of the C API (edgebit_engine.h): what tests and the Python side use to hold the C++
// tokenizer to `tokenizers`, and what front ends use without an engine.
#include <cstring>
#include <stdexcept>

#include "api_util.h"
#include "edgebit_engine.h"
#include "tokenizer.h"

struct edgebit_tokenizer {
    std::unique_ptr<edgebit::engine::Tokenizer> tok;
    std::string error;
};

using edgebit::engine::copy_error;

namespace {

// Runs f (which returns a count), turning exceptions into a status and the tokenizer's last error.
template <class F>
int64_t guarded(edgebit_tokenizer* t, F f) {
    try {
        return f();
    } catch (const std::invalid_argument& e) {
        t->error = e.what();
        return EDGEBIT_E_INVALID_ARGUMENT;
    } catch (const std::exception& e) {
        t->error = e.what();
        return EDGEBIT_E_TOKENIZER;
    }
}

}  // namespace

extern "C" {

edgebit_tokenizer* edgebit_tokenizer_open(const char* path, char* error, size_t error_size) {
    if (!path) {
        copy_error("tokenizer path is NULL", error, error_size);
        return nullptr;
    }
    try {
        auto* t = new edgebit_tokenizer;
        try {
            t->tok = edgebit::engine::Tokenizer::load(path);
        } catch (...) {
            delete t;
            throw;
        }
        return t;
    } catch (const std::exception& e) {
        copy_error(e.what(), error, error_size);
        return nullptr;
    }
}

void edgebit_tokenizer_close(edgebit_tokenizer* t) { delete t; }

const char* edgebit_tokenizer_last_error(const edgebit_tokenizer* t) { return t ? t->error.c_str() : "no tokenizer"; }

int64_t edgebit_tokenizer_encode(edgebit_tokenizer* t, const char* text, size_t len, int add_special, int32_t* ids,
                                 size_t cap) {
    if (!t || (!text && len)) return EDGEBIT_E_INVALID_ARGUMENT;
    return guarded(t, [&] {
        const std::vector<int32_t> out = t->tok->encode(std::string(text ? text : "", len), add_special != 0);
        if (ids) std::memcpy(ids, out.data(), std::min(cap, out.size()) * sizeof(int32_t));
        return static_cast<int64_t>(out.size());
    });
}

int64_t edgebit_tokenizer_decode(edgebit_tokenizer* t, const int32_t* ids, size_t n, int skip_special, char* out,
                                 size_t cap) {
    if (!t || (!ids && n)) return EDGEBIT_E_INVALID_ARGUMENT;
    return guarded(t, [&] {
        const std::string text = t->tok->decode(std::vector<int32_t>(ids, ids + n), skip_special != 0);
        if (out) std::memcpy(out, text.data(), std::min(cap, text.size()));
        return static_cast<int64_t>(text.size());
    });
}

}  // extern "C"
