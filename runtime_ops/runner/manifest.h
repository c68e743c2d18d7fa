// The parts of an edgebit artifact's manifest.json the runner needs, read by a small JSON parser.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace edgebit_runner {

struct Manifest {
    std::string target;       // "onnx" or "executorch"
    std::string model_file;   // relative to the artifact dir
    std::string op_library;   // "" when the artifact needs no op library (standard ops)
    int64_t max_seq_len = 0;
    int64_t num_layers = 0, num_kv_heads = 0, head_dim = 0, vocab_size = 0;
    std::vector<int64_t> eos_token_ids;
};

// Reads <dir>/manifest.json; throws std::runtime_error naming the file and key on any problem.
Manifest read_manifest(const std::string& dir);

}  // namespace edgebit_runner
