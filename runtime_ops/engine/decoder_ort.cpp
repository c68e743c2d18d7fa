#include "decoder.h"
#include "memory.h"
#include "onnx_external.h"
#include "sysinfo.h"
#include "weight_map.h"


#include <onnxruntime_cxx_api.h>

#include <malloc.h>
#include <map>
#include <stdexcept>

namespace edgebit::engine {
namespace {

class OrtDecoder final : public Decoder {
  public:
    OrtDecoder(const DecoderConfig& cfg, const Manifest& m);
    void reset() override;
    const float* forward(const std::vector<int64_t>& tokens) override;
    std::string end_profiling() override;
    const char* runtime_name() const override { return "onnxruntime"; }
    std::string runtime_version() const override { return OrtGetApiBase()->GetVersionString(); }
    int64_t kv_cache_bytes() const override { return edgebit::engine::kv_cache_bytes(m, length_); }

  private:
    void map_weights(const std::string& model);

    Ort::Env env{ORT_LOGGING_LEVEL_ERROR, "edgebit-runner"};
    Ort::SessionOptions opts;
    // The external data files mapped by the engine (weight_map.h) and the initializers over them, which the session
    // reads in place: declared before it, so they outlive it.
    std::map<std::string, std::unique_ptr<WeightMap>> weight_maps;
    std::vector<Ort::Value> weight_values;
    std::unique_ptr<Ort::Session> session;
    Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    Manifest m;
    bool profiling = false;
    std::vector<std::string> in_names, out_names;
    std::vector<Ort::Value> past;  // 2 * layers: key, value per layer
    // In-place artifacts (manifest kv_cache.update): one [1, KVH, max_seq_len, D] buffer per cache tensor, bound as
    // past and present; left uninitialized, so a page becomes resident only when a position in it is written.
    std::vector<std::unique_ptr<uint8_t[]>> buffers;  // in place: float32, float16 or int8 rows (m.kv_row_bytes() each)
    size_t logits_out = 0;
    std::vector<size_t> present_out;  // output index for past slot i
    std::vector<Ort::Value> outputs;  // the last run's, kept: forward() returns a pointer into its logits
    // The graph's logits_to_keep input (an overridable initializer defaulting to every position, so onnxruntime-genai
    // and verify get all of them): the engine asks for the last position only, so a prefill runs the head once.
    bool keep_last = false;
    int64_t one = 1;
};


OrtDecoder::OrtDecoder(const DecoderConfig& cfg, const Manifest& m) {
    OrtDecoder& s = *this;
    s.m = m;
    s.opts.SetIntraOpNumThreads(cfg.threads);
    s.opts.SetInterOpNumThreads(1);
    s.opts.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    // No CPU arena: ONNX Runtime's arena keeps the high-water mark of the largest step (a prefill chunk's
    // activations) for the session's life and grows in doublings past it; plain allocations go back to the heap.
    // Measured on the 2B4T shape: peak RSS 50 MB lower, decode tokens/s unchanged (docs/performance.md).
    s.opts.DisableCpuMemArena();
    // Weights come from model.onnx.data (exporters/onnx/builder.py aligns them), mapped by the engine on 2 MB pages
    // (map_weights) or, where those are off, by ONNX Runtime: either way the BitLinear op reads its W input where it
    // is, in the mapped file, and nothing copies it.
    if (!cfg.profile_prefix.empty()) {
        s.opts.EnableProfiling(cfg.profile_prefix.c_str());
        s.profiling = true;
    }
    if (!cfg.op_library.empty()) {
        if (!is_file(cfg.op_library))
            throw std::runtime_error(cfg.op_library + ": op library missing (the model's edgebit ops need it)");
        try {
            s.opts.RegisterCustomOpsLibrary(cfg.op_library.c_str());
        } catch (const Ort::Exception& e) {
            throw std::runtime_error(cfg.op_library + ": ONNX Runtime cannot load it: " + e.what());
        }
    }
    const std::string model = cfg.artifact_dir + "/" + m.model_file;
    if (!is_file(model)) throw std::runtime_error(model + ": missing (manifest.json names it as model_file)");
    // Artifacts with edgebit's ops only: a standard one's MatMulNBits copies its weights at load (2 MB pages would
    // only make its embedding's gathered rows cost 2 MB each).
    if (!m.op_library.empty() && hugepages_wanted()) s.map_weights(model);
    try {
        s.session.reset(new Ort::Session(s.env, model.c_str(), s.opts));
    } catch (const Ort::Exception& e) {
        std::string what = e.what();
        throw std::runtime_error(model + ": ONNX Runtime cannot load it: " + what.substr(0, what.find('\n')));
    }
    // Creating the session read every page of the int8 head's blob (MatMulNBits prepacks it into its own buffer;
    // the embedding's Gather keeps reading the blob, so ONNX Runtime keeps it mapped). Those pages need not stay
    // resident: the Gather reads one row per token. Dropping them leaves one resident copy of the head.
    s.released_ = release_mapped_pages(cfg.weight_files);
    Ort::AllocatorWithDefaultOptions alloc;
    for (size_t i = 0; i < s.session->GetInputCount(); ++i)
        s.in_names.push_back(s.session->GetInputNameAllocated(i, alloc).get());
    for (size_t i = 0; i < s.session->GetOutputCount(); ++i)
        s.out_names.push_back(s.session->GetOutputNameAllocated(i, alloc).get());
    auto out_index = [&](const std::string& name) {
        for (size_t i = 0; i < s.out_names.size(); ++i)
            if (s.out_names[i] == name) return i;
        throw std::runtime_error(model + ": no output named '" + name + "'");
    };
    s.logits_out = out_index("logits");
    for (int64_t l = 0; l < m.num_layers; ++l) {
        s.present_out.push_back(out_index("present." + std::to_string(l) + ".key"));
        s.present_out.push_back(out_index("present." + std::to_string(l) + ".value"));
    }
    for (size_t i = 0; i < s.session->GetOverridableInitializerCount(); ++i)
        s.keep_last = s.keep_last ||
                      std::string(s.session->GetOverridableInitializerNameAllocated(i, alloc).get()) == "logits_to_keep";
    // Input order: the three id inputs, then past key/value per layer (names checked by the session), then
    // logits_to_keep when the graph has it.
    s.in_names.clear();
    s.in_names = {"input_ids", "attention_mask", "position_ids"};
    for (int64_t l = 0; l < m.num_layers; ++l) {
        s.in_names.push_back("past_key_values." + std::to_string(l) + ".key");
        s.in_names.push_back("past_key_values." + std::to_string(l) + ".value");
    }
    if (s.keep_last) s.in_names.push_back("logits_to_keep");
    if (m.kv_in_place) {
        const size_t n = size_t(m.num_kv_heads) * size_t(m.max_seq_len) * size_t(m.kv_row_bytes());
        for (int64_t i = 0; i < 2 * m.num_layers; ++i) s.buffers.emplace_back(new uint8_t[n]);
    }
    reset();
}

void OrtDecoder::reset() {
    OrtDecoder& s = *this;
    s.outputs.clear();
    s.past.clear();
#ifdef __GLIBC__
    // The last generation's decode steps left the heap fragmented (presents one position longer each step): hand
    // the free pages back before the next prefill allocates its chunk's activations (2B4T: peak RSS 38 MB lower).
    malloc_trim(0);
#endif
    length_ = 0;
    if (s.m.kv_in_place) return;  // the buffers stay; positions from length_ on are written before they are read
    const int64_t shape[4] = {1, s.m.num_kv_heads, 0, s.m.head_dim};
    Ort::AllocatorWithDefaultOptions alloc;
    for (int64_t i = 0; i < 2 * s.m.num_layers; ++i)
        s.past.push_back(Ort::Value::CreateTensor<float>(alloc, shape, 4));
}

// Every external initializer of a fixed-size type becomes an OrtValue over the engine's mapping of its file, added to
// the session options (AddInitializer: ONNX Runtime uses the buffer as given, no copy). Others, and any whose bytes
// would be misaligned for their type, are left to ONNX Runtime's own loading.
void OrtDecoder::map_weights(const std::string& model) {
    const std::string dir = model.substr(0, model.find_last_of('/') + 1);
    const Ort::MemoryInfo info = Ort::MemoryInfo::CreateCpu(OrtDeviceAllocator, OrtMemTypeDefault);
    std::vector<std::pair<std::string, size_t>> added;
    for (const ExternalTensor& t : external_initializers(model)) {
        const int64_t elem = element_bytes(t.data_type);
        // A location that leaves the model's directory is ONNX Runtime's to refuse, as it does.
        if (elem == 0 || t.location.empty() || t.location[0] == '/' || t.location.find("..") != std::string::npos ||
            t.offset % elem != 0)
            continue;
        std::unique_ptr<WeightMap>& w = weight_maps[t.location];
        if (!w) w.reset(new WeightMap(dir + t.location));
        int64_t count = 1;
        for (int64_t d : t.dims) {
            if (d < 0 || (d > 0 && count > (int64_t(1) << 50) / d))
                throw std::runtime_error(model + ": initializer '" + t.name + "' has an invalid shape");
            count *= d;
        }
        const int64_t size = static_cast<int64_t>(w->size());
        const int64_t length = t.length < 0 ? size - t.offset : t.length;
        if (count == 0) continue;
        if (length != count * elem || t.offset > size || length > size - t.offset)
            throw std::runtime_error(model + ": initializer '" + t.name + "' wants bytes [" + std::to_string(t.offset) +
                                     ", +" + std::to_string(length) + ") of " + w->path() + " (" +
                                     std::to_string(size) + " bytes) for " + std::to_string(count * elem) +
                                     " bytes of data");
        weight_values.push_back(Ort::Value::CreateTensor(info, w->data() + t.offset, static_cast<size_t>(length),
                                                         t.dims.data(), t.dims.size(),
                                                         static_cast<ONNXTensorElementDataType>(t.data_type)));
        added.emplace_back(t.name, weight_values.size() - 1);
    }
    for (const auto& a : added) opts.AddInitializer(a.first.c_str(), weight_values[a.second]);
}

const float* OrtDecoder::forward(const std::vector<int64_t>& tokens) {
    OrtDecoder& s = *this;
    const int64_t t = static_cast<int64_t>(tokens.size());
    if (length_ + t > s.m.max_seq_len)
        throw std::runtime_error("sequence of " + std::to_string(length_ + t) + " tokens exceeds the artifact's "
                                 "max_seq_len " + std::to_string(s.m.max_seq_len));
    std::vector<int64_t> ids(tokens), mask(length_ + t, 1), pos(t);
    for (int64_t i = 0; i < t; ++i) pos[i] = length_ + i;
    const int64_t ids_shape[2] = {1, t}, mask_shape[2] = {1, length_ + t};
    std::vector<Ort::Value> inputs;
    inputs.push_back(Ort::Value::CreateTensor<int64_t>(s.cpu, ids.data(), ids.size(), ids_shape, 2));
    inputs.push_back(Ort::Value::CreateTensor<int64_t>(s.cpu, mask.data(), mask.size(), mask_shape, 2));
    inputs.push_back(Ort::Value::CreateTensor<int64_t>(s.cpu, pos.data(), pos.size(), ids_shape, 2));
    // In place: the same buffer is input and output (two views of it); ONNX Runtime allocates only the logits.
    const int64_t cache_shape[4] = {1, s.m.num_kv_heads, s.m.max_seq_len, s.m.kv_row_elems()};
    const size_t cache_count = size_t(s.m.num_kv_heads) * size_t(s.m.max_seq_len) * size_t(s.m.kv_row_elems());
    const auto cache_type = s.m.kv_bytes == 2   ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16
                            : s.m.kv_bytes == 1 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8
                                                : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    auto view = [&](size_t i) {
        return Ort::Value::CreateTensor(s.cpu, s.buffers[i].get(), cache_count * size_t(s.m.kv_bytes), cache_shape, 4,
                                        cache_type);
    };
    if (s.m.kv_in_place)
        for (size_t i = 0; i < s.buffers.size(); ++i) inputs.push_back(view(i));
    else
        for (auto& p : s.past) inputs.push_back(std::move(p));
    const int64_t keep_shape[1] = {1};
    if (s.keep_last) inputs.push_back(Ort::Value::CreateTensor<int64_t>(s.cpu, &s.one, 1, keep_shape, 1));
    std::vector<const char*> in_names, out_names;
    for (auto& n : s.in_names) in_names.push_back(n.c_str());
    for (auto& n : s.out_names) out_names.push_back(n.c_str());
    s.outputs.clear();
    try {
        if (s.m.kv_in_place) {
            for (size_t i = 0; i < s.out_names.size(); ++i) s.outputs.emplace_back(nullptr);
            for (size_t i = 0; i < s.present_out.size(); ++i) s.outputs[s.present_out[i]] = view(i);
            s.session->Run(Ort::RunOptions{nullptr}, in_names.data(), inputs.data(), inputs.size(), out_names.data(),
                           s.outputs.data(), s.outputs.size());
        } else {
            s.outputs = s.session->Run(Ort::RunOptions{nullptr}, in_names.data(), inputs.data(), inputs.size(),
                                       out_names.data(), out_names.size());
        }
    } catch (const Ort::Exception& e) {
        reset();  // the pasts were handed to the failed run: start over from an empty cache
        std::string what = e.what();
        throw std::runtime_error("ONNX Runtime Run failed: " + what.substr(0, what.find('\n')));
    }
    Ort::Value& logits = s.outputs[s.logits_out];
    auto shape = logits.GetTensorTypeAndShapeInfo().GetShape();
    const int64_t rows = s.keep_last ? 1 : t;
    if (shape.size() != 3 || shape[1] != rows || shape[2] < 1) {
        reset();
        throw std::runtime_error(s.keep_last ? "logits output has an unexpected shape (want [1, 1, vocab])"
                                             : "logits output has an unexpected shape (want [1, T, vocab])");
    }
    vocab_ = shape[2];
    if (!s.m.kv_in_place) {
        s.past.clear();
        for (size_t i = 0; i < s.present_out.size(); ++i) s.past.push_back(std::move(s.outputs[s.present_out[i]]));
    }
    length_ += t;
    return logits.GetTensorData<float>() + (rows - 1) * vocab_;
}

std::string OrtDecoder::end_profiling() {
    OrtDecoder& s = *this;
    if (!s.profiling) return "";
    Ort::AllocatorWithDefaultOptions alloc;
    return s.session->EndProfilingAllocated(alloc).get();
}

}  // namespace

std::unique_ptr<Decoder> open_ort_decoder(const DecoderConfig& cfg, const Manifest& m) {
    return std::unique_ptr<Decoder>(new OrtDecoder(cfg, m));
}

}  // namespace edgebit::engine
