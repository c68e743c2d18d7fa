// The model an engine drives, one implementation per runtime, picked by the artifact's manifest target:
//   decoder_ort.cpp  ONNX artifact in an ONNX Runtime session, the same past/present feeding as
//                    edgebit/backends/onnxruntime.py, presents handed back as pasts;
//   decoder_et.cpp   .pte through ExecuTorch's Module API, forward(tokens, input_pos) with the KV cache in the
//                    program's mutable buffers, like edgebit/backends/executorch.py.
// An engine built without a runtime (EDGEBIT_ENGINE_ORT / EDGEBIT_ENGINE_ET off) says so for its artifacts.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "manifest.h"

namespace edgebit::engine {

struct DecoderConfig {
    std::string artifact_dir;
    std::string op_library;      // path; "" = none (ORT: registered; ExecuTorch: dlopen'ed RTLD_GLOBAL first)
    int threads = 0;             // 0 = the runtime's default
    std::string profile_prefix;  // ORT profiling JSON prefix / ETDump file; "" = off
    std::vector<std::string> weight_files;  // real paths of the artifact's weight files (memory.h)
};

class Decoder {
  public:
    virtual ~Decoder() = default;
    virtual void reset() = 0;  // back to position 0 (an empty KV cache)
    // Feeds tokens at the current position; returns the logits of the last one (vocab_size floats, valid until
    // the next call). Throws std::runtime_error when the runtime fails.
    virtual const float* forward(const std::vector<int64_t>& tokens) = 0;
    virtual std::string end_profiling() = 0;  // the profile file written, "" if profiling is off
    virtual const char* runtime_name() const = 0;  // "onnxruntime" / "executorch"
    virtual std::string runtime_version() const = 0;
    int64_t length() const { return length_; }
    int64_t vocab_size() const { return vocab_; }
    // Bytes the KV cache holds now (ONNX: the pasts of the cached tokens; a .pte: its planned cache buffers).
    virtual int64_t kv_cache_bytes() const = 0;
    // Bytes of weight-file mappings whose resident pages were dropped after the runtime's load (memory.h).
    int64_t released_bytes() const { return released_; }

  protected:
    int64_t length_ = 0;
    int64_t vocab_ = 0;
    int64_t released_ = 0;
};

std::unique_ptr<Decoder> open_decoder(const DecoderConfig& cfg, const Manifest& m);

#ifdef EDGEBIT_ENGINE_ORT
std::unique_ptr<Decoder> open_ort_decoder(const DecoderConfig& cfg, const Manifest& m);
#endif
#ifdef EDGEBIT_ENGINE_ET
std::unique_ptr<Decoder> open_et_decoder(const DecoderConfig& cfg, const Manifest& m);
#endif

}  // namespace edgebit::engine
