// ONNX Runtime custom-op library libedgebit_ort.so: registration only (ops BitLinear, below, and QLinear,
// qlinear_op.h). The arithmetic is the
// kernel core's edgebit_ternary_linear_f32_channels (runtime_ops/kernels), linked from the
// same objects as every other edgebit library; threads are ONNX Runtime's intra-op pool.
//
// Op schema (also in docs/ops.md):
//   domain "edgebit", op type "BitLinear", since version 1, CPU execution provider
//   inputs   0 X      float32 [..., K]    rank >= 1; M = product of the leading dims (may be 0); any K >= 1
//            1 W      uint8   [N, Kp/4]   packed ternary layout v2 (edgebit_kernels.h): Kp = ceil(K/128)*128,
//                                         rows padded to whole 128-weight blocks
//            2 gamma  float32 [N]         one scale per output channel
//            3 norm_weight float32 [K]    optional: the RMSNorm that feeds this linear, fused in
//   attribute norm_eps float              with norm_weight: the norm's epsilon (required then)
//   attribute relu2_gate int              1: X is [..., 2K] = [gate | up] (the gate/up node's output) and the
//                                         linear's input is relu(gate)^2 * up (before the norm, if any)
//   output   0 Y      float32 [..., N]
//   Y[m, n] = ((float)acc[m, n] / s[m]) * gamma[n], acc = x_q[m] . W_t[n] exact in int32, where
//   x_q, s = per-row int8 quantization of X, or of edgebit_rms_norm_rows(X, norm_weight, norm_eps)
//   (edgebit_quantize_rows); bit-exact to edgebit.model.reference.ternary_linear (after its rms_norm).
//   Linears sharing an input (q/k/v, gate/up) are one node on concatenated W and gamma: one
//   activation quantization (and one norm).
//
// Bad inputs (dtype, rank, shapes) give an error status naming the op, the input and what was
// expected, when the node runs. (Inputs are declared with any element type so a wrong dtype gets
// this message too; with fixed types ORT only says "Input1 ... is invalid".)
#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

#include <dlfcn.h>
#include <stdio.h>

#include <exception>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "edgebit_kernels.h"
#include "ort_op_util.h"

namespace {

constexpr const char* kDomain = "edgebit";
constexpr const char* kOpName = "BitLinear";
constexpr const char* kInputNames[] = {"X", "W", "gamma", "norm_weight"};
constexpr ONNXTensorElementDataType kInputTypes[] = {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                                     ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8,
                                                     ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                                     ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT};
constexpr const char* kInputExpect[] = {"float32 [..., K]",
                                        "uint8 [N, ceil(K/128)*32] (packed ternary layout v2)",
                                        "float32 [N]", "float32 [K]"};

OrtStatus* fail(const std::string& what) {
    const std::string msg = std::string(kDomain) + "." + kOpName + ": " + what;
    return Ort::GetApi().CreateStatus(ORT_INVALID_ARGUMENT, msg.c_str());
}

OrtStatus* input_error(size_t i, const std::string& what) {
    return fail("input " + std::to_string(i) + " '" + kInputNames[i] + "' " + what);
}

// ---- the kernel --------------------------------------------------------------------------

struct BitLinearKernel {
    bool has_eps = false;  // the node's norm_eps attribute (its fused RMSNorm's epsilon), if it has one
    float norm_eps = 0.0f;
    bool relu2_gate = false;  // relu2_gate = 1: X holds [gate | up], the linear reads relu(gate)^2 * up

    OrtStatusPtr ComputeV2(OrtKernelContext* context) {
        try {
            return compute(context);
        } catch (const Ort::Exception& e) {
            return fail(e.what());
        } catch (const std::exception& e) {
            return fail(std::string("unexpected error: ") + e.what());
        }
    }

