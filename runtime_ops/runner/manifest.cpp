#include "manifest.h"

#include <cctype>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

namespace edgebit_runner {
namespace {

// Just enough JSON: objects, arrays, strings (with simple escapes), numbers, true/false/null.
struct Value {
    enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
    double number = 0;
    std::string str;
    std::vector<Value> items;
    std::map<std::string, Value> fields;
};

class Parser {
  public:
    explicit Parser(const std::string& text) : s_(text) {}
    Value parse() {
        Value v = value();
        ws();
        if (i_ != s_.size()) fail("trailing characters");
        return v;
    }

  private:
    [[noreturn]] void fail(const std::string& what) {
        throw std::runtime_error("invalid JSON (" + what + " at byte " + std::to_string(i_) + ")");
    }
    void ws() { while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_; }
    bool eat(char c) { ws(); if (i_ < s_.size() && s_[i_] == c) { ++i_; return true; } return false; }
    std::string string() {
        if (!eat('"')) fail("expected a string");
        std::string out;
        while (i_ < s_.size() && s_[i_] != '"') {
            char c = s_[i_++];
            if (c == '\\') {
                if (i_ >= s_.size()) fail("bad escape");
                char e = s_[i_++];
                switch (e) {
                    case 'n': out += '\n'; break;
                    case 't': out += '\t'; break;
                    case 'r': out += '\r'; break;
                    case 'b': out += '\b'; break;
                    case 'f': out += '\f'; break;
                    case 'u': out += '?'; i_ += 4; break;  // not needed for the keys we read
                    default: out += e;
                }
            } else {
                out += c;
            }
        }
        if (i_ >= s_.size()) fail("unterminated string");
        ++i_;
        return out;
    }
    Value value() {
        ws();
        if (i_ >= s_.size()) fail("unexpected end");
        Value v;
        char c = s_[i_];
        if (c == '{') {
            ++i_;
            v.kind = Value::Object;
            if (eat('}')) return v;
            do {
                ws();
                std::string k = string();
                if (!eat(':')) fail("expected ':'");
                v.fields[k] = value();
            } while (eat(','));
            if (!eat('}')) fail("expected '}'");
        } else if (c == '[') {
            ++i_;
            v.kind = Value::Array;
            if (eat(']')) return v;
            do { v.items.push_back(value()); } while (eat(','));
            if (!eat(']')) fail("expected ']'");
        } else if (c == '"') {
            v.kind = Value::String;
            v.str = string();
        } else if (s_.compare(i_, 4, "true") == 0) { v.kind = Value::Bool; v.number = 1; i_ += 4; }
        else if (s_.compare(i_, 5, "false") == 0) { v.kind = Value::Bool; i_ += 5; }
        else if (s_.compare(i_, 4, "null") == 0) { i_ += 4; }
        else {
            size_t used = 0;
            try { v.number = std::stod(s_.substr(i_, 64), &used); } catch (...) { fail("bad value"); }
            v.kind = Value::Number;
            i_ += used;
        }
        return v;
    }
    const std::string& s_;
    size_t i_ = 0;
};

const Value& field(const Value& obj, const std::string& key, const std::string& where) {
    auto it = obj.fields.find(key);
    if (obj.kind != Value::Object || it == obj.fields.end())
        throw std::runtime_error(where + ": missing key '" + key + "'");
    return it->second;
}

int64_t integer(const Value& obj, const std::string& key, const std::string& where) {
    const Value& v = field(obj, key, where);
    if (v.kind != Value::Number || v.number < 0)
        throw std::runtime_error(where + ": '" + key + "' is not a non-negative number");
    return static_cast<int64_t>(v.number);
}

}  // namespace

Manifest read_manifest(const std::string& dir) {
    const std::string path = dir + "/manifest.json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot read (not an edgebit artifact directory?)");
    std::stringstream buf;
    buf << in.rdbuf();
    Value root;
    try {
        root = Parser(buf.str()).parse();
    } catch (const std::exception& e) {
        throw std::runtime_error(path + ": " + e.what());
    }
    Manifest m;
    m.target = field(root, "target", path).str;
    m.model_file = field(root, "model_file", path).str;
    auto lib = root.fields.find("op_library");
    if (lib != root.fields.end() && lib->second.kind == Value::String) m.op_library = lib->second.str;
    m.max_seq_len = integer(root, "max_seq_len", path);
    const Value& cfg = field(root, "config", path);
    const std::string cpath = path + " config";
    if (m.target == "onnx") {  // past/present shapes; a .pte keeps its cache inside
        m.num_layers = integer(cfg, "num_layers", cpath);
        m.num_kv_heads = integer(cfg, "num_kv_heads", cpath);
        m.head_dim = integer(cfg, "head_dim", cpath);
    }
    m.vocab_size = integer(cfg, "vocab_size", cpath);
    auto eos = cfg.fields.find("eos_token_ids");
    if (eos != cfg.fields.end())
        for (const Value& v : eos->second.items) m.eos_token_ids.push_back(static_cast<int64_t>(v.number));
    if (m.model_file.empty()) throw std::runtime_error(path + ": empty model_file");
    return m;
}

}  // namespace edgebit_runner
