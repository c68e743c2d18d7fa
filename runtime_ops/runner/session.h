// The decoder one runner executable drives. Two implementations, chosen at link time:
//   session.cpp     (edgebit-runner):    an ONNX artifact in an ONNX Runtime session, the same past/present
//                                        feeding as edgebit/backends/onnxruntime.py, presents handed back as pasts;
//   et_session.cpp  (edgebit-runner-et): a .pte through ExecuTorch's Module API, forward(tokens, input_pos) with
//                                        the KV cache in the program's mutable buffers, like backends/executorch.py.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "manifest.h"

namespace edgebit_runner {

struct SessionConfig {
    std::string artifact_dir;
    std::string op_library;      // path; "" = none (ORT: registered; ExecuTorch: dlopen'ed RTLD_GLOBAL first)
    int threads = 0;             // 0 = ONNX Runtime's default
    std::string profile_prefix;  // ORT profiling JSON prefix / ETDump file; "" = off
};

class Decoder {
  public:
    Decoder(const SessionConfig& cfg, const Manifest& m);
    ~Decoder();
    void reset();
    // Feeds tokens at the current position; returns the argmax of the last position's logits.
    int64_t forward_argmax(const std::vector<int64_t>& tokens);
    int64_t length() const { return length_; }
    std::string end_profiling();  // the ORT profile file written, "" if profiling is off
    static std::string runtime_version();
    static const char* runtime_name();     // "onnxruntime" / "executorch"
    static const char* artifact_target();  // the manifest "target" this decoder runs

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    int64_t length_ = 0;
};

}  // namespace edgebit_runner
