// The "Attention" op of libedgebit_ort.so (included once, by edgebit_ort_ops.cpp): the KV cache updated in place
// and attended over by edgebit_attention_f32 (runtime_ops/kernels), reading only the positions each query sees.
// Schema (docs/ops.md):
//   domain "edgebit", op type "Attention", since version 1, CPU execution provider
//   attributes num_heads, kv_num_heads (ints; num_heads a multiple of kv_num_heads), scale (float)
//   inputs  0 query       float32 [B, T, num_heads * D]      (RoPE applied)
//           1 key         float32 [B, T, kv_num_heads * D]   (RoPE applied)
//           2 value       float32 [B, T, kv_num_heads * D]
//           3 past_key    float32 or float16 [B, kv_num_heads, L, D], or int8 [B, kv_num_heads, L, D + 4] (the
//           4 past_value  cache's type: both the same; int8 rows are D codes then the row's float32 scale)
//           5 total_len   int64 [1]: P + T, the attention mask's width (P = positions already cached)
//           6 key_start   int64 [B]: each row's first real position (its left padding before it)
//           7 cos         float32 [B, T, D], optional (with 8): RoPE applied here to query and key (edgebit_rope_f32,
//           8 sin         float32 [B, T, D]  the reference's apply_rope), each position's angles; then 0 and 1 are
//                                            the projections before RoPE
//   outputs 0 out           float32 [B, T, num_heads * D]
//           1 present_key   the cache's type [B, kv_num_heads, max(L, P + T), D (+ 4 for int8)]
//           2 present_value the cache's type [B, kv_num_heads, max(L, P + T), D (+ 4 for int8)]
// The T new keys and values go to positions P .. P+T-1 of present. When a runner binds present to past's own
// buffer (L = max_seq_len, onnxruntime-genai's past_present_share_buffer, edgebit's engine), only those rows are
// written; otherwise present gets a copy of past's first P rows first. Query t of row b (position P + t) attends
// to keys key_start[b] .. P + t; a query before key_start (padding) gets zeros. An fp16 cache gets the new rows
// rounded to nearest even (edgebit_f32_to_f16) and is read by edgebit_attention_f16kv; an int8 cache gets each new row
// quantized (edgebit_f32_to_q8_row: scale max|x| / 127) and is read by edgebit_attention_q8kv. q and the output stay
// fp32.
#ifndef EDGEBIT_ORT_ATTENTION_OP_H
#define EDGEBIT_ORT_ATTENTION_OP_H

#include <string.h>

namespace {

constexpr const char* kAttentionName = "Attention";

OrtStatus* afail(const std::string& what) {
    return Ort::GetApi().CreateStatus(ORT_INVALID_ARGUMENT, (std::string("edgebit.Attention: ") + what).c_str());
}

struct AttentionKernel {
    int64_t num_heads, kv_num_heads;
    float scale;

    OrtStatusPtr ComputeV2(OrtKernelContext* context) {
        try {
            return compute(context);
        } catch (const std::exception& e) {
            return afail(std::string("unexpected error: ") + e.what());
        }
    }

