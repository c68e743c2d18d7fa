// ExecuTorch kernel library libedgebit_executorch.so: registration only (edgebit::bitlinear.out and
// edgebit::rms_bitlinear.out, the same after the RMSNorm in front of it (edgebit_ternary_linear_f32_rmsnorm),
// edgebit::relu2_bitlinear.out, the ReLU^2 GLU's down projection with the gate product and sub-norm fused in
// (edgebit_ternary_linear_f32_relu2), and edgebit::qlinear.out, edgebit::cache_write.out, the in-place KV cache
// write, and edgebit::attention.out, the attention over that cache, and edgebit::rope.out, at the end). The
// arithmetic is the kernel core's edgebit_ternary_linear_f32_channels (runtime_ops/kernels), linked from the same
// objects as every other edgebit library; threads are ExecuTorch's threadpool (executorch::extension::parallel_for).
//
// Op schema, written once in edgebit/ops/torch_ops.py (also in docs/ops.md):
//   edgebit::bitlinear.out(Tensor x, Tensor w_packed, Tensor gamma, *, Tensor(a!) out) -> Tensor(a!)
//   x     float32 [..., K]   rank >= 1; M = product of the leading dims (may be 0); any K >= 1
//   w     uint8   [N, Kp/4]  packed ternary layout v2 (edgebit_kernels.h): Kp = ceil(K/128)*128, rows padded to
//                            whole 128-weight blocks
//   gamma float32 [N]        one scale per output channel
//   out   float32 [..., N]   resized here (dynamic shapes)
//   out[m, n] = ((float)acc[m, n] / s[m]) * gamma[n]; bit-exact to edgebit.model.reference.ternary_linear.
//
// Bad arguments log a message naming the argument and what was expected, and fail the call through the
// KernelRuntimeContext (Error::InvalidArgument): Method::execute returns that error, nothing aborts.
#include <executorch/extension/kernel_util/make_boxed_from_unboxed_functor.h>
#include <executorch/runtime/kernel/kernel_includes.h>
#include <executorch/runtime/kernel/thread_parallel_interface.h>

#include <stdint.h>
#include <string.h>

#include "edgebit_kernels.h"

namespace {

using executorch::aten::ArrayRef;
using executorch::aten::ScalarType;
using executorch::aten::SizesType;
using executorch::aten::Tensor;
using executorch::runtime::Error;
using executorch::runtime::KernelRuntimeContext;
using executorch::runtime::kTensorDimensionLimit;

// ExecuTorch's threadpool as an edgebit_parallel_for_fn: one work item per task, grain 1 (the kernel
// core already splits N into chunks of EDGEBIT_N_CHUNK rows). parallel_for fails only on a bad range,
// before running anything; then every task runs here on the calling thread.
void et_parallel_for(void*, int64_t n_tasks, edgebit_task_fn task, void* task_ctx) {
    if (n_tasks > 1) {
        const bool ok = executorch::extension::parallel_for(
            0, n_tasks, 1, [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) task(task_ctx, i);
            });
        if (ok) return;
    }
    for (int64_t i = 0; i < n_tasks; ++i) task(task_ctx, i);
}

// The kernel reads every tensor as contiguous row-major memory. A program may hand it a tensor in another dim
// order (e.g. w_packed stored transposed, a channels-last x): that is refused, not read as garbage. A tensor
// without a dim order array is ExecuTorch's default (contiguous).
bool default_dim_order(const Tensor& t) {
    const auto order = t.dim_order();
    return order.data() == nullptr ||
           executorch::runtime::is_contiguous_dim_order(order.data(), order.size());
}

