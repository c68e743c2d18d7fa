// Building the runner's JSON output on top of the engine's own description (edgebit_engine_info_json).
#pragma once
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "json.h"

namespace edgebit_runner {

inline std::string real_text(double x) {
    if (!std::isfinite(x)) return "null";
    char b[32];
    std::snprintf(b, sizeof b, "%.4f", x);
    return b;
}

inline int64_t json_int_field(const std::string& obj, const char* key) {
    return static_cast<int64_t>(edgebit::engine::json_field(edgebit::engine::parse_json(obj), key, "engine info").number);
}

inline std::string json_string_field(const std::string& obj, const char* key) {
    return edgebit::engine::json_string(edgebit::engine::parse_json(obj), key, "engine info");
}

// Appends "key": value pairs to a JSON object given as text ("{...}").
class JsonObject {
  public:
    explicit JsonObject(const std::string& start = "{}") : o_(start.substr(0, start.rfind('}'))) {
        first_ = o_.find_first_not_of(" \n{") == std::string::npos;
    }
    JsonObject& raw(const char* key, const std::string& value) {
        o_ += (first_ ? "" : ", ") + edgebit::engine::json_quote(key) + ": " + value;
        first_ = false;
        return *this;
    }
    JsonObject& str(const char* key, const std::string& v) { return raw(key, edgebit::engine::json_quote(v)); }
    JsonObject& opt_str(const char* key, const std::string& v) { return raw(key, v.empty() ? "null" : edgebit::engine::json_quote(v)); }
    JsonObject& num(const char* key, double v) { return raw(key, std::to_string(static_cast<long long>(v))); }
    JsonObject& real(const char* key, double v) { return raw(key, real_text(v)); }
    template <class T>
    JsonObject& ids(const char* key, const std::vector<T>& v) {
        std::string s = "[";
        for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
        return raw(key, s + "]");
    }
    JsonObject& reals(const char* key, const std::vector<double>& v) {
        std::string s = "[";
        for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + real_text(v[i]);
        return raw(key, s + "]");
    }
    std::string close() const { return o_ + "}"; }

  private:
    std::string o_;
    bool first_ = true;
};

}  // namespace edgebit_runner
