// The parts of an edgebit artifact's manifest.json the engine needs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace edgebit::engine {

// The chat template rendered at export (exporters/chat_template.py) into the strings around each turn, so the
// device needs no template engine. A first turn is (system ? system_prefix + S + system_to_user : prefix) +
// U + user_to_assistant; each later turn assistant_to_user + U + user_to_assistant.
struct ChatPieces {
    bool present = false;
    bool has_system = false;
    bool trim_content = false;
    std::string prefix, system_prefix, system_to_user, user_to_assistant, assistant_to_user;
    std::vector<int64_t> stop_token_ids;  // end of sequence and end of turn
};

// What this engine reads: manifest "format" / "format_version" (edgebit/artifact.py FORMAT, FORMAT_VERSION) and
// the packed-weight layout (EDGEBIT_LAYOUT_VERSION in runtime_ops/kernels/edgebit_kernels.h, the same number as
// edgebit/quant/packing.py LAYOUT_VERSION; tests/reliability/test_bad_artifacts.py holds them equal).
constexpr const char* kArtifactFormat = "edgebit-artifact";
constexpr int64_t kArtifactFormatVersion = 1;

struct Manifest {
    // "files": every file of the artifact with the sha256 it was exported with (plain names, manifest order).
    std::vector<std::pair<std::string, std::string>> files;
    std::string target;       // "onnx" or "executorch"
    std::string model_file;   // relative to the artifact dir
    std::string op_library;   // "" when the artifact needs no op library (standard ops)
    int64_t max_seq_len = 0;
    int64_t num_layers = 0, num_kv_heads = 0, head_dim = 0, vocab_size = 0;
    int64_t hidden_size = 0;  // 0 when the manifest does not say (memory estimates only)
    std::string head;         // "int8" / "fp32" / "" (memory estimates only)
    // ONNX: "kv_cache": {"update": "in-place"} takes one [1, KVH, max_seq_len, D] buffer per cache tensor bound as
    // both past and present (the graph's attention op writes the new positions into it); otherwise past in, new present
    // out.
    bool kv_in_place = false;
    int64_t kv_bytes = 4;  // "dtype": "float32" (4) or, in place only, "float16" (2) or "int8" (1): element size
    // A cached row (one position of one kv head): head_dim elements, and an int8 row's float32 scale after its codes.
    int64_t kv_row_elems() const { return kv_bytes == 1 ? head_dim + 4 : head_dim; }
    int64_t kv_row_bytes() const { return kv_row_elems() * kv_bytes; }
    std::vector<int64_t> eos_token_ids;
    ChatPieces chat;
};

// Reads <dir>/manifest.json; throws std::runtime_error naming the file and key on any problem, including an
// artifact of another format or weight layout (one line saying which versions and to re-export). The files
// themselves are checked by check_artifact_files (artifact_check.h).
Manifest read_manifest(const std::string& dir);

}  // namespace edgebit::engine