#define EDGEBIT_CHECK(cond, fmt, ...) \
    ET_KERNEL_CHECK_MSG(ctx, cond, InvalidArgument, out, "%s: " fmt, op, ##__VA_ARGS__)

// bitlinear.out, and rms_bitlinear.out with norm_w (its fused input RMSNorm, edgebit_rms_norm_rows) non-null;
// relu2: relu2_bitlinear.out, x [..., 2K] = [gate | up] and norm_w the sub-norm.
Tensor& linear_out(const char* op, KernelRuntimeContext& ctx, const Tensor& x, const Tensor* norm_w, float eps,
                   const Tensor& w, const Tensor& gamma, Tensor& out, bool relu2 = false) {
    EDGEBIT_CHECK(x.scalar_type() == ScalarType::Float, "x must be float32 [..., K], got dtype %d",
                  static_cast<int>(x.scalar_type()));
    EDGEBIT_CHECK(w.scalar_type() == ScalarType::Byte,
                  "w_packed must be uint8 [N, ceil(K/128)*32] (packed ternary layout v2), got dtype %d",
                  static_cast<int>(w.scalar_type()));
    EDGEBIT_CHECK(gamma.scalar_type() == ScalarType::Float, "gamma must be float32 [N], got dtype %d",
                  static_cast<int>(gamma.scalar_type()));
    EDGEBIT_CHECK(out.scalar_type() == ScalarType::Float, "out must be float32, got dtype %d",
                  static_cast<int>(out.scalar_type()));
    EDGEBIT_CHECK(default_dim_order(x), "x must be contiguous (default dim order), got a permuted dim order");
    EDGEBIT_CHECK(default_dim_order(w), "w_packed must be contiguous (default dim order), got a permuted dim order");
    EDGEBIT_CHECK(default_dim_order(gamma), "gamma must be contiguous (default dim order), got a permuted dim order");
    EDGEBIT_CHECK(default_dim_order(out), "out must be contiguous (default dim order), got a permuted dim order");
    EDGEBIT_CHECK(x.dim() >= 1, "x must have rank >= 1 ([..., K]), got rank 0");
    EDGEBIT_CHECK(!relu2 || x.size(x.dim() - 1) % 2 == 0, "gate_up must be [..., 2K] ([gate | up]), got an odd last "
                  "dim %lld", static_cast<long long>(x.size(x.dim() - 1)));
    const int64_t K = relu2 ? x.size(x.dim() - 1) / 2 : x.size(x.dim() - 1);  // relu2: the down projection's K
    EDGEBIT_CHECK(K > 0 && K <= EDGEBIT_MAX_K, "x's last dim K=%lld must be in [1, %lld]",
                  static_cast<long long>(K), static_cast<long long>(EDGEBIT_MAX_K));
    EDGEBIT_CHECK(w.dim() == 2, "w_packed must be 2-D [N, ceil(K/128)*32], got rank %d", static_cast<int>(w.dim()));
    const int64_t N = w.size(0);
    const int64_t row_bytes = EDGEBIT_PACKED_ROW_BYTES(K);
    EDGEBIT_CHECK(w.size(1) == row_bytes,
                  "w_packed must be [N, ceil(K/128)*32] = [N, %lld] for K=%lld (x's last dim; packed layout v%d), "
                  "got [%lld, %lld]",
                  static_cast<long long>(row_bytes), static_cast<long long>(K), EDGEBIT_LAYOUT_VERSION,
                  static_cast<long long>(N), static_cast<long long>(w.size(1)));
    EDGEBIT_CHECK(gamma.dim() == 1 && gamma.size(0) == N,
                  "gamma must be [N] = [%lld] (one scale per row of w_packed), got rank %d, %lld elements",
                  static_cast<long long>(N), static_cast<int>(gamma.dim()),
                  static_cast<long long>(gamma.numel()));
    if (norm_w != nullptr) {
        EDGEBIT_CHECK(norm_w->scalar_type() == ScalarType::Float && default_dim_order(*norm_w) && norm_w->dim() == 1 &&
                          norm_w->size(0) == K,
                      "norm_weight must be contiguous float32 [K] = [%lld] (x's last dim), got dtype %d, rank %d, "
                      "%lld elements",
                      static_cast<long long>(K), static_cast<int>(norm_w->scalar_type()),
                      static_cast<int>(norm_w->dim()), static_cast<long long>(norm_w->numel()));
    }

    SizesType sizes[kTensorDimensionLimit];
    const size_t rank = static_cast<size_t>(x.dim());
    EDGEBIT_CHECK(rank <= kTensorDimensionLimit, "x has rank %d, more than ExecuTorch's limit",
                  static_cast<int>(rank));
    // M = product of the leading dims. An empty x may still carry huge dims next to its zero one (found by
    // runtime_ops/fuzz/fuzz_et_op), whose product overflows int64: any zero dim makes M 0 before multiplying,
    // and a product past int64 (only possible with a numel ExecuTorch itself wrapped) is refused.
    int64_t M = 1;
    bool empty = false, overflow = false;
    for (size_t d = 0; d + 1 < rank; ++d) {
        sizes[d] = x.size(d);
        empty = empty || x.size(d) == 0;
    }
    for (size_t d = 0; d + 1 < rank && !empty; ++d) overflow = overflow || __builtin_mul_overflow(M, x.size(d), &M);
    if (empty) M = 0;
    EDGEBIT_CHECK(!overflow, "x's leading dims multiply past int64 (M overflows)");
    sizes[rank - 1] = static_cast<SizesType>(N);
    const Error resized = executorch::runtime::resize_tensor(out, ArrayRef<SizesType>(sizes, rank));
    EDGEBIT_CHECK(resized == Error::Ok,
                  "cannot resize out (rank %d) to x's leading dims + [N=%lld]: out needs x's rank and, if its "
                  "shape is static, exactly that shape, else a planned size at least that large",
                  static_cast<int>(out.dim()), static_cast<long long>(N));
    if (M == 0 || N == 0) return out;

    edgebit_threading threads = {et_parallel_for, nullptr, 0};
    const float* xp = x.const_data_ptr<float>();
    const uint8_t* wp = w.const_data_ptr<uint8_t>();
    const float* gp = gamma.const_data_ptr<float>();
    float* yp = out.mutable_data_ptr<float>();
    const float* nw = norm_w != nullptr ? norm_w->const_data_ptr<float>() : nullptr;
    const int st = relu2 ? edgebit_ternary_linear_f32_relu2(xp, M, K, nw, eps, wp, N, gp, yp, &threads)
                   : nw != nullptr ? edgebit_ternary_linear_f32_rmsnorm(xp, M, K, nw, eps, wp, N, gp, yp, &threads)
                                   : edgebit_ternary_linear_f32_channels(xp, M, K, wp, N, gp, yp, &threads);
    ET_KERNEL_CHECK_MSG(ctx, st == EDGEBIT_OK, Internal, out, "%s: kernel failed: %s", op, edgebit_last_error());
    return out;
}

Tensor& bitlinear_out(KernelRuntimeContext& ctx, const Tensor& x, const Tensor& w, const Tensor& gamma,
                      Tensor& out) {
    return linear_out("edgebit::bitlinear.out", ctx, x, nullptr, 0.0f, w, gamma, out);
}

// The ternary linear after its input RMSNorm (schema in edgebit/ops/torch_rms_bitlinear.py): the norm the ONNX
// BitLinear takes as its norm_weight input. eps arrives as a double (a schema float) and is used as a float, as the
// reference adds it to an fp32 tensor.
Tensor& rms_bitlinear_out(KernelRuntimeContext& ctx, const Tensor& x, const Tensor& norm_weight, double eps,
                          const Tensor& w, const Tensor& gamma, Tensor& out) {
    return linear_out("edgebit::rms_bitlinear.out", ctx, x, &norm_weight, static_cast<float>(eps), w, gamma, out);
}

// BitNet's ReLU^2 GLU down projection (schema in edgebit/ops/torch_relu2_bitlinear.py): gate_up [..., 2K] as the
// gate/up linear wrote it, relu(gate)^2 * up and the sub-norm computed in the kernel (edgebit_ternary_linear_f32_relu2)
// right before the quantization: no split, relu, mul or norm calls between the two linears.
Tensor& relu2_bitlinear_out(KernelRuntimeContext& ctx, const Tensor& gate_up, const Tensor& norm_weight, double eps,
                            const Tensor& w, const Tensor& gamma, Tensor& out) {
    return linear_out("edgebit::relu2_bitlinear.out", ctx, gate_up, &norm_weight, static_cast<float>(eps), w, gamma,
                      out, true);
}

#undef EDGEBIT_CHECK
#define EDGEBIT_CHECK(cond, fmt, ...)                                                      \
    ET_KERNEL_CHECK_MSG(ctx, cond, InvalidArgument, out, "edgebit::qlinear.out: " fmt, \
                        ##__VA_ARGS__)

// The LM head's own GEMV (edgebit_qlinear_f32): schema in edgebit/ops/torch_qlinear.py and docs/ops.md.
Tensor& qlinear_out(KernelRuntimeContext& ctx, const Tensor& x, const Tensor& w, const Tensor& scale, int64_t bits,
                    Tensor& out) {
    EDGEBIT_CHECK(bits == 4 || bits == 8, "bits must be 4 or 8, got %lld", static_cast<long long>(bits));
    EDGEBIT_CHECK(x.scalar_type() == ScalarType::Float, "x must be float32 [..., K], got dtype %d",
                  static_cast<int>(x.scalar_type()));
    EDGEBIT_CHECK(w.scalar_type() == ScalarType::Byte, "w must be uint8 [N, row bytes], got dtype %d",
                  static_cast<int>(w.scalar_type()));
    EDGEBIT_CHECK(scale.scalar_type() == ScalarType::Float, "scale must be float32 [N], got dtype %d",
                  static_cast<int>(scale.scalar_type()));
    EDGEBIT_CHECK(out.scalar_type() == ScalarType::Float, "out must be float32, got dtype %d",
                  static_cast<int>(out.scalar_type()));
    EDGEBIT_CHECK(default_dim_order(x) && default_dim_order(w) && default_dim_order(scale) && default_dim_order(out),
                  "x, w, scale and out must be contiguous (default dim order)");
    EDGEBIT_CHECK(x.dim() >= 1 && static_cast<size_t>(x.dim()) <= kTensorDimensionLimit,
                  "x must have rank 1..%d ([..., K]), got rank %d", static_cast<int>(kTensorDimensionLimit),
                  static_cast<int>(x.dim()));
    const int64_t K = x.size(x.dim() - 1);
    EDGEBIT_CHECK(K > 0 && K <= EDGEBIT_QLINEAR_MAX_K(bits), "x's last dim K=%lld must be in [1, %lld] for bits=%lld",
                  static_cast<long long>(K), static_cast<long long>(EDGEBIT_QLINEAR_MAX_K(bits)),
                  static_cast<long long>(bits));
    const int64_t row_bytes = edgebit_qlinear_row_bytes(K, static_cast<int32_t>(bits));
    EDGEBIT_CHECK(w.dim() == 2 && w.size(1) == row_bytes, "w must be [N, %lld] for K=%lld and bits=%lld",
                  static_cast<long long>(row_bytes), static_cast<long long>(K), static_cast<long long>(bits));
    const int64_t N = w.size(0);
    EDGEBIT_CHECK(scale.dim() == 1 && scale.size(0) == N, "scale must be [N] = [%lld]", static_cast<long long>(N));
    SizesType sizes[kTensorDimensionLimit];
    const size_t rank = static_cast<size_t>(x.dim());
    int64_t M = 1;
    bool overflow = false;
    for (size_t d = 0; d + 1 < rank; ++d) {
        sizes[d] = x.size(d);
        overflow = overflow || __builtin_mul_overflow(M, x.size(d), &M);
    }
    EDGEBIT_CHECK(!overflow, "x's leading dims multiply past int64 (M overflows)");
    sizes[rank - 1] = static_cast<SizesType>(N);
    EDGEBIT_CHECK(executorch::runtime::resize_tensor(out, ArrayRef<SizesType>(sizes, rank)) == Error::Ok,
                  "cannot resize out to x's leading dims + [N=%lld]", static_cast<long long>(N));
    if (M == 0 || N == 0) return out;
    edgebit_threading threads = {et_parallel_for, nullptr, 0};
    const int st = edgebit_qlinear_f32(x.const_data_ptr<float>(), M, K, w.const_data_ptr<uint8_t>(), N,
                                       static_cast<int32_t>(bits), scale.const_data_ptr<float>(),
                                       out.mutable_data_ptr<float>(), &threads);
    ET_KERNEL_CHECK_MSG(ctx, st == EDGEBIT_OK, Internal, out, "edgebit::qlinear.out: kernel failed: %s",
                        edgebit_last_error());
    return out;
}

#undef EDGEBIT_CHECK
#define EDGEBIT_CHECK(cond, fmt, ...)                                                          \
    ET_KERNEL_CHECK_MSG(ctx, cond, InvalidArgument, out, "edgebit::cache_write.out: " fmt, \
                        ##__VA_ARGS__)

// The KV cache written in place: cache.index_copy_(dim, input_pos, value) (edgebit/ops/torch_cache.py, docs/ops.md);
// a float16 cache gets value rounded to nearest even (edgebit_f32_to_f16, as torch's .half()); an int8 cache (rows
// along the last dim, dim the one before it) gets each row of value quantized to D codes and its float32 scale's 4
// bytes (edgebit_f32_to_q8_row: the cache's last dim is value's + 4).
// The program passes the cache buffer itself as `cache`, so nothing else is copied; `out` is a one-element
// placeholder the schema needs, left as it is. Positions come from the runner's input_pos: each is checked against
// the cache's length before anything is written, so a bad one fails the call with the cache untouched.
Tensor& cache_write_out(KernelRuntimeContext& ctx, const Tensor& value, Tensor& cache, const Tensor& input_pos,
                        int64_t dim, Tensor& out) {
    const bool q8 = cache.scalar_type() == ScalarType::Char;
    EDGEBIT_CHECK(value.scalar_type() == ScalarType::Float &&
                      (cache.scalar_type() == ScalarType::Float || cache.scalar_type() == ScalarType::Half || q8),
                  "value must be float32 and cache float32, float16 or int8, got dtypes %d and %d",
                  static_cast<int>(value.scalar_type()), static_cast<int>(cache.scalar_type()));
    EDGEBIT_CHECK(input_pos.scalar_type() == ScalarType::Long && input_pos.dim() == 1,
                  "input_pos must be int64 [T], got dtype %d of rank %d", static_cast<int>(input_pos.scalar_type()),
                  static_cast<int>(input_pos.dim()));
    EDGEBIT_CHECK(default_dim_order(value) && default_dim_order(cache) && default_dim_order(input_pos),
                  "value, cache and input_pos must be contiguous (default dim order)");
    const int64_t rank = cache.dim();
    EDGEBIT_CHECK(dim >= 0 && dim < rank, "dim=%lld must be in [0, %lld) (cache's rank)", static_cast<long long>(dim),
                  static_cast<long long>(rank));
    EDGEBIT_CHECK(value.dim() == rank, "value must have cache's rank %lld, got %d", static_cast<long long>(rank),
                  static_cast<int>(value.dim()));
    EDGEBIT_CHECK(!q8 || (dim == rank - 2 && cache.size(rank - 1) == value.size(rank - 1) + 4),
                  "an int8 cache is written along dim = rank - 2 = %lld with rows of value's last dim + 4 (the codes "
                  "and a float32 scale), got dim=%lld and last dims %lld, %lld", static_cast<long long>(rank - 2),
                  static_cast<long long>(dim), static_cast<long long>(cache.size(rank - 1)),
                  static_cast<long long>(value.size(rank - 1)));
    const int64_t T = input_pos.size(0);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < rank; ++d) {
        if (d == dim || (q8 && d == rank - 1)) {
            if (d != dim) inner *= value.size(d);  // the int8 rows: value's D floats each
            continue;
        }
        EDGEBIT_CHECK(value.size(d) == cache.size(d), "value's dim %lld is %lld, cache's is %lld (they must agree "
                      "except along dim=%lld)", static_cast<long long>(d), static_cast<long long>(value.size(d)),
                      static_cast<long long>(cache.size(d)), static_cast<long long>(dim));
        (d < dim ? outer : inner) *= cache.size(d);
    }
    EDGEBIT_CHECK(value.size(dim) == T, "value's dim %lld must be T = %lld (input_pos's length), got %lld",
                  static_cast<long long>(dim), static_cast<long long>(T), static_cast<long long>(value.size(dim)));
    const int64_t S = cache.size(dim);
    const int64_t* pos = input_pos.const_data_ptr<int64_t>();
    for (int64_t t = 0; t < T; ++t)
        EDGEBIT_CHECK(pos[t] >= 0 && pos[t] < S, "input_pos[%lld] = %lld is outside the cache's %lld positions",
                      static_cast<long long>(t), static_cast<long long>(pos[t]), static_cast<long long>(S));
    const float* src = value.const_data_ptr<float>();
    if (q8) {
        int8_t* dst = static_cast<int8_t*>(cache.mutable_data_ptr());
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t t = 0; t < T; ++t)
                edgebit_f32_to_q8_row(src + (o * T + t) * inner, inner, dst + (o * S + pos[t]) * (inner + 4));
        return out;
    }
    if (cache.scalar_type() == ScalarType::Half) {
        uint16_t* dst = static_cast<uint16_t*>(cache.mutable_data_ptr());
        for (int64_t o = 0; o < outer; ++o)
            for (int64_t t = 0; t < T; ++t) edgebit_f32_to_f16(src + (o * T + t) * inner, inner, dst + (o * S + pos[t]) * inner);
        return out;
    }
    float* dst = cache.mutable_data_ptr<float>();
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t t = 0; t < T; ++t)
            memcpy(dst + (o * S + pos[t]) * inner, src + (o * T + t) * inner, static_cast<size_t>(inner) * sizeof(float));
    return out;
}

