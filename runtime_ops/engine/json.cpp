#include "json.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "utf8.h"

namespace edgebit::engine {
namespace {

constexpr int kMaxDepth = 256;  // deeper than any real manifest/tokenizer; stops stack exhaustion

class Parser {
  public:
    explicit Parser(const std::string& s) : s_(s) {}
    Json parse() {
        Json v = value(0);
        ws();
        if (i_ != s_.size()) fail("trailing characters");
        return v;
    }

  private:
    [[noreturn]] void fail(const char* what) const {
        throw std::runtime_error(std::string("invalid JSON (") + what + " at byte " + std::to_string(i_) + ")");
    }
    void ws() {
        while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
    }
    bool eat(char c) {
        ws();
        if (i_ < s_.size() && s_[i_] == c) { ++i_; return true; }
        return false;
    }
    unsigned hex4() {
        if (i_ + 4 > s_.size()) fail("short \\u escape");
        unsigned v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = s_[i_++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= c - '0';
            else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
            else fail("bad \\u escape");
        }
        return v;
    }
    std::string string() {
        if (!eat('"')) fail("expected a string");
        std::string out;
        for (;;) {
            if (i_ >= s_.size()) fail("unterminated string");
            const unsigned char c = static_cast<unsigned char>(s_[i_]);
            if (c == '"') { ++i_; break; }
            if (c < 0x20) fail("control character in string");
            if (c != '\\') {
                // Copy a run of plain bytes at once; UTF-8 validity of the whole text is checked up front.
                size_t j = i_;
                while (j < s_.size() && s_[j] != '"' && s_[j] != '\\' && static_cast<unsigned char>(s_[j]) >= 0x20) ++j;
                out.append(s_, i_, j - i_);
                i_ = j;
                continue;
            }
            ++i_;
            if (i_ >= s_.size()) fail("bad escape");
            const char e = s_[i_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': {
                    unsigned cp = hex4();
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        if (i_ + 6 <= s_.size() && s_[i_] == '\\' && s_[i_ + 1] == 'u') {
                            i_ += 2;
                            unsigned lo = hex4();
                            if (lo < 0xDC00 || lo > 0xDFFF) fail("unpaired surrogate");
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        } else {
                            fail("unpaired surrogate");
                        }
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        fail("unpaired surrogate");
                    }
                    append_utf8(out, cp);
                    break;
                }
                default: fail("bad escape");
            }
        }
        return out;
    }
    Json value(int depth) {
        if (depth > kMaxDepth) fail("nesting too deep");
        ws();
        if (i_ >= s_.size()) fail("unexpected end");
        Json v;
        const char c = s_[i_];
        if (c == '{') {
            ++i_;
            v.kind = Json::Object;
            if (eat('}')) return v;
            do {
                ws();
                std::string k = string();
                if (!eat(':')) fail("expected ':'");
                Json item = value(depth + 1);
                v.fields.emplace_back(std::move(k), std::move(item));
            } while (eat(','));
            if (!eat('}')) fail("expected '}' or ','");
        } else if (c == '[') {
            ++i_;
            v.kind = Json::Array;
            if (eat(']')) return v;
            do { v.items.push_back(value(depth + 1)); } while (eat(','));
            if (!eat(']')) fail("expected ']' or ','");
        } else if (c == '"') {
            v.kind = Json::String;
            v.str = string();
        } else if (s_.compare(i_, 4, "true") == 0) { v.kind = Json::Bool; v.boolean = true; i_ += 4; }
        else if (s_.compare(i_, 5, "false") == 0) { v.kind = Json::Bool; i_ += 5; }
        else if (s_.compare(i_, 4, "null") == 0) { i_ += 4; }
        else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i_;
            if (s_[j] == '-') ++j;
            while (j < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[j])) || s_[j] == '.' ||
                                     s_[j] == 'e' || s_[j] == 'E' || s_[j] == '+' || s_[j] == '-')) ++j;
            const std::string num = s_.substr(i_, j - i_);
            char* end = nullptr;
            errno = 0;
            v.number = std::strtod(num.c_str(), &end);
            if (end != num.c_str() + num.size() || !std::isfinite(v.number)) fail("bad number");
            v.kind = Json::Number;
            i_ = j;
        } else {
            fail("unexpected character");
        }
        return v;
    }
    const std::string& s_;
    size_t i_ = 0;
};

}  // namespace

const Json* Json::find(const std::string& key) const {
    if (kind != Object) return nullptr;
    for (const auto& kv : fields)
        if (kv.first == key) return &kv.second;
    return nullptr;
}

Json parse_json(const std::string& text) {
    const size_t bad = first_invalid_utf8(text.data(), text.size());
    if (bad != text.size()) throw std::runtime_error("not UTF-8 (invalid byte at offset " + std::to_string(bad) + ")");
    return Parser(text).parse();
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot read it");
    std::stringstream buf;
    buf << in.rdbuf();
    if (in.bad()) throw std::runtime_error(path + ": read error");
    return buf.str();
}

const Json& json_field(const Json& obj, const std::string& key, const std::string& where) {
    const Json* v = obj.find(key);
    if (!v) throw std::runtime_error(where + ": missing key '" + key + "'");
    return *v;
}

int64_t json_int(const Json& obj, const std::string& key, const std::string& where, int64_t lo, int64_t hi) {
    const Json& v = json_field(obj, key, where);
    if (v.kind != Json::Number || v.number != std::floor(v.number) || v.number < static_cast<double>(lo) ||
        v.number > static_cast<double>(hi))
        throw std::runtime_error(where + ": '" + key + "' must be an integer in [" + std::to_string(lo) + ", " +
                                 std::to_string(hi) + "]");
    return static_cast<int64_t>(v.number);
}

std::string json_string(const Json& obj, const std::string& key, const std::string& where) {
    const Json& v = json_field(obj, key, where);
    if (v.kind != Json::String) throw std::runtime_error(where + ": '" + key + "' must be a string");
    return v.str;
}

std::string json_quote(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') { o += '\\'; o += c; }
        else if (c == '\n') o += "\\n";
        else if (c == '\t') o += "\\t";
        else if (c == '\r') o += "\\r";
        else if (static_cast<unsigned char>(c) < 0x20) { char b[8]; std::snprintf(b, sizeof b, "\\u%04x", c); o += b; }
        else o += c;
    }
    return o + "\"";
}

}  // namespace edgebit::engine
