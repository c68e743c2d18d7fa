// The ExecuTorch Decoder: an edgebit .pte through ExecuTorch's Module API (libexecutorch.so from the
// executorch wheel of the target). forward(tokens int64 [1, T], input_pos int64 [T]) -> logits [1, 1, V] (the last
// position's; [1, T, V] from a full-logits program); the KV cache is the program's mutable buffers, so reset() only
// moves the position back to 0 (the program masks keys past the query's position), exactly as
// edgebit/backends/executorch.py does.
#include "decoder.h"
#include "memory.h"
#include "sysinfo.h"
#include "weight_map.h"

#include <dlfcn.h>

#include <executorch/devtools/etdump/etdump_flatcc.h>
#include <executorch/extension/data_loader/buffer_data_loader.h>
#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor_ptr.h>
#include <executorch/runtime/platform/runtime.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

// The wheel ships libexecutorch_threadpool.so but not threadpool.h: the two entry points used here, declared as
// ExecuTorch defines them (executorch/extension/threadpool/threadpool.h).
namespace executorch::extension::threadpool {
class ThreadPool {
  public:
    bool _unsafe_reset_threadpool(uint32_t num_threads);
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

// ExecuTorch logs through this weak PAL hook (to stderr, many lines per missing kernel); exported (default
// visibility) so it overrides libexecutorch.so's weak one. The engine keeps stderr
// to one line: messages are dropped unless EDGEBIT_RUNNER_ET_LOG is set; the first error is kept for the message.
static std::string g_first_et_error;
extern "C" __attribute__((visibility("default"))) void et_pal_emit_log_message(et_timestamp_t, et_pal_log_level_t level, const char* filename,
                                        const char*, size_t line, const char* message, size_t length) {
    static const bool verbose = getenv("EDGEBIT_RUNNER_ET_LOG") != nullptr;
    if (verbose) fprintf(stderr, "[executorch %s:%zu] %.*s\n", filename, line, static_cast<int>(length), message);
    if (level == kError && g_first_et_error.empty()) g_first_et_error.assign(message, length);
}

namespace edgebit::engine {
namespace {

using executorch::aten::ScalarType;
using executorch::extension::make_tensor_ptr;
using executorch::extension::module::Module;
using executorch::runtime::Error;

class EtDecoder final : public Decoder {
  public:
    EtDecoder(const DecoderConfig& cfg, const Manifest& m);
    void reset() override { length_ = 0; }
    const float* forward(const std::vector<int64_t>& tokens) override;
    std::string end_profiling() override;
    const char* runtime_name() const override { return "executorch"; }
    std::string runtime_version() const override { return EDGEBIT_EXECUTORCH_VERSION; }
    int64_t kv_cache_bytes() const override { return edgebit::engine::kv_cache_bytes(m, m.max_seq_len); }