#undef EDGEBIT_CHECK
#define EDGEBIT_CHECK(cond, fmt, ...)                                                        \
    ET_KERNEL_CHECK_MSG(ctx, cond, InvalidArgument, out, "edgebit::attention.out: " fmt, \
                        ##__VA_ARGS__)

// Attention over the KV cache, reading only the positions each query may see (edgebit/ops/torch_attention.py,
// docs/ops.md): the kernel core's edgebit_attention_f32 (or _f16kv for float16 caches, _q8kv for int8 ones). q
// [1, T, Hq, D], caches [1, Hkv, S, D] (int8: [1, Hkv, S, D + 4], rows of codes and a float32 scale), input_pos [T]
// -> out [1, T, Hq * D]. Positions are checked against S here, before anything is read.
Tensor& attention_out(KernelRuntimeContext& ctx, const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                      const Tensor& input_pos, double scale, Tensor& out) {
    const bool half = k_cache.scalar_type() == ScalarType::Half, q8 = k_cache.scalar_type() == ScalarType::Char;
    EDGEBIT_CHECK(q.scalar_type() == ScalarType::Float && (half || q8 || k_cache.scalar_type() == ScalarType::Float) &&
                      v_cache.scalar_type() == k_cache.scalar_type() && out.scalar_type() == ScalarType::Float,
                  "q and out must be float32, k_cache and v_cache both float32, both float16 or both int8, got dtypes "
                  "%d, %d, %d, %d",
                  static_cast<int>(q.scalar_type()), static_cast<int>(k_cache.scalar_type()),
                  static_cast<int>(v_cache.scalar_type()), static_cast<int>(out.scalar_type()));
    EDGEBIT_CHECK(input_pos.scalar_type() == ScalarType::Long && input_pos.dim() == 1,
                  "input_pos must be int64 [T], got dtype %d of rank %d", static_cast<int>(input_pos.scalar_type()),
                  static_cast<int>(input_pos.dim()));
    EDGEBIT_CHECK(default_dim_order(q) && default_dim_order(k_cache) && default_dim_order(v_cache) &&
                      default_dim_order(input_pos) && default_dim_order(out),
                  "q, k_cache, v_cache, input_pos and out must be contiguous (default dim order)");
    EDGEBIT_CHECK(q.dim() == 4 && q.size(0) == 1, "q must be [1, T, Hq, D], got rank %d", static_cast<int>(q.dim()));
    EDGEBIT_CHECK(k_cache.dim() == 4 && k_cache.size(0) == 1 && v_cache.dim() == 4 && v_cache.size(0) == 1,
                  "k_cache and v_cache must be [1, Hkv, S, D], got ranks %d and %d", static_cast<int>(k_cache.dim()),
                  static_cast<int>(v_cache.dim()));
    const int64_t T = q.size(1), Hq = q.size(2), D = q.size(3), Hkv = k_cache.size(1), S = k_cache.size(2);
    for (int d = 1; d < 4; ++d)
        EDGEBIT_CHECK(v_cache.size(d) == k_cache.size(d), "v_cache's dim %d is %lld, k_cache's is %lld (they must "
                      "have one shape)", d, static_cast<long long>(v_cache.size(d)),
                      static_cast<long long>(k_cache.size(d)));
    EDGEBIT_CHECK(k_cache.size(3) == (q8 ? D + 4 : D), "the caches' last dim %lld must be q's D = %lld%s",
                  static_cast<long long>(k_cache.size(3)), static_cast<long long>(D), q8 ? " + 4 (int8 rows)" : "");
    EDGEBIT_CHECK(Hkv > 0 && Hq % Hkv == 0, "q's %lld heads must be a multiple of the caches' %lld",
                  static_cast<long long>(Hq), static_cast<long long>(Hkv));
    EDGEBIT_CHECK(input_pos.size(0) == T, "input_pos must have T = %lld entries (q's dim 1), got %lld",
                  static_cast<long long>(T), static_cast<long long>(input_pos.size(0)));
    const int64_t* pos = input_pos.const_data_ptr<int64_t>();
    for (int64_t t = 0; t < T; ++t)
        EDGEBIT_CHECK(pos[t] >= 0 && pos[t] < S, "input_pos[%lld] = %lld is outside the cache's %lld positions",
                      static_cast<long long>(t), static_cast<long long>(pos[t]), static_cast<long long>(S));
    const SizesType sizes[3] = {1, static_cast<SizesType>(T), static_cast<SizesType>(Hq * D)};
    EDGEBIT_CHECK(executorch::runtime::resize_tensor(out, ArrayRef<SizesType>(sizes, 3)) == Error::Ok,
                  "cannot resize out to [1, %lld, %lld]", static_cast<long long>(T), static_cast<long long>(Hq * D));
    if (T == 0 || Hq == 0 || D == 0) return out;
    edgebit_threading threads = {et_parallel_for, nullptr, 0};
    const int st =
        q8 ? edgebit_attention_q8kv(q.const_data_ptr<float>(), T, Hq, k_cache.const_data_ptr<int8_t>(),
                                    v_cache.const_data_ptr<int8_t>(), Hkv, S, D, pos, 0, static_cast<float>(scale),
                                    out.mutable_data_ptr<float>(), &threads)
        : half ? edgebit_attention_f16kv(q.const_data_ptr<float>(), T, Hq,
                                       static_cast<const uint16_t*>(k_cache.const_data_ptr()),
                                       static_cast<const uint16_t*>(v_cache.const_data_ptr()), Hkv, S, D, pos, 0,
                                       static_cast<float>(scale), out.mutable_data_ptr<float>(), &threads)
             : edgebit_attention_f32(q.const_data_ptr<float>(), T, Hq, k_cache.const_data_ptr<float>(),
                                     v_cache.const_data_ptr<float>(), Hkv, S, D, pos, 0, static_cast<float>(scale),
                                     out.mutable_data_ptr<float>(), &threads);
    ET_KERNEL_CHECK_MSG(ctx, st == EDGEBIT_OK, Internal, out, "edgebit::attention.out: kernel failed: %s",
                        edgebit_last_error());
    return out;
}

#undef EDGEBIT_CHECK
#define EDGEBIT_CHECK(cond, fmt, ...)                                                   \
    ET_KERNEL_CHECK_MSG(ctx, cond, InvalidArgument, out, "edgebit::rope.out: " fmt, \
                        ##__VA_ARGS__)

// Rotate-half RoPE of x [1, T, H, D] by each position's cos, sin [T, 1, D] (edgebit_rope_f32): schema in
// edgebit/ops/torch_rope.py.
Tensor& rope_out(KernelRuntimeContext& ctx, const Tensor& x, const Tensor& cos, const Tensor& sin, Tensor& out) {
    EDGEBIT_CHECK(x.scalar_type() == ScalarType::Float && cos.scalar_type() == ScalarType::Float &&
                      sin.scalar_type() == ScalarType::Float && out.scalar_type() == ScalarType::Float,
                  "x, cos, sin and out must be float32");
    EDGEBIT_CHECK(default_dim_order(x) && default_dim_order(cos) && default_dim_order(sin) && default_dim_order(out),
                  "x, cos, sin and out must be contiguous (default dim order)");
    EDGEBIT_CHECK(x.dim() == 4 && x.size(0) == 1 && x.size(3) % 2 == 0, "x must be [1, T, H, D] with D even, got rank %d",
                  static_cast<int>(x.dim()));
    const int64_t T = x.size(1), H = x.size(2), D = x.size(3);
    EDGEBIT_CHECK(cos.dim() == 3 && cos.size(0) == T && cos.size(1) == 1 && cos.size(2) == D && sin.dim() == 3 &&
                      sin.size(0) == T && sin.size(1) == 1 && sin.size(2) == D,
                  "cos and sin must be [T, 1, D] = [%lld, 1, %lld]", static_cast<long long>(T),
                  static_cast<long long>(D));
    EDGEBIT_CHECK(executorch::runtime::resize_tensor(out, x.sizes()) == Error::Ok, "cannot resize out to x's shape");
    if (x.numel() == 0) return out;
    edgebit_rope_f32(x.const_data_ptr<float>(), T, H, D, cos.const_data_ptr<float>(), sin.const_data_ptr<float>(),
                     out.mutable_data_ptr<float>());
    return out;
}

}  // namespace

EXECUTORCH_LIBRARY(edgebit, "bitlinear.out", bitlinear_out);
EXECUTORCH_LIBRARY(edgebit, "rms_bitlinear.out", rms_bitlinear_out);
EXECUTORCH_LIBRARY(edgebit, "relu2_bitlinear.out", relu2_bitlinear_out);
EXECUTORCH_LIBRARY(edgebit, "qlinear.out", qlinear_out);
EXECUTORCH_LIBRARY(edgebit, "cache_write.out", cache_write_out);
EXECUTORCH_LIBRARY(edgebit, "attention.out", attention_out);
EXECUTORCH_LIBRARY(edgebit, "rope.out", rope_out);