    OrtStatusPtr compute(OrtKernelContext* context) {
        Ort::KernelContext ctx(context);
        const size_t n_in = ctx.GetInputCount();
        if (n_in != 3 && n_in != 4) return fail("expects 3 or 4 inputs (X, W, gamma[, norm_weight])");
        Ort::ConstValue in[4] = {ctx.GetInput(0), ctx.GetInput(1), ctx.GetInput(2),
                                 n_in == 4 ? ctx.GetInput(3) : Ort::ConstValue(nullptr)};
        const bool normed = n_in == 4 && in[3];  // an optional input left empty ("") is no norm
        if (normed && !has_eps) return fail("input 3 'norm_weight' needs the float attribute norm_eps");
        std::vector<int64_t> shape[4];
        for (size_t i = 0; i < (normed ? 4u : 3u); ++i) {
            if (!in[i] || !in[i].IsTensor())
                return input_error(i, std::string("is missing; expected ") + kInputExpect[i]);
            Ort::TensorTypeAndShapeInfo info = in[i].GetTensorTypeAndShapeInfo();
            if (info.GetElementType() != kInputTypes[i])
                return input_error(i, std::string("must be ") + kInputExpect[i] + ", got " +
                                          type_name(info.GetElementType()));
            shape[i] = info.GetShape();
        }
        const std::vector<int64_t>& xs = shape[0];
        const std::vector<int64_t>& ws = shape[1];
        const std::vector<int64_t>& gs = shape[2];
        if (xs.empty()) return input_error(0, "must have rank >= 1 ([..., K]), got a scalar (rank 0)");
        if (relu2_gate && xs.back() % 2 != 0)
            return input_error(0, "must be [..., 2K] ([gate | up], relu2_gate=1), got an odd last dim " + dims_str(xs));
        const int64_t K = relu2_gate ? xs.back() / 2 : xs.back();
        if (K <= 0 || K > EDGEBIT_MAX_K)
            return input_error(0, "last dim K=" + std::to_string(K) + " must be in [1, " +
                                      std::to_string(EDGEBIT_MAX_K) + "], X shape " + dims_str(xs));
        if (ws.size() != 2)
            return input_error(1, "must be 2-D [N, ceil(K/128)*32], got rank " + std::to_string(ws.size()) +
                                      " " + dims_str(ws));
        const int64_t N = ws[0];
        const int64_t row_bytes = EDGEBIT_PACKED_ROW_BYTES(K);
        if (ws[1] != row_bytes)
            return input_error(1, "must be [N, ceil(K/128)*32] = [N, " + std::to_string(row_bytes) + "] for K=" +
                                      std::to_string(K) + " (X's last dim; packed layout v" +
                                      std::to_string(EDGEBIT_LAYOUT_VERSION) + "), got " + dims_str(ws));
        if (gs.size() != 1 || gs[0] != N)
            return input_error(2, "must be [N] = [" + std::to_string(N) + "] (one scale per row of W), got " +
                                      dims_str(gs));
        if (normed && (shape[3].size() != 1 || shape[3][0] != K))
            return input_error(3, "must be [K] = [" + std::to_string(K) +
                                      "] (X's last dim, or half of it with relu2_gate), got " + dims_str(shape[3]));
        int64_t M = 1;
        for (size_t d = 0; d + 1 < xs.size(); ++d) M *= xs[d];
        std::vector<int64_t> ys = xs;
        ys.back() = N;
        Ort::UnownedValue out = ctx.GetOutput(0, ys);
        if (M == 0 || N == 0) return nullptr;
        OrtPool pool = {&Ort::GetApi(), context};
        edgebit_threading threads = {ort_parallel_for, &pool, 0};
        const float* x = in[0].GetTensorData<float>();
        const uint8_t* w = in[1].GetTensorData<uint8_t>();
        const float* gamma = in[2].GetTensorData<float>();
        float* y = out.GetTensorMutableData<float>();
        const float* norm_w = normed ? in[3].GetTensorData<float>() : nullptr;
        const int st = relu2_gate ? edgebit_ternary_linear_f32_relu2(x, M, K, norm_w, norm_eps, w, N, gamma, y, &threads)
                       : normed   ? edgebit_ternary_linear_f32_rmsnorm(x, M, K, norm_w, norm_eps, w, N, gamma, y, &threads)
                                  : edgebit_ternary_linear_f32_channels(x, M, K, w, N, gamma, y, &threads);
        if (st != EDGEBIT_OK) return fail(std::string("kernel failed: ") + edgebit_last_error());
        return nullptr;
    }
};

OrtStatusPtr ORT_API_CALL infer_output_shape(const OrtCustomOp*, OrtShapeInferContext* ctx);

struct BitLinearOp : Ort::CustomOpBase<BitLinearOp, BitLinearKernel, /*WithStatus=*/true> {
    // Our own shape function on the C API: Ort::ShapeInferContext cannot tell an unknown rank
    // from rank 0 and does not expose element types.
    BitLinearOp() { InferOutputShapeFn = infer_output_shape; }
    OrtStatusPtr CreateKernelV2(const OrtApi& api, const OrtKernelInfo* info, void** kernel) const {
        BitLinearKernel* k = new (std::nothrow) BitLinearKernel();
        if (k == nullptr) return fail("out of memory creating the kernel");
        if (OrtStatus* st = api.KernelInfoGetAttribute_float(info, "norm_eps", &k->norm_eps))
            api.ReleaseStatus(st);  // no attribute: a node without a fused norm
        else
            k->has_eps = true;
        int64_t gate = 0;
        if (OrtStatus* st = api.KernelInfoGetAttribute_int64(info, "relu2_gate", &gate)) api.ReleaseStatus(st);
        if (gate != 0 && gate != 1) {
            delete k;
            return fail("attribute relu2_gate must be 0 or 1, got " + std::to_string(gate));
        }
        k->relu2_gate = gate == 1;
        *kernel = k;
        return nullptr;
    }
    const char* GetName() const { return kOpName; }
    const char* GetExecutionProviderType() const { return "CPUExecutionProvider"; }
    size_t GetInputTypeCount() const { return 4; }
    OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t i) const {
        return i == 3 ? INPUT_OUTPUT_OPTIONAL : INPUT_OUTPUT_REQUIRED;
    }
    // Any type here, so a wrong dtype reaches the kernel and gets our message.
    ONNXTensorElementDataType GetInputType(size_t) const {
        return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    }
    size_t GetOutputTypeCount() const { return 1; }
    ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

}  // namespace

