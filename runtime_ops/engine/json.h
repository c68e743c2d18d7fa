// A complete, strict JSON reader (RFC 8259: \u escapes with surrogate pairs, nesting limit) for manifest.json
// and tokenizer.json. Errors are std::runtime_error with the byte offset; callers prefix the file name.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace edgebit::engine {

struct Json {
    enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
    bool boolean = false;
    double number = 0;
    std::string str;                                     // UTF-8
    std::vector<Json> items;                             // Array
    std::vector<std::pair<std::string, Json>> fields;    // Object, in file order (tokenizer vocab order matters)

    const Json* find(const std::string& key) const;      // nullptr if absent or not an object
    bool is_null() const { return kind == Null; }
};

Json parse_json(const std::string& text);
std::string read_file(const std::string& path);  // throws "<path>: cannot read"

// Typed access with messages of the form "<where>: '<key>' ..." for manifest-like files.
const Json& json_field(const Json& obj, const std::string& key, const std::string& where);
int64_t json_int(const Json& obj, const std::string& key, const std::string& where, int64_t lo, int64_t hi);
std::string json_string(const Json& obj, const std::string& key, const std::string& where);

// JSON text for a UTF-8 string (quotes included), for the engine's JSON outputs.
std::string json_quote(const std::string& s);

}  // namespace edgebit::engine
