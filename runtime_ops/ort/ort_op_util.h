// Shared by the ONNX Runtime ops of libedgebit_ort.so (edgebit_ort_ops.cpp): dims and dtype names for error
// messages, and ONNX Runtime's intra-op pool as an edgebit_parallel_for_fn.
#ifndef EDGEBIT_ORT_OP_UTIL_H
#define EDGEBIT_ORT_OP_UTIL_H

#include <onnxruntime_cxx_api.h>

#include <string>
#include <vector>

#include "edgebit_kernels.h"

namespace {

inline std::string dims_str(const std::vector<int64_t>& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
    return s + "]";
}

inline const char* type_name(ONNXTensorElementDataType t) {
    switch (t) {
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: return "float32";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8: return "uint8";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8: return "int8";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16: return "uint16";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16: return "int16";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: return "int32";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: return "int64";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16: return "float16";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16: return "bfloat16";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE: return "float64";
        case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: return "bool";
        default: return "another type";
    }
}

// ---- ONNX Runtime's intra-op pool as an edgebit_parallel_for_fn ----------------------------

struct OrtPool {
    const OrtApi* api;
    const OrtKernelContext* ctx;
};

struct Trampoline {
    edgebit_task_fn task;
    void* task_ctx;
};

inline void run_task(void* p, size_t i) {
    const Trampoline* t = static_cast<const Trampoline*>(p);
    t->task(t->task_ctx, static_cast<int64_t>(i));
}

// ORT's KernelContext_ParallelFor (API 17+) fails only before running anything (no context);
// then, or without the entry, every task runs here on the calling thread.
inline void ort_parallel_for(void* pool_ctx, int64_t n_tasks, edgebit_task_fn task, void* task_ctx) {
    const OrtPool* pool = static_cast<const OrtPool*>(pool_ctx);
    if (n_tasks > 1 && pool->api->KernelContext_ParallelFor != nullptr) {
        Trampoline t = {task, task_ctx};
        OrtStatus* st = pool->api->KernelContext_ParallelFor(
            pool->ctx, run_task, static_cast<size_t>(n_tasks), 0, &t);
        if (st == nullptr) return;
        pool->api->ReleaseStatus(st);
    }
    for (int64_t i = 0; i < n_tasks; ++i) task(task_ctx, i);
}

}  // namespace

#endif  // EDGEBIT_ORT_OP_UTIL_H