#include "qlinear_op.h"
#include "attention_op.h"

namespace {

// Y's shape [..., N] for the graph, when X's rank and W's dims are known (symbolic names kept).
// ONNX Runtime ignores (and never frees) a status returned from here, so this reports nothing:
// it releases its own statuses and leaves Y's shape unknown when anything is off; the kernel
// checks dtypes and shapes at run time with messages.
OrtStatus* infer_output_shape_impl(const OrtApi& api, OrtShapeInferContext* ctx) {
    size_t n_inputs = 0;
    if (OrtStatus* st = api.ShapeInferContext_GetInputCount(ctx, &n_inputs)) return st;
    if (n_inputs != 3 && n_inputs != 4) return nullptr;  // X, W, gamma (norm_weight does not shape Y)
    std::vector<int64_t> shape[3];
    std::vector<const char*> sym[3];  // symbolic dim names ("" if none), owned by ORT
    for (size_t i = 0; i < 3; ++i) {
        OrtTensorTypeAndShapeInfo* info = nullptr;  // owned by ORT: not released here
        if (OrtStatus* st = api.ShapeInferContext_GetInputTypeShape(ctx, i, &info)) return st;
        ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
        size_t rank = 0;
        if (OrtStatus* st = api.GetTensorElementType(info, &type)) return st;
        if (type != kInputTypes[i]) return nullptr;
        if (OrtStatus* st = api.GetDimensionsCount(info, &rank)) return st;
        shape[i].resize(rank);
        sym[i].assign(rank, nullptr);
        if (rank == 0) continue;
        if (OrtStatus* st = api.GetDimensions(info, shape[i].data(), rank)) return st;
        if (OrtStatus* st = api.GetSymbolicDimensions(info, sym[i].data(), rank)) return st;
    }
    // An unknown rank also reads as rank 0 here.
    if (shape[0].empty() || shape[1].size() != 2) return nullptr;
    std::vector<int64_t> ys = shape[0];
    std::vector<const char*> ysym = sym[0];
    ys.back() = shape[1][0];  // -1 (unknown) stays unknown
    ysym.back() = sym[1][0];
    for (const char*& name : ysym)
        if (name == nullptr) name = "";
    OrtTensorTypeAndShapeInfo* out = nullptr;
    if (OrtStatus* st = api.CreateTensorTypeAndShapeInfo(&out)) return st;
    OrtStatus* st = api.SetTensorElementType(out, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT);
    if (st == nullptr) st = api.SetDimensions(out, ys.data(), ys.size());
    if (st == nullptr) st = api.SetSymbolicDimensions(out, ysym.data(), ysym.size());
    if (st == nullptr) st = api.ShapeInferContext_SetOutputTypeShape(ctx, 0, out);
    api.ReleaseTensorTypeAndShapeInfo(out);
    return st;
}

OrtStatusPtr ORT_API_CALL infer_output_shape(const OrtCustomOp*, OrtShapeInferContext* ctx) {
    const OrtApi& api = Ort::GetApi();
    if (OrtStatus* st = infer_output_shape_impl(api, ctx)) api.ReleaseStatus(st);
    return nullptr;
}

// Lives for the library's life: ORT calls RegisterCustomOps once per session and keeps
// pointers to the domain and op in every session created with it.
std::once_flag g_once;
Ort::CustomOpDomain* g_domain = nullptr;
BitLinearOp* g_op = nullptr;
QLinearOp* g_qop = nullptr;
AttentionOp* g_aop = nullptr;
std::string g_init_error;

void init_domain() {
    // The domain and its op live as long as the process (ONNX Runtime needs them to outlive every session that
    // registered them, and sessions of several engines share them), so the library that holds their code does
    // too: RTLD_NODELETE keeps it mapped when ONNX Runtime closes its handle (and LeakSanitizer can name them).
    Dl_info self;
    if (dladdr(reinterpret_cast<void*>(&init_domain), &self) && self.dli_fname)
        dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
    try {
        g_op = new BitLinearOp();
        g_domain = new Ort::CustomOpDomain(kDomain);
        g_domain->Add(g_op);
        g_qop = new QLinearOp();
        g_domain->Add(g_qop);
        g_aop = new AttentionOp();
        g_domain->Add(g_aop);
    } catch (const std::exception& e) {
        g_init_error = e.what();
        g_domain = nullptr;
    }
}

}  // namespace

