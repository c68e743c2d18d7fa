#include "decoder.h"

#include <stdexcept>

namespace edgebit::engine {

std::unique_ptr<Decoder> open_decoder(const DecoderConfig& cfg, const Manifest& m) {
    if (m.target == "onnx") {
#ifdef EDGEBIT_ENGINE_ORT
        return open_ort_decoder(cfg, m);
#else
        throw std::runtime_error(cfg.artifact_dir + ": an ONNX artifact, but this engine was built without ONNX "
                                 "Runtime (EDGEBIT_ENGINE_ORT=ON); use a bundle with the onnxruntime runtime");
#endif
    }
    if (m.target == "executorch") {
#ifdef EDGEBIT_ENGINE_ET
        return open_et_decoder(cfg, m);
#else
        throw std::runtime_error(cfg.artifact_dir + ": an ExecuTorch (.pte) artifact, but this engine was built "
                                 "without ExecuTorch (EDGEBIT_ENGINE_ET=ON); use a bundle with the executorch runtime");
#endif
    }
    throw std::runtime_error(cfg.artifact_dir + "/manifest.json: target '" + m.target +
                             "' is not one the engine runs (onnx, executorch)");
}

}  // namespace edgebit::engine
