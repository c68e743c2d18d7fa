// The "QLinear" op of libedgebit_ort.so (included once, by edgebit_ort_ops.cpp, after BitLinear): the LM head's
// own GEMV on int8 or 4-bit weights (edgebit_qlinear_f32, runtime_ops/kernels). Schema (docs/ops.md):
//   domain "edgebit", op type "QLinear", since version 1, CPU execution provider
//   attribute bits   int, 8 or 4
//   inputs   0 X      float32 [..., K]
//            1 W      uint8   [N, edgebit_qlinear_row_bytes(K, bits)]  (edgebit_kernels.h: Kp = ceil(K/128)*128
//                                bytes a row for bits 8, Kp/2 + Kp/32 for bits 4)
//            2 scale  float32 [N]
//   output   0 Y      float32 [..., N] = ((float)acc / s[m]) * scale[n], X quantized per row to int8.
#ifndef EDGEBIT_ORT_QLINEAR_OP_H
#define EDGEBIT_ORT_QLINEAR_OP_H

namespace {

constexpr const char* kQLinearName = "QLinear";
constexpr const char* kQInputNames[] = {"X", "W", "scale"};

OrtStatus* qfail(const std::string& what) {
    return Ort::GetApi().CreateStatus(ORT_INVALID_ARGUMENT, (std::string("edgebit.QLinear: ") + what).c_str());
}

struct QLinearKernel {
    int32_t bits;

    OrtStatusPtr ComputeV2(OrtKernelContext* context) {
        try {
            return compute(context);
        } catch (const std::exception& e) {
            return qfail(std::string("unexpected error: ") + e.what());
        }
    }

    OrtStatusPtr compute(OrtKernelContext* context) {
        Ort::KernelContext ctx(context);
        if (ctx.GetInputCount() != 3) return qfail("expects 3 inputs (X, W, scale)");
        const ONNXTensorElementDataType want[3] = {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                                   ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8,
                                                   ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT};
        Ort::ConstValue in[3] = {ctx.GetInput(0), ctx.GetInput(1), ctx.GetInput(2)};
        std::vector<int64_t> shape[3];
        for (size_t i = 0; i < 3; ++i) {
            const std::string name = "input " + std::to_string(i) + " '" + kQInputNames[i] + "' ";
            if (!in[i] || !in[i].IsTensor()) return qfail(name + "is missing");
            Ort::TensorTypeAndShapeInfo info = in[i].GetTensorTypeAndShapeInfo();
            if (info.GetElementType() != want[i])
                return qfail(name + "must be " + type_name(want[i]) + ", got " + type_name(info.GetElementType()));
            shape[i] = info.GetShape();
        }
        const std::vector<int64_t>& xs = shape[0];
        if (xs.empty()) return qfail("input 0 'X' must have rank >= 1 ([..., K]), got a scalar");
        const int64_t K = xs.back();
        const int64_t max_k = EDGEBIT_QLINEAR_MAX_K(bits);
        if (K <= 0 || K > max_k)
            return qfail("input 0 'X' last dim K=" + std::to_string(K) + " must be in [1, " + std::to_string(max_k) +
                         "] for bits=" + std::to_string(bits));
        const int64_t row_bytes = edgebit_qlinear_row_bytes(K, bits);
        if (shape[1].size() != 2 || shape[1][1] != row_bytes)
            return qfail("input 1 'W' must be [N, " + std::to_string(row_bytes) + "] for K=" + std::to_string(K) +
                         " and bits=" + std::to_string(bits) + ", got " + dims_str(shape[1]));
        const int64_t N = shape[1][0];
        if (shape[2].size() != 1 || shape[2][0] != N)
            return qfail("input 2 'scale' must be [N] = [" + std::to_string(N) + "], got " + dims_str(shape[2]));
        int64_t M = 1;
        for (size_t d = 0; d + 1 < xs.size(); ++d) M *= xs[d];
        std::vector<int64_t> ys = xs;
        ys.back() = N;
        Ort::UnownedValue out = ctx.GetOutput(0, ys);
        if (M == 0 || N == 0) return nullptr;
        OrtPool pool = {&Ort::GetApi(), context};
        edgebit_threading threads = {ort_parallel_for, &pool, 0};
        const int st = edgebit_qlinear_f32(in[0].GetTensorData<float>(), M, K, in[1].GetTensorData<uint8_t>(), N,
                                           bits, in[2].GetTensorData<float>(), out.GetTensorMutableData<float>(),
                                           &threads);
        if (st != EDGEBIT_OK) return qfail(std::string("kernel failed: ") + edgebit_last_error());
        return nullptr;
    }
};

struct QLinearOp : Ort::CustomOpBase<QLinearOp, QLinearKernel, /*WithStatus=*/true> {
    QLinearOp() { InferOutputShapeFn = infer_output_shape; }  // BitLinear's: Y = [..., W.shape[0]]
    OrtStatusPtr CreateKernelV2(const OrtApi& api, const OrtKernelInfo* info, void** kernel) const {
        int64_t bits = 0;
        if (OrtStatus* st = api.KernelInfoGetAttribute_int64(info, "bits", &bits)) {
            api.ReleaseStatus(st);
            return qfail("attribute 'bits' (4 or 8) is missing");
        }
        if (bits != 4 && bits != 8) return qfail("attribute 'bits' must be 4 or 8, got " + std::to_string(bits));
        QLinearKernel* k = new (std::nothrow) QLinearKernel();
        if (k == nullptr) return qfail("out of memory creating the kernel");
        k->bits = static_cast<int32_t>(bits);
        *kernel = k;
        return nullptr;
    }
    const char* GetName() const { return kQLinearName; }
    const char* GetExecutionProviderType() const { return "CPUExecutionProvider"; }
    size_t GetInputTypeCount() const { return 3; }
    ONNXTensorElementDataType GetInputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
    size_t GetOutputTypeCount() const { return 1; }
    ONNXTensorElementDataType GetOutputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT; }
};

}  // namespace

#endif  // EDGEBIT_ORT_QLINEAR_OP_H
