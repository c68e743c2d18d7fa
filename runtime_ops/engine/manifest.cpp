#include "manifest.h"

#include <stdexcept>

#include "edgebit_kernels.h"
#include "json.h"

namespace edgebit::engine {
namespace {

std::vector<int64_t> id_list(const Json* v, const std::string& where) {
    std::vector<int64_t> out;
    if (!v || v->is_null()) return out;
    if (v->kind != Json::Array) throw std::runtime_error(where + " must be a list of token ids");
    for (const Json& x : v->items) {
        if (x.kind != Json::Number || x.number < 0 || x.number != static_cast<double>(static_cast<int64_t>(x.number)))
            throw std::runtime_error(where + " must be a list of token ids");
        out.push_back(static_cast<int64_t>(x.number));
    }
    return out;
}

ChatPieces read_chat(const Json& chat, const std::string& where) {
    ChatPieces c;
    if (chat.is_null()) return c;
    if (chat.kind != Json::Object) throw std::runtime_error(where + " must be an object");
    c.present = true;
    c.prefix = json_string(chat, "prefix", where);
    c.user_to_assistant = json_string(chat, "user_to_assistant", where);
    c.assistant_to_user = json_string(chat, "assistant_to_user", where);
    const Json* sp = chat.find("system_prefix");
    if (sp && sp->kind == Json::String) {
        c.has_system = true;
        c.system_prefix = sp->str;
        c.system_to_user = json_string(chat, "system_to_user", where);
    }
    const Json* trim = chat.find("trim_content");
    c.trim_content = trim && trim->kind == Json::Bool && trim->boolean;
    c.stop_token_ids = id_list(chat.find("stop_token_ids"), where + " 'stop_token_ids'");
    return c;
}

bool is_sha256_hex(const std::string& s) {
    if (s.size() != 64) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

// "files": {name: sha256}. Names are plain file names inside the artifact (as edgebit/artifact.py requires):
// "../x", "a/b" or "manifest.json" itself are refused before any path is built from them.
std::vector<std::pair<std::string, std::string>> read_files(const Json& root, const std::string& path) {
    const Json& files = json_field(root, "files", path);
    if (files.kind != Json::Object) throw std::runtime_error(path + ": 'files' must map file names to sha256 hashes");
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& kv : files.fields) {
        const std::string& name = kv.first;
        if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
            name.find('\0') != std::string::npos || name == "manifest.json")
            throw std::runtime_error(path + ": file entry '" + name + "' is not a plain file name");
        if (kv.second.kind != Json::String || !is_sha256_hex(kv.second.str))
            throw std::runtime_error(path + ": file entry '" + name + "' must be a sha256 (64 lowercase hex digits)");
        out.emplace_back(name, kv.second.str);
    }
    return out;
}

}  // namespace