  private:
    // The program mapped by the engine on 2 MB pages (weight_map.h), which the module reads its constants from in
    // place: declared first, so it outlives the module. Null where those pages are off (ExecuTorch maps the file).
    std::unique_ptr<WeightMap> program_map;
    std::unique_ptr<Module> module;
    Manifest m;
    std::string model;
    std::string etdump_path;  // with --profile: the ETDump written at the end
};


EtDecoder::EtDecoder(const DecoderConfig& cfg, const Manifest& m) {
    EtDecoder& s = *this;
    s.m = m;
    executorch::runtime::runtime_init();
    if (cfg.threads > 0) {
        auto* pool = executorch::extension::threadpool::get_threadpool();
        if (pool) pool->_unsafe_reset_threadpool(static_cast<uint32_t>(cfg.threads));
    }
    if (!cfg.op_library.empty()) {
        if (!is_file(cfg.op_library))
            throw std::runtime_error(cfg.op_library + ": op library missing (the program's edgebit ops need it)");
        // RTLD_GLOBAL before load_method: its kernels register into libexecutorch.so's one registry.
        if (!dlopen(cfg.op_library.c_str(), RTLD_NOW | RTLD_GLOBAL)) {
            const char* e = dlerror();
            throw std::runtime_error(cfg.op_library + ": cannot load it: " + (e ? e : "dlopen failed"));
        }
    }
    s.model = cfg.artifact_dir + "/" + m.model_file;
    if (!is_file(s.model)) throw std::runtime_error(s.model + ": missing (manifest.json names it as model_file)");
    std::unique_ptr<executorch::runtime::EventTracer> tracer;
    if (!cfg.profile_prefix.empty()) {
        tracer.reset(new executorch::etdump::ETDumpGen());
        s.etdump_path = cfg.profile_prefix + ".etdump";
    }
    if (!m.op_library.empty() && hugepages_wanted()) {  // edgebit's ops read their weights every token (weight_map.h)
        s.program_map.reset(new WeightMap(s.model));
        s.module.reset(new Module(std::make_unique<executorch::extension::BufferDataLoader>(s.program_map->data(),
                                                                                         s.program_map->size()),
                                  nullptr, nullptr, std::move(tracer)));
    } else {
        s.module.reset(new Module(s.model, Module::LoadMode::Mmap, std::move(tracer)));
    }
    Error err = s.module->load_method("forward");
    if (err != Error::Ok)
        throw std::runtime_error(s.model + ": ExecuTorch cannot load method forward (error 0x" +
                                 [&] { char b[16]; snprintf(b, sizeof b, "%x", static_cast<unsigned>(err)); return std::string(b); }() +
                                 (g_first_et_error.empty() ? std::string() : ": " + g_first_et_error) + ")");
    reset();
}

const float* EtDecoder::forward(const std::vector<int64_t>& tokens) {
    EtDecoder& s = *this;
    const int64_t t = static_cast<int64_t>(tokens.size());
    if (length_ + t > s.m.max_seq_len)
        throw std::runtime_error("sequence of " + std::to_string(length_ + t) + " tokens exceeds the artifact's "
                                 "max_seq_len " + std::to_string(s.m.max_seq_len));
    std::vector<int64_t> ids(tokens), pos(t);
    for (int64_t i = 0; i < t; ++i) pos[i] = length_ + i;
    auto ids_t = make_tensor_ptr({1, static_cast<int>(t)}, ids.data(), ScalarType::Long);
    auto pos_t = make_tensor_ptr({static_cast<int>(t)}, pos.data(), ScalarType::Long);
    auto result = s.module->execute("forward", {ids_t, pos_t});
    if (!result.ok())
        throw std::runtime_error(s.model + ": forward failed (ExecuTorch error 0x" +
                                 [&] { char b[16]; snprintf(b, sizeof b, "%x", static_cast<unsigned>(result.error())); return std::string(b); }() + ")");
    const auto& logits = result.get()[0].toTensor();
    // [1, 1, vocab]: the last position's (edgebit's exports); [1, T, vocab]: every position's (full-logits programs).
    const int64_t rows = logits.dim() == 3 ? logits.size(1) : -1;
    if ((rows != 1 && rows != t) || logits.size(2) < 1)
        throw std::runtime_error("logits output has an unexpected shape (want [1, 1, vocab] or [1, T, vocab])");
    vocab_ = logits.size(2);
    length_ += t;
    return logits.const_data_ptr<float>() + (rows - 1) * vocab_;
}

std::string EtDecoder::end_profiling() {
    EtDecoder& s = *this;
    if (s.etdump_path.empty()) return "";
    auto* gen = static_cast<executorch::etdump::ETDumpGen*>(s.module->event_tracer());
    executorch::etdump::ETDumpResult result = gen->get_etdump_data();
    if (!result.buf || !result.size) return "";
    FILE* f = fopen(s.etdump_path.c_str(), "wb");
    if (!f) throw std::runtime_error(s.etdump_path + ": cannot write the ETDump");
    const bool ok = fwrite(result.buf, 1, result.size, f) == result.size;
    fclose(f);
    free(result.buf);
    if (!ok) throw std::runtime_error(s.etdump_path + ": short write");
    return s.etdump_path;
}

}  // namespace

std::unique_ptr<Decoder> open_et_decoder(const DecoderConfig& cfg, const Manifest& m) {
    return std::unique_ptr<Decoder>(new EtDecoder(cfg, m));
}

}  // namespace edgebit::engine
