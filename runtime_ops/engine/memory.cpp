#include "memory.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "sysinfo.h"

namespace edgebit::engine {
namespace {

std::string real_path(const std::string& p) {
    char buf[PATH_MAX];
    return realpath(p.c_str(), buf) ? std::string(buf) : p;
}

bool ends_with(const std::string& s, const char* tail) {
    const size_t n = std::strlen(tail);
    return s.size() >= n && s.compare(s.size() - n, n, tail) == 0;
}

// A /proc/self/{maps,smaps} mapping line: "start-end perms offset dev inode [path]".
bool parse_mapping(const std::string& line, uintptr_t* start, uintptr_t* end, std::string* perms, std::string* path) {
    unsigned long long a = 0, b = 0;
    char p[8] = {0};
    int consumed = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx %7s %*s %*s %*s %n", &a, &b, p, &consumed) < 3) return false;
    *start = static_cast<uintptr_t>(a);
    *end = static_cast<uintptr_t>(b);
    *perms = p;
    path->clear();
    if (consumed > 0 && static_cast<size_t>(consumed) <= line.size()) {
        *path = line.substr(consumed);
        while (!path->empty() && (path->back() == ' ' || path->back() == '\n')) path->pop_back();
    }
    return true;
}

}  // namespace

std::vector<std::string> weight_files(const std::string& artifact_dir, const Manifest& m) {
    std::vector<std::string> out;
    auto add = [&](const std::string& name) {
        const std::string p = real_path(artifact_dir + "/" + name);
        if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    };
    add(m.model_file);
    struct stat st;  // ONNX external data next to the model, even where the manifest does not list it
    if (stat((artifact_dir + "/" + m.model_file + ".data").c_str(), &st) == 0) add(m.model_file + ".data");
    for (const auto& f : m.files) {
        const std::string& name = f.first;
        if (name == m.op_library || ends_with(name, ".json") || ends_with(name, ".so")) continue;
        add(name);
    }
    return out;
}

int64_t files_bytes(const std::vector<std::string>& paths) {
    int64_t total = 0;
    for (const std::string& p : paths) {
        struct stat st;
        if (stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) total += st.st_size;
    }
    return total;
}

MemorySplit memory_split(const std::vector<std::string>& weight_paths) {
    MemorySplit s;
    std::ifstream in("/proc/self/smaps");
    if (!in) return s;
    s.available = true;
    std::string line, path, perms;
    enum { Anon, Weights, OtherFile } kind = Anon;
    uintptr_t start = 0, end = 0;
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        const char c = line[0];
        const bool header = std::isxdigit(static_cast<unsigned char>(c)) && line.find('-') != std::string::npos &&
                            line.find(':') > line.find(' ');
        if (header && parse_mapping(line, &start, &end, &perms, &path)) {
            if (!path.empty() && path[0] == '/') {
                const bool w = std::find(weight_paths.begin(), weight_paths.end(), path) != weight_paths.end();
                kind = w ? Weights : OtherFile;
                if (w) s.weights_mapped_size += static_cast<int64_t>(end - start);
            } else {
                kind = Anon;  // [heap], [stack], anonymous, [vdso]...
            }
            continue;
        }
        long long kb = 0;
        if (line.compare(0, 4, "Rss:") == 0 && std::sscanf(line.c_str() + 4, "%lld", &kb) == 1) {
            s.rss += kb * 1024;
            if (kind == Weights) s.weights_mapped += kb * 1024;
            else if (kind == OtherFile) s.other_file += kb * 1024;
        } else if (line.compare(0, 10, "Anonymous:") == 0 && std::sscanf(line.c_str() + 10, "%lld", &kb) == 1) {
            s.anonymous += kb * 1024;
        } else if (kind == Weights && line.compare(0, 14, "FilePmdMapped:") == 0 &&
                   std::sscanf(line.c_str() + 14, "%lld", &kb) == 1) {
            s.weights_huge += kb * 1024;
        }
    }
    return s;
}

int64_t release_mapped_pages(const std::vector<std::string>& paths) {
    // ONNX Runtime maps external data PROT_READ|PROT_WRITE, MAP_PRIVATE. A page of such a mapping is the file's
    // until written (then it is an anonymous copy): a mapping with no anonymous pages holds only the file's pages,
    // and dropping them loses nothing. Mappings with any written page are left alone.
    std::ifstream in("/proc/self/smaps");
    if (!in) return 0;
    std::vector<std::pair<uintptr_t, uintptr_t>> ranges;
    std::string line, path, perms;
    uintptr_t start = 0, end = 0;
    bool ours = false;
    while (std::getline(in, line)) {
        uintptr_t a, b;
        std::string p, f;
        if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
            line.find(':') > line.find(' ') && parse_mapping(line, &a, &b, &p, &f)) {
            start = a, end = b, perms = p, path = f;
            ours = perms.size() >= 4 && perms[3] == 'p' && std::find(paths.begin(), paths.end(), path) != paths.end();
            continue;
        }
        long long kb = 0;
        if (ours && line.compare(0, 10, "Anonymous:") == 0 && std::sscanf(line.c_str() + 10, "%lld", &kb) == 1 &&
            kb == 0)
            ranges.emplace_back(start, end);
    }
    int64_t advised = 0;
    for (const auto& r : ranges)
        if (madvise(reinterpret_cast<void*>(r.first), r.second - r.first, MADV_DONTNEED) == 0)
            advised += static_cast<int64_t>(r.second - r.first);
    return advised;
}

int64_t kv_cache_bytes(const Manifest& m, int64_t tokens) {
    return 2 * m.num_layers * m.num_kv_heads * m.kv_row_bytes() * tokens;
}

MemoryNeed memory_need(const std::string& artifact_dir, const Manifest& m) {
    MemoryNeed n;
    n.weights = files_bytes(weight_files(artifact_dir, m));
    const int64_t padded_h = (m.hidden_size + 127) / 128 * 128;
    // What the runtimes repack at load, measured on the 2B4T shape (docs/performance.md): ONNX Runtime's
    // MatMulNBits bits=8 head, 1.16x its blob; a fp32 Gemm head, its own size (MLAS packs B); XNNPACK's int8 and
    // fp32 linears, their own size. A quantized head with edgebit's ops is edgebit's QLinear, which reads the
    // mapped rows in place: nothing repacked.
    const bool own_head = !m.op_library.empty() && (m.head == "int8" || m.head == "q4");
    if (own_head) n.repacked = 0;
    else if (m.head == "int8") n.repacked = m.target == "onnx" ? m.vocab_size * padded_h * 116 / 100 : m.vocab_size * m.hidden_size;
    else if (m.head == "fp32") n.repacked = m.vocab_size * m.hidden_size * int64_t(sizeof(float));
    // ONNX: the step's past and present caches are both alive while it runs; a .pte plans its cache once.
    // A Concat-form ONNX graph holds past and present at once; an in-place one, and a .pte, one cache.
    n.kv_cache = kv_cache_bytes(m, m.max_seq_len) * (m.target == "onnx" && !m.kv_in_place ? 2 : 1);
    // The largest activation: the logits of a prefill chunk (fp32), and as much again for the runtime's
    // intermediates of that step.
    n.activations = 2 * std::min(m.max_seq_len, kPrefillChunk) * m.vocab_size * int64_t(sizeof(float));
    n.runtime = int64_t(64) << 20;  // libraries' code, arenas' slack, the engine and tokenizer
    return n;
}

}  // namespace edgebit::engine
