// An edgebit ONNX decoder in an ONNX Runtime session: the same past/present feeding as
// edgebit/backends/onnxruntime.py, one Run per forward, presents handed back as the next pasts.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "manifest.h"

namespace edgebit_runner {

struct SessionConfig {
    std::string artifact_dir;
    std::string op_library;      // path; "" = none
    int threads = 0;             // 0 = ONNX Runtime's default
    std::string profile_prefix;  // ORT profiling JSON prefix; "" = off
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

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    int64_t length_ = 0;
};

}  // namespace edgebit_runner