extern "C" __attribute__((visibility("default"))) OrtStatus* ORT_API_CALL
RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* api_base) {
    const OrtApi* api = api_base ? api_base->GetApi(ORT_API_VERSION) : nullptr;
    if (api == nullptr) {
        // This runtime predates the API the library was built for; report with the oldest API.
        const OrtApi* old = api_base ? api_base->GetApi(1) : nullptr;
        if (old == nullptr) return nullptr;
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "libedgebit_ort: needs ONNX Runtime with C API version >= %d, this runtime is %s",
                 ORT_API_VERSION, api_base->GetVersionString());
        return old->CreateStatus(ORT_FAIL, msg);
    }
    // Once per process: every session that registers the library (one per engine; several engines run on
    // their own threads) would otherwise rewrite the global API pointer while other sessions' kernels read it
    // (ThreadSanitizer, tests/engine/test_engine_threads.py).
    static std::once_flag api_once;
    std::call_once(api_once, [api] { Ort::InitApi(api); });
    std::call_once(g_once, init_domain);
    if (g_domain == nullptr)
        return api->CreateStatus(ORT_FAIL, ("libedgebit_ort: cannot create the edgebit op domain: " +
                                            g_init_error).c_str());
    return api->AddCustomOpDomain(options, *g_domain);
}