Manifest read_manifest(const std::string& dir) {
    const std::string path = dir + "/manifest.json";
    Json root;
    try {
        root = parse_json(read_file(path));
    } catch (const std::exception& e) {
        const std::string what = e.what();
        if (what.rfind(path, 0) == 0)
            throw std::runtime_error(what + " (not an edgebit artifact directory? make one with `edgebit export`)");
        throw std::runtime_error(path + ": " + what);
    }
    if (root.kind != Json::Object) throw std::runtime_error(path + ": not a JSON object");
    const Json* format = root.find("format");
    if (!format || format->kind != Json::String || format->str != kArtifactFormat)
        throw std::runtime_error(path + ": not an edgebit artifact manifest (no \"format\": \"" + kArtifactFormat + "\")");
    const int64_t format_version = json_int(root, "format_version", path, 0, INT32_MAX);
    if (format_version != kArtifactFormatVersion)
        throw std::runtime_error(path + ": artifact format v" + std::to_string(format_version) + ", this engine reads v" +
                                 std::to_string(kArtifactFormatVersion) + ": re-export the model with the edgebit "
                                 "that built this engine, or rebuild the engine (edgebit bundle)");
    // Checked before anything else is read: packed weights of another layout would load and compute garbage.
    const int64_t layout = json_int(root, "layout_version", path, 0, INT32_MAX);
    if (layout != EDGEBIT_LAYOUT_VERSION)
        throw std::runtime_error(path + ": packed weight layout v" + std::to_string(layout) +
                                 ", but this engine reads layout v" + std::to_string(EDGEBIT_LAYOUT_VERSION) +
                                 " only; re-export the model with the edgebit that built this engine, or rebuild "
                                 "the engine (edgebit bundle)");
    Manifest m;
    m.files = read_files(root, path);
    m.target = json_string(root, "target", path);
    m.model_file = json_string(root, "model_file", path);
    if (m.model_file.empty() || m.model_file.find('/') != std::string::npos || m.model_file == "..")
        throw std::runtime_error(path + ": 'model_file' must be a file name inside the artifact");
    const Json* lib = root.find("op_library");
    if (lib && lib->kind == Json::String) {
        m.op_library = lib->str;
        if (m.op_library.find('/') != std::string::npos || m.op_library == "..")
            throw std::runtime_error(path + ": 'op_library' must be a file name inside the artifact");
    }
    m.max_seq_len = json_int(root, "max_seq_len", path, 1, int64_t(1) << 24);
    const Json& cfg = json_field(root, "config", path);
    const std::string cpath = path + " config";
    if (m.target == "onnx") {  // past/present shapes; a .pte keeps its cache inside
        m.num_layers = json_int(cfg, "num_layers", cpath, 1, 4096);
        m.num_kv_heads = json_int(cfg, "num_kv_heads", cpath, 1, 4096);
        m.head_dim = json_int(cfg, "head_dim", cpath, 1, 65536);
    } else if (cfg.find("num_layers") && cfg.find("num_kv_heads") && cfg.find("head_dim")) {
        // A .pte's cache is inside the program; its size is still what --max-memory counts.
        m.num_layers = json_int(cfg, "num_layers", cpath, 1, 4096);
        m.num_kv_heads = json_int(cfg, "num_kv_heads", cpath, 1, 4096);
        m.head_dim = json_int(cfg, "head_dim", cpath, 1, 65536);
    }
    if (cfg.find("hidden_size")) m.hidden_size = json_int(cfg, "hidden_size", cpath, 1, int64_t(1) << 24);
    const Json* head = root.find("head");
    if (head && head->kind == Json::String) m.head = head->str;
    if (const Json* kv = root.find("kv_cache")) {
        const Json* update = kv->find("update");
        if (!update || update->kind != Json::String || (update->str != "in-place" && update->str != "concat"))
            throw std::runtime_error(path + ": 'kv_cache' 'update' must be \"in-place\" or \"concat\"");
        m.kv_in_place = update->str == "in-place";
        const Json* dtype = kv->find("dtype");
        const std::string type = dtype && dtype->kind == Json::String ? dtype->str : "";
        const bool half = type == "float16" && m.kv_in_place, q8 = type == "int8" && m.kv_in_place;
        if (dtype && !half && !q8 && type != "float32")
            throw std::runtime_error(path + ": 'kv_cache' 'dtype' must be \"float32\", or \"float16\" or \"int8\" "
                                     "with \"update\": \"in-place\"");
        const Json* row = kv->find("row");
        if (q8 && (!row || row->kind != Json::String || row->str != "int8-codes+f32-scale"))
            throw std::runtime_error(path + ": 'kv_cache' 'row' must be \"int8-codes+f32-scale\" for an int8 cache");
        m.kv_bytes = half ? 2 : q8 ? 1 : 4;
    }
    m.vocab_size = json_int(cfg, "vocab_size", cpath, 1, int64_t(1) << 24);
    m.eos_token_ids = id_list(cfg.find("eos_token_ids"), cpath + " 'eos_token_ids'");
    const Json* chat = root.find("chat");
    if (chat) m.chat = read_chat(*chat, path + " chat");
    return m;
}

}  // namespace edgebit::engine
