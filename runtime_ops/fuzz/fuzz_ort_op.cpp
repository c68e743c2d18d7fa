// libFuzzer target for the ONNX Runtime op edgebit.BitLinear through a real ONNX Runtime
// session (the onnxruntime wheel's libonnxruntime.so): one-node graphs built in memory with
// fuzzed input dtypes, ranks and shapes (random, mismatched, empty), sometimes declared in the
// graph (so our shape-inference function runs), sometimes a missing input. The op's source is
// compiled into this program (instrumented) and registered with RegisterCustomOps.
// Every Run must either fail with an error status whose message names edgebit.BitLinear or
// ONNX Runtime's own check, or succeed with the reference's output; never crash.
#include <onnxruntime_c_api.h>

#include <map>
#include <string>
#include <tuple>

#include "edgebit_kernels.h"
#include "fuzz_common.h"

extern "C" OrtStatus* ORT_API_CALL RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base);

namespace {

const OrtApi* g_api = nullptr;
OrtEnv* g_env = nullptr;

void check(OrtStatus* st, const char* what) {
    if (st == nullptr) return;
    fprintf(stderr, "%s: %s\n", what, g_api->GetErrorMessage(st));
    abort();
}

// ---- a minimal protobuf writer for ModelProto (the fields onnx.proto numbers below) -------
struct Pb {
    std::string b;
    void varint(uint64_t v) {
        while (v >= 0x80) {
            b += char((v & 0x7f) | 0x80);
            v >>= 7;
        }
        b += char(v);
    }
    void tag(int field, int wire) { varint(uint64_t(field) << 3 | wire); }
    Pb& num(int field, uint64_t v) { tag(field, 0); varint(v); return *this; }
    Pb& bytes(int field, const std::string& s) { tag(field, 2); varint(s.size()); b += s; return *this; }
    Pb& msg(int field, const Pb& m) { return bytes(field, m.b); }
};

// ValueInfoProto{name=1, type=2: TypeProto{tensor_type=1: {elem_type=1, shape=2: {dim=1: {dim_value=1 | dim_param=2}}}}}
Pb value_info(const std::string& name, int elem_type, const std::vector<int64_t>* dims) {
    Pb tensor;
    tensor.num(1, uint64_t(elem_type));
    if (dims != nullptr) {
        Pb shape;
        for (size_t i = 0; i < dims->size(); ++i) {
            Pb dim;
            if ((*dims)[i] >= 0) dim.num(1, uint64_t((*dims)[i]));
            else dim.bytes(2, "d" + std::to_string(i));
            shape.msg(1, dim);
        }
        tensor.msg(2, shape);
    }
    Pb type;
    type.msg(1, tensor);
    Pb vi;
    vi.bytes(1, name).msg(2, type);
    return vi;
}

// One edgebit.BitLinear node; input i is left out (name "") when missing[i].
std::string model_bytes(const int types[3], const std::vector<int64_t>* dims[3], const bool missing[3]) {
    static const char* names[3] = {"X", "W", "gamma"};
    Pb node;
    for (int i = 0; i < 3; ++i) node.bytes(1, missing[i] ? "" : names[i]);
    node.bytes(2, "Y").bytes(3, "bitlinear").bytes(4, "BitLinear").bytes(7, "edgebit");
    Pb graph;
    graph.msg(1, node).bytes(2, "fuzz");
    for (int i = 0; i < 3; ++i)
        if (!missing[i]) graph.msg(11, value_info(names[i], types[i], dims[i]));
    graph.msg(12, value_info("Y", 1, nullptr));
    Pb opset, edge, model;
    opset.bytes(1, "").num(2, 17);
    edge.bytes(1, "edgebit").num(2, 1);
    model.num(1, 8).msg(8, opset).msg(8, edge).bytes(2, "edgebit-fuzz").msg(7, graph);
    return model.b;
}

OrtSession* make_session(const std::string& bytes, int threads) {
    OrtSessionOptions* opts = nullptr;
    check(g_api->CreateSessionOptions(&opts), "CreateSessionOptions");
    check(g_api->SetIntraOpNumThreads(opts, threads), "SetIntraOpNumThreads");
    check(g_api->SetSessionGraphOptimizationLevel(opts, ORT_DISABLE_ALL), "SetSessionGraphOptimizationLevel");
    // Spinning pool threads on a shared 2-core machine turn a microsecond Run into seconds.
    check(g_api->AddSessionConfigEntry(opts, "session.intra_op.allow_spinning", "0"), "AddSessionConfigEntry");
    check(RegisterCustomOps(opts, OrtGetApiBase()), "RegisterCustomOps");
    OrtSession* session = nullptr;
    OrtStatus* st = g_api->CreateSessionFromArray(g_env, bytes.data(), bytes.size(), opts, &session);
    g_api->ReleaseSessionOptions(opts);
    if (st != nullptr) {  // e.g. a graph ONNX Runtime itself rejects (missing input): a clean error
        g_api->ReleaseStatus(st);
        return nullptr;
    }
    return session;
}

// Sessions without declared shapes depend only on dtypes, missing inputs and threads: cached.
std::map<std::tuple<int, int, int, int, int>, OrtSession*> g_sessions;

const int kTypes[] = {1 /*float*/, 2 /*uint8*/, 3 /*int8*/, 6 /*int32*/, 7 /*int64*/, 10 /*float16*/,
                      11 /*double*/, 9 /*bool*/};
size_t elem_size(int t) {
    switch (t) {
        case 2: case 3: case 9: return 1;
        case 10: return 2;
        case 7: case 11: return 8;
        default: return 4;
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    g_api = OrtGetApiBase()->GetApi(ORT_API_VERSION);
    check(g_api->CreateEnv(ORT_LOGGING_LEVEL_FATAL, "edgebit-fuzz", &g_env), "CreateEnv");
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Reader r(data, size);
    const uint8_t flags = r.u8();
    // Mostly the right dtypes (so the kernel runs), sometimes any.
    int types[3] = {1, 2, 1};
    if (flags & 1) {  // one input's dtype at a time: few distinct graphs, so cached sessions serve most inputs
        const uint8_t pick = r.u8();
        types[pick % 3] = kTypes[(pick / 3) % (sizeof kTypes / sizeof kTypes[0])];
    }
    bool missing[3] = {false, false, false};
    if ((flags & 6) == 6) missing[r.u8() % 3] = true;
    // A new session per input costs ~100x a Run: declared shapes (our shape-inference path) are 1 in 32.
    const bool declare = (flags & 0x18) == 0x18 && r.u8() % 8 == 0;
    const int threads = 1 + ((flags >> 5) & 1);

    // Shapes: consistent ones mostly, then perturbed (rank, a dim, an empty dim).
    // Small shapes (M <= 9, N <= 40, K <= 384) keep the reference check cheap (the kernel target covers N chunks).
    const int64_t K = fuzz::pick_k(r.u8()), N = r.u8() % 41;
    std::vector<int64_t> xs;
    const int lead = r.u8() % 3;
    for (int i = 0; i < lead; ++i) xs.push_back(r.u8() % 4);
    xs.push_back(K);
    std::vector<int64_t> shapes[3] = {xs, {N, fuzz::row_bytes(K)}, {N}};
    const uint8_t perturb = r.u8();
    if (perturb & 0x80) {
        std::vector<int64_t>& s = shapes[perturb % 3];
        switch ((perturb >> 2) % 5) {
            case 0: s.push_back(1 + r.u8() % 3); break;
            case 1: if (!s.empty()) s.pop_back(); break;
            case 2: if (!s.empty()) s[r.u8() % s.size()] = r.u8() % 300; break;  // a mismatched dim or packed width
            case 3: s.clear(); break;
            default: if (!s.empty()) s[0] = 0; break;
        }
    }
    size_t count[3];
    for (int i = 0; i < 3; ++i) {
        count[i] = 1;
        for (int64_t d : shapes[i]) count[i] *= size_t(d);
        if (count[i] * elem_size(types[i]) > (1u << 22)) return 0;  // keep runs fast
    }

    const std::vector<int64_t>* dims[3] = {nullptr, nullptr, nullptr};
    std::vector<int64_t> declared[3];
    OrtSession* session = nullptr;
    bool owned = false;
    if (declare) {
        for (int i = 0; i < 3; ++i) {
            declared[i] = shapes[i];
            if (!declared[i].empty() && (perturb & 1)) declared[i][0] = -1;  // symbolic
            dims[i] = &declared[i];
        }
        session = make_session(model_bytes(types, dims, missing), threads);
        owned = true;
    } else {
        auto key = std::make_tuple(types[0] * 64 + types[1], types[2], missing[0] * 4 + missing[1] * 2 + missing[2],
                                   threads, 0);
        if (g_sessions.size() >= 64 && g_sessions.find(key) == g_sessions.end()) {  // bound memory
            for (auto& kv : g_sessions)
                if (kv.second) g_api->ReleaseSession(kv.second);
            g_sessions.clear();
        }
        auto it = g_sessions.find(key);
        if (it == g_sessions.end())
            it = g_sessions.emplace(key, make_session(model_bytes(types, dims, missing), threads)).first;
        session = it->second;
    }
    if (session == nullptr) return 0;

    // Input tensors from the fuzz bytes.
    std::vector<uint8_t> buf[3];
    std::vector<float> xf;
    for (int i = 0; i < 3; ++i) {
        buf[i].resize(count[i] * elem_size(types[i]) + 1);
        if (i == 0 && types[0] == 1) {
            xf.resize(count[0]);
            fuzz::make_activations(r, xf);
            if (count[0]) memcpy(buf[0].data(), xf.data(), count[0] * 4);
        } else {
            r.fill(buf[i].data(), buf[i].size());
        }
    }
    if (types[2] == 1)  // finite, positive gammas keep outputs comparable
        for (size_t n = 0; n < count[2]; ++n) {
            const float g = float(1 + buf[2][4 * n] % 64) / 16.0f;
            memcpy(&buf[2][4 * n], &g, 4);
        }
    OrtMemoryInfo* mem = nullptr;
    check(g_api->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mem), "CreateCpuMemoryInfo");
    static const char* names[3] = {"X", "W", "gamma"};
    std::vector<const char*> in_names;
    std::vector<OrtValue*> in_values;
    for (int i = 0; i < 3; ++i) {
        if (missing[i]) continue;
        OrtValue* v = nullptr;
        check(g_api->CreateTensorWithDataAsOrtValue(mem, buf[i].data(), count[i] * elem_size(types[i]),
                                                    shapes[i].data(), shapes[i].size(),
                                                    ONNXTensorElementDataType(types[i]), &v),
              "CreateTensorWithDataAsOrtValue");
        in_names.push_back(names[i]);
        in_values.push_back(v);
    }
    const char* out_name = "Y";
    OrtValue* out = nullptr;
    OrtStatus* st = g_api->Run(session, nullptr, in_names.data(), in_values.data(), in_values.size(), &out_name, 1, &out);

    const bool valid = types[0] == 1 && types[1] == 2 && types[2] == 1 && !missing[0] && !missing[1] &&
                       !missing[2] && !shapes[0].empty() && shapes[0].back() > 0 && shapes[1].size() == 2 &&
                       shapes[1][1] == fuzz::row_bytes(shapes[0].back()) && shapes[2].size() == 1 &&
                       shapes[2][0] == shapes[1][0];
    if (st != nullptr) {
        const std::string msg = g_api->GetErrorMessage(st);
        g_api->ReleaseStatus(st);
        if (valid && !declare) fuzz::fail(("valid input rejected: " + msg).c_str(), 0, 0, 0);
        if (msg.empty()) fuzz::fail("error without a message", 0, 0, 0);
    } else {
        if (!valid && !missing[0] && !missing[1] && !missing[2]) fuzz::fail("invalid input accepted", perturb, types[0], types[1]);
        if (valid) {
            const int64_t Kx = shapes[0].back(), Nw = shapes[1][0];
            const int64_t M = int64_t(count[0]) / Kx;
            float* y = nullptr;
            check(g_api->GetTensorMutableData(out, reinterpret_cast<void**>(&y)), "GetTensorMutableData");
            const uint8_t* w = buf[1].data();
            const float* g = reinterpret_cast<const float*>(buf[2].data());
            std::vector<int8_t> q(static_cast<size_t>(Kx));
            for (int64_t m = 0; m < M; ++m) {
                float s = 0;
                fuzz::ref_quantize(&xf[size_t(m * Kx)], Kx, q.data(), &s);
                for (int64_t n = 0; n < Nw; ++n)
                    if (!fuzz::same_float(y[m * Nw + n], fuzz::ref_out(fuzz::ref_acc(q.data(), w, Kx, 0, n), s, g[n])))
                        fuzz::fail("output differs from the reference", m, n, Kx);
            }
        }
        g_api->ReleaseValue(out);
    }
    for (OrtValue* v : in_values) g_api->ReleaseValue(v);
    g_api->ReleaseMemoryInfo(mem);
    if (owned) g_api->ReleaseSession(session);
    return 0;
}