    OrtStatusPtr compute(OrtKernelContext* context) {
        static const char* const names[9] = {"query", "key", "value", "past_key", "past_value", "total_len",
                                             "key_start", "cos", "sin"};
        Ort::KernelContext ctx(context);
        const size_t n_in = ctx.GetInputCount();
        if (n_in != 7 && n_in != 9) return afail("expects 7 or 9 inputs (query, key, value, past_key, past_value, "
                                                 "total_len, key_start[, cos, sin])");
        const bool rope = n_in == 9;
        Ort::ConstValue in[9];
        std::vector<int64_t> shape[9];
        for (size_t i = 0; i < n_in; ++i) {
            in[i] = ctx.GetInput(i);
            const std::string name = "input " + std::to_string(i) + " '" + names[i] + "' ";
            if (!in[i] || !in[i].IsTensor()) return afail(name + "is missing");
            Ort::TensorTypeAndShapeInfo info = in[i].GetTensorTypeAndShapeInfo();
            const ONNXTensorElementDataType got = info.GetElementType();
            const bool cache = i == 3 || i == 4;
            const ONNXTensorElementDataType want = i < 3 || i > 6 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT
                                                   : i < 5        ? got
                                                                  : ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64;
            if (cache && got != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT && got != ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 &&
                got != ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8)
                return afail(name + "must be float32, float16 or int8, got " + type_name(got));
            if (got != want) return afail(name + "must be " + type_name(want) + ", got " + type_name(got));
            shape[i] = info.GetShape();
        }
        const ONNXTensorElementDataType kind = in[3].GetTensorTypeAndShapeInfo().GetElementType();
        if (in[4].GetTensorTypeAndShapeInfo().GetElementType() != kind)
            return afail(std::string("input 4 'past_value' must be ") + type_name(kind) + " as input 3 'past_key' is, got " +
                         type_name(in[4].GetTensorTypeAndShapeInfo().GetElementType()));
        const bool half = kind == ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, q8 = kind == ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8;
        const std::vector<int64_t>& qs = shape[0];
        if (qs.size() != 3 || qs[2] % num_heads != 0)
            return afail("input 0 'query' must be [B, T, num_heads * D] with num_heads=" + std::to_string(num_heads) +
                         ", got " + dims_str(qs));
        const int64_t B = qs[0], T = qs[1], D = qs[2] / num_heads;
        const std::vector<int64_t> kv_new = {B, T, kv_num_heads * D};
        for (size_t i = 1; i < 3; ++i)
            if (shape[i] != kv_new)
                return afail("input " + std::to_string(i) + " '" + names[i] + "' must be " + dims_str(kv_new) +
                             ", got " + dims_str(shape[i]));
        const int64_t L = shape[3].size() == 4 ? shape[3][2] : -1;
        const int64_t W = q8 ? D + 4 : D;  // a cached row's elements: int8 rows carry their scale's 4 bytes
        const std::vector<int64_t> past = {B, kv_num_heads, L, W};
        for (size_t i = 3; i < 5; ++i)
            if (shape[i] != past)
                return afail("input " + std::to_string(i) + " '" + names[i] + "' must be [B, kv_num_heads, L, " +
                             (q8 ? "D + 4" : "D") + "] = " + dims_str(past) + ", got " + dims_str(shape[i]));
        if (shape[5] != std::vector<int64_t>{1})
            return afail("input 5 'total_len' must be [1], got " + dims_str(shape[5]));
        if (shape[6] != std::vector<int64_t>{B})
            return afail("input 6 'key_start' must be [B] = " + dims_str({B}) + ", got " + dims_str(shape[6]));
        for (size_t i = 7; rope && i < 9; ++i)
            if (shape[i] != std::vector<int64_t>{B, T, D} || D % 2 != 0)
                return afail("input " + std::to_string(i) + " '" + names[i] + "' must be [B, T, D] = " +
                             dims_str({B, T, D}) + " (D even), got " + dims_str(shape[i]));
        const int64_t total = in[5].GetTensorData<int64_t>()[0], P = total - T;
        if (P < 0 || P > L)
            return afail("total_len = " + std::to_string(total) + " must be in [T, L + T] = [" + std::to_string(T) +
                         ", " + std::to_string(L + T) + "] (T new positions after the P cached in past)");
        const int64_t* starts = in[6].GetTensorData<int64_t>();
        for (int64_t b = 0; b < B; ++b)
            if (starts[b] < 0 || (total > 0 && starts[b] >= total))
                return afail("key_start[" + std::to_string(b) + "] = " + std::to_string(starts[b]) +
                             " must be in [0, total_len = " + std::to_string(total) + ")");
        const int64_t S = L > total ? L : total;
        Ort::UnownedValue out = ctx.GetOutput(0, qs);
        const std::vector<int64_t> present = {B, kv_num_heads, S, W};
        Ort::UnownedValue pk = ctx.GetOutput(1, present), pv = ctx.GetOutput(2, present);
        if (B == 0 || T == 0 || D == 0) return nullptr;
        // The caches as bytes: elements of `esize` (4, 2 for fp16 bits, 1 for int8), W of them a row.
        const size_t esize = half ? 2 : q8 ? 1 : 4;
        char* cache[2] = {static_cast<char*>(pk.GetTensorMutableRawData()),
                          static_cast<char*>(pv.GetTensorMutableRawData())};
        const char* past_data[2] = {static_cast<const char*>(in[3].GetTensorRawData()),
                                    static_cast<const char*>(in[4].GetTensorRawData())};
        const float* fresh[2] = {in[1].GetTensorData<float>(), in[2].GetTensorData<float>()};
        const float* q = in[0].GetTensorData<float>();
        std::vector<float> q_roped, k_roped;  // with the fused RoPE: query and key rotated here, per batch row
        if (rope) {
            q_roped.resize(static_cast<size_t>(B * T * num_heads * D));
            k_roped.resize(static_cast<size_t>(B * T * kv_num_heads * D));
            const float* cos = in[7].GetTensorData<float>();
            const float* sin = in[8].GetTensorData<float>();
            for (int64_t b = 0; b < B; ++b) {
                edgebit_rope_f32(q + b * T * num_heads * D, T, num_heads, D, cos + b * T * D, sin + b * T * D,
                                 q_roped.data() + b * T * num_heads * D);
                edgebit_rope_f32(fresh[0] + b * T * kv_num_heads * D, T, kv_num_heads, D, cos + b * T * D,
                                 sin + b * T * D, k_roped.data() + b * T * kv_num_heads * D);
            }
            q = q_roped.data();
            fresh[0] = k_roped.data();
        }
        const size_t row = static_cast<size_t>(W) * esize;
        for (int c = 0; c < 2; ++c)
            for (int64_t b = 0; b < B; ++b)
                for (int64_t h = 0; h < kv_num_heads; ++h) {
                    char* dst = cache[c] + (b * kv_num_heads + h) * S * row;
                    // A present of its own (not past's buffer bound twice) starts as past's first P rows.
                    if (cache[c] != past_data[c] && P > 0)
                        memcpy(dst, past_data[c] + (b * kv_num_heads + h) * L * row, static_cast<size_t>(P) * row);
                    for (int64_t t = 0; t < T; ++t) {
                        const float* src = fresh[c] + ((b * T + t) * kv_num_heads + h) * D;
                        if (half)
                            edgebit_f32_to_f16(src, D, reinterpret_cast<uint16_t*>(dst + (P + t) * row));
                        else if (q8)
                            edgebit_f32_to_q8_row(src, D, reinterpret_cast<int8_t*>(dst + (P + t) * row));
                        else
                            memcpy(dst + (P + t) * row, src, row);
                    }
                }
        std::vector<int64_t> pos(static_cast<size_t>(T));
        for (int64_t t = 0; t < T; ++t) pos[t] = P + t;
        OrtPool pool = {&Ort::GetApi(), context};
        edgebit_threading threads = {ort_parallel_for, &pool, 0};
        float* y = out.GetTensorMutableData<float>();
        for (int64_t b = 0; b < B; ++b) {
            const char* kb = cache[0] + b * kv_num_heads * S * row;
            const char* vb = cache[1] + b * kv_num_heads * S * row;
            const float* qb = q + b * T * num_heads * D;
            float* yb = y + b * T * num_heads * D;
            const int st = half ? edgebit_attention_f16kv(qb, T, num_heads, reinterpret_cast<const uint16_t*>(kb),
                                                          reinterpret_cast<const uint16_t*>(vb), kv_num_heads, S, D,
                                                          pos.data(), starts[b], scale, yb, &threads)
                           : q8 ? edgebit_attention_q8kv(qb, T, num_heads, reinterpret_cast<const int8_t*>(kb),
                                                         reinterpret_cast<const int8_t*>(vb), kv_num_heads, S, D,
                                                         pos.data(), starts[b], scale, yb, &threads)
                                : edgebit_attention_f32(qb, T, num_heads, reinterpret_cast<const float*>(kb),
                                                        reinterpret_cast<const float*>(vb), kv_num_heads, S, D,
                                                        pos.data(), starts[b], scale, yb, &threads);
            if (st != EDGEBIT_OK) return afail(std::string("kernel failed: ") + edgebit_last_error());
        }
        return nullptr;
    }
};

// The outputs' types and shapes for the graph: out as query (float32), present_* as past_* (their element type, the
// cache's, with the sequence dim unknown: max(L, P + T)). ONNX Runtime needs this to type outputs whose type follows
// an input; like BitLinear's it reports nothing and leaves what it cannot read unset (the kernel checks at run time).
OrtStatus* infer_attention_outputs_impl(const OrtApi& api, OrtShapeInferContext* ctx) {
    size_t n_inputs = 0;
    if (OrtStatus* st = api.ShapeInferContext_GetInputCount(ctx, &n_inputs)) return st;
    if (n_inputs != 7 && n_inputs != 9) return nullptr;
    const size_t from[3] = {0, 3, 4};
    for (size_t o = 0; o < 3; ++o) {
        OrtTensorTypeAndShapeInfo* info = nullptr;  // owned by ORT
        if (OrtStatus* st = api.ShapeInferContext_GetInputTypeShape(ctx, from[o], &info)) return st;
        ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
        size_t rank = 0;
        if (OrtStatus* st = api.GetTensorElementType(info, &type)) return st;
        if (OrtStatus* st = api.GetDimensionsCount(info, &rank)) return st;
        std::vector<int64_t> dims(rank);
        std::vector<const char*> sym(rank, nullptr);
        if (rank > 0) {
            if (OrtStatus* st = api.GetDimensions(info, dims.data(), rank)) return st;
            if (OrtStatus* st = api.GetSymbolicDimensions(info, sym.data(), rank)) return st;
        }
        for (const char*& name : sym)
            if (name == nullptr) name = "";
        if (o > 0 && rank == 4) {
            dims[2] = -1;
            sym[2] = "";
        }
        OrtTensorTypeAndShapeInfo* out = nullptr;
        if (OrtStatus* st = api.CreateTensorTypeAndShapeInfo(&out)) return st;
        OrtStatus* st = api.SetTensorElementType(out, o == 0 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT : type);
        if (st == nullptr && rank > 0) st = api.SetDimensions(out, dims.data(), rank);
        if (st == nullptr && rank > 0) st = api.SetSymbolicDimensions(out, sym.data(), rank);
        if (st == nullptr) st = api.ShapeInferContext_SetOutputTypeShape(ctx, o, out);
        api.ReleaseTensorTypeAndShapeInfo(out);
        if (st != nullptr) return st;
    }
    return nullptr;
}

OrtStatusPtr ORT_API_CALL infer_attention_outputs(const OrtCustomOp*, OrtShapeInferContext* ctx) {
    const OrtApi& api = Ort::GetApi();
    if (OrtStatus* st = infer_attention_outputs_impl(api, ctx)) api.ReleaseStatus(st);
    return nullptr;
}

struct AttentionOp : Ort::CustomOpBase<AttentionOp, AttentionKernel, /*WithStatus=*/true> {
    AttentionOp() { InferOutputShapeFn = infer_attention_outputs; }
    OrtStatusPtr CreateKernelV2(const OrtApi& api, const OrtKernelInfo* info, void** kernel) const {
        int64_t heads = 0, kv_heads = 0;
        float scale = 0.0f;
        const char* missing = nullptr;
        if (OrtStatus* st = api.KernelInfoGetAttribute_int64(info, "num_heads", &heads)) {
            api.ReleaseStatus(st);
            missing = "num_heads";
        } else if (OrtStatus* st2 = api.KernelInfoGetAttribute_int64(info, "kv_num_heads", &kv_heads)) {
            api.ReleaseStatus(st2);
            missing = "kv_num_heads";
        } else if (OrtStatus* st3 = api.KernelInfoGetAttribute_float(info, "scale", &scale)) {
            api.ReleaseStatus(st3);
            missing = "scale";
        }
        if (missing) return afail(std::string("attribute '") + missing + "' is missing");
        if (heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0)
            return afail("attributes num_heads=" + std::to_string(heads) + " and kv_num_heads=" +
                         std::to_string(kv_heads) + " must be positive, num_heads a multiple of kv_num_heads");
        AttentionKernel* k = new (std::nothrow) AttentionKernel();
        if (k == nullptr) return afail("out of memory creating the kernel");
        k->num_heads = heads;
        k->kv_num_heads = kv_heads;
        k->scale = scale;
        *kernel = k;
        return nullptr;
    }
    const char* GetName() const { return kAttentionName; }
    const char* GetExecutionProviderType() const { return "CPUExecutionProvider"; }
    size_t GetInputTypeCount() const { return 9; }
    OrtCustomOpInputOutputCharacteristic GetInputCharacteristic(size_t i) const {
        return i >= 7 ? INPUT_OUTPUT_OPTIONAL : INPUT_OUTPUT_REQUIRED;  // cos, sin: the fused RoPE
    }
    ONNXTensorElementDataType GetInputType(size_t) const { return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED; }
    size_t GetOutputTypeCount() const { return 3; }
    // out float32; present_* the cache's type (past's), checked in compute.
    ONNXTensorElementDataType GetOutputType(size_t i) const {
        return i == 0 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT : ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
    }
};

}  // namespace

#endif  // EDGEBIT_ORT_ATTENTION_OP_H
