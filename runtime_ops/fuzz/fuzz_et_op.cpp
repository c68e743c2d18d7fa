// libFuzzer target for the ExecuTorch kernel edgebit::bitlinear.out through ExecuTorch's runtime (the
// executorch wheel's libexecutorch.so): the op's source is compiled into this program (instrumented), registers
// itself with EXECUTORCH_LIBRARY at start-up, and every input looks the kernel up by name and tensor metadata in
// the one kernel registry, exactly as Method::init does, then calls it with a KernelRuntimeContext on an EValue
// stack (x, w_packed, gamma, out, return value), as Method::execute does.
// Fuzzed: dtypes of all four tensors, ranks 0..9 (and 17, past ExecuTorch's dimension limit), shapes (random,
// mismatched K / N / gamma length or packed width, empty M, K of whole blocks or padded (layout v2), huge dims next
// to a zero one), dim orders,
// the out tensor's planned size and shape dynamism (STATIC, DYNAMIC_BOUND, DYNAMIC_UNBOUND), and ExecuTorch's
// threadpool at 1 or 2 threads.
// Every call must either fail cleanly (ctx.failure_state() != Ok with a logged message naming the op, out's
// buffer untouched) or succeed with out resized to [..., N] and equal to the reference (fuzz_common.h); never
// crash, hang or trip ASan/UBSan. Buffers are allocated at their exact byte size, so any write past the planned
// capacity of out is an ASan report.
#include <executorch/runtime/core/evalue.h>
#include <executorch/runtime/kernel/kernel_runtime_context.h>
#include <executorch/runtime/kernel/operator_registry.h>
#include <executorch/runtime/platform/platform.h>
#include <executorch/runtime/platform/runtime.h>

#include <algorithm>
#include <memory>
#include <string>

#include "fuzz_common.h"

// The wheel ships libexecutorch_threadpool.so but not threadpool.h: the two entry points used here, declared as
// ExecuTorch defines them (as runtime_ops/engine/decoder_et.cpp does).
namespace executorch::extension::threadpool {
class ThreadPool {
  public:
    bool _unsafe_reset_threadpool(uint32_t num_threads);
    size_t get_thread_count() const;
};
ThreadPool* get_threadpool();
}  // namespace executorch::extension::threadpool

namespace {

using executorch::aten::DimOrderType;
using executorch::aten::ScalarType;
using executorch::aten::SizesType;
using executorch::aten::StridesType;
using executorch::aten::Tensor;
using executorch::aten::TensorImpl;
using executorch::runtime::Error;
using executorch::runtime::EValue;
using executorch::runtime::KernelRuntimeContext;
using executorch::runtime::OpFunction;
using executorch::runtime::Span;
using executorch::runtime::TensorMeta;
using executorch::runtime::TensorShapeDynamism;

// Error-level messages logged during the current call (ExecuTorch's and the kernel's ET_KERNEL_CHECK_MSG).
std::string g_log;

constexpr const char* kOp = "edgebit::bitlinear.out";

const ScalarType kTypes[] = {ScalarType::Float, ScalarType::Byte,  ScalarType::Char,  ScalarType::Int,
                             ScalarType::Long,  ScalarType::Double, ScalarType::Half, ScalarType::Bool,
                             ScalarType::BFloat16};
size_t elem_size(ScalarType t) {
    switch (t) {
        case ScalarType::Byte: case ScalarType::Char: case ScalarType::Bool: return 1;
        case ScalarType::Half: case ScalarType::BFloat16: return 2;
        case ScalarType::Long: case ScalarType::Double: return 8;
        default: return 4;
    }
}

// Elements of a shape, or SIZE_MAX when that is more than `limit` (no overflow: a zero dim anywhere wins).
size_t count_of(const std::vector<SizesType>& s, size_t limit) {
    for (SizesType d : s)
        if (d == 0) return 0;
    size_t c = 1;
    for (SizesType d : s) {
        if (size_t(d) > limit / c) return SIZE_MAX;
        c *= size_t(d);
    }
    return c;
}

// One ExecuTorch tensor with its own sizes / dim order / strides arrays (resize writes into sizes and strides)
// and a heap buffer of exactly its planned byte size.
struct Fixture {
    std::vector<SizesType> sizes;
    std::vector<DimOrderType> order;
    std::vector<StridesType> strides;
    std::unique_ptr<uint8_t[]> data;
    size_t bytes = 0;
    std::unique_ptr<TensorImpl> impl;

    bool default_order() const {
        for (size_t i = 0; i < order.size(); ++i)
            if (order[i] != DimOrderType(i)) return false;
        return true;
    }
    // `swap` (when the rank allows) makes the dim order a non-default permutation; strides follow it.
    void make(ScalarType t, TensorShapeDynamism dyn, bool swap, size_t count) {
        const size_t rank = sizes.size();
        order.resize(rank);
        for (size_t i = 0; i < rank; ++i) order[i] = DimOrderType(i);
        if (swap && rank >= 2) std::swap(order[rank - 1], order[rank - 2]);
        strides.assign(rank, 1);
        int64_t st = 1;  // innermost first: order[rank-1] is the fastest-moving dim; huge dims saturate
        for (size_t i = rank; i-- > 0;) {
            strides[order[i]] = StridesType(st);
            st = std::min<int64_t>(st * std::max<SizesType>(sizes[order[i]], 1), INT32_MAX);
        }
        bytes = count * elem_size(t);
        data.reset(new uint8_t[bytes ? bytes : 1]);
        impl.reset(new TensorImpl(t, ssize_t(rank), sizes.data(), bytes ? data.get() : nullptr, order.data(),
                                  strides.data(), dyn));
    }
};

}  // namespace

// ExecuTorch logs through this weak PAL hook (to stderr by default); this program's definition overrides the
// library's, so a million calls print nothing and the messages can be checked.
extern "C" void et_pal_emit_log_message(et_timestamp_t, et_pal_log_level_t level, const char*, const char*, size_t,
                                        const char* message, size_t length) {
    if (level == kError && g_log.size() < 4096) g_log.append(message, length).append("\n");
}

#ifdef EDGEBIT_FUZZ_STATS
// Development aid (-DEDGEBIT_FUZZ_STATS): how often each outcome happened, printed at exit, to see that the
// kernel's error paths and its success path with threads are all reached.
#include <map>
static std::map<std::string, long> g_stats;
static void print_stats() {
    for (auto& kv : g_stats) fprintf(stderr, "%8ld  %s\n", kv.second, kv.first.c_str());
}
static void stat(const std::string& what) { ++g_stats[what]; }
#else
static void stat(const std::string&) {}
#endif

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    executorch::runtime::runtime_init();
#ifdef EDGEBIT_FUZZ_STATS
    atexit(print_stats);
#endif
    // The op registered itself from a static initializer of this program (EXECUTORCH_LIBRARY).
    if (!executorch::runtime::registry_has_op_function(kOp)) {
        fprintf(stderr, "fuzz_et_op: %s is not in ExecuTorch's kernel registry\n", kOp);
        abort();
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Reader r(data, size);
    const uint8_t flags = r.u8();
    const uint8_t more = r.u8();

    // ExecuTorch's threadpool at 1 or 2 threads; reset only on a change (it joins and recreates the workers).
    static uint32_t threads = 0;
    const uint32_t want = 1 + ((flags >> 5) & 1);
    if (want != threads) {
        auto* pool = executorch::extension::threadpool::get_threadpool();
        if (pool == nullptr || !pool->_unsafe_reset_threadpool(want) || pool->get_thread_count() != want) {
            fprintf(stderr, "fuzz_et_op: cannot set ExecuTorch's threadpool to %u threads\n", want);
            abort();
        }
        threads = want;
    }

    // Dtypes: mostly right (so the kernel runs), sometimes one of the four tensors gets any dtype.
    ScalarType types[4] = {ScalarType::Float, ScalarType::Byte, ScalarType::Float, ScalarType::Float};
    if (flags & 1) {
        const uint8_t pick = r.u8();
        types[pick % 4] = kTypes[(pick / 4) % (sizeof kTypes / sizeof kTypes[0])];
    }

    // Shapes: consistent ones mostly, then perturbed. Big N (two or three 64-row chunks, so the threadpool splits
    // the work) only with at most one leading dim, to keep the reference check cheap.
    const bool big_n = (flags & 0x40) != 0;
    const SizesType K = SizesType(fuzz::pick_k(r.u8()));
    const SizesType N = big_n ? 64 + r.u8() % 110 : r.u8() % 41;
    std::vector<SizesType> xs;
    const int lead = big_n ? r.u8() % 2 : r.u8() % 5;  // x rank 1..5
    for (int i = 0; i < lead; ++i) xs.push_back(r.u8() % 4);
    xs.push_back(K);
    std::vector<SizesType> shapes[3] = {xs, {N, SizesType(fuzz::row_bytes(K))}, {N}};
    const uint8_t perturb = r.u8();
    if (perturb & 0x80) {
        std::vector<SizesType>& s = shapes[perturb % 3];
        switch ((perturb >> 2) % 7) {
            case 0: s.push_back(1 + r.u8() % 3); break;                       // one more dim
            case 1: if (!s.empty()) s.pop_back(); break;                      // one fewer (rank 0 possible)
            case 2: if (!s.empty()) s[r.u8() % s.size()] = r.u8() % 300; break;  // a mismatched dim or packed width
            case 3: s.clear(); break;                                         // rank 0
            case 4: if (!s.empty()) s[0] = 0; break;                          // empty
            case 5:  // huge dims ahead of a zero one: an empty tensor whose dims multiply past int64
                s.insert(s.begin(), {0x7fffffff, 0x7fffffff, 0x7fffffff, 0});
                break;
            default: s.assign(17, 1); s.back() = K; break;  // rank 17: past ExecuTorch's dimension limit
        }
    }
    const size_t limit = size_t(1) << 22;
    size_t count[4];
    for (int i = 0; i < 3; ++i) {
        count[i] = count_of(shapes[i], limit);
        if (count[i] == SIZE_MAX || count[i] * elem_size(types[i]) > limit) return 0;  // keep runs fast
    }

    // out: planned as x's leading dims + [N] mostly; sometimes another rank or size (too small: resize must fail
    // cleanly; larger: a bound the result fits in). Dynamism as the memory planner marks it.
    std::vector<SizesType> want_out(shapes[0].begin(), shapes[0].empty() ? shapes[0].end() : shapes[0].end() - 1);
    want_out.push_back(N);
    std::vector<SizesType> os = want_out;
    const uint8_t operturb = r.u8();
    if (operturb & 0x80) {
        switch ((operturb >> 2) % 5) {
            case 0: os.back() = N > 0 ? N - 1 : 0; break;
            case 1: os.back() = N + 1 + r.u8() % 8; break;
            case 2: os.push_back(1); break;
            case 3: os.pop_back(); break;
            default: os[r.u8() % os.size()] = r.u8() % 8; break;
        }
    }
    count[3] = count_of(os, limit);
    if (count[3] == SIZE_MAX || count[3] * elem_size(types[3]) > limit) return 0;
    const TensorShapeDynamism dyn = TensorShapeDynamism((operturb & 3) % 3);

    // Dim orders: a swapped (non-default) order on one tensor, 1 in 16.
    const int swapped = (more & 0xf) == 0xf ? (more >> 4) % 4 : -1;

    Fixture t[4];
    for (int i = 0; i < 3; ++i) t[i].sizes = shapes[i];
    t[3].sizes = os;
    std::vector<float> xf;
    for (int i = 0; i < 4; ++i) {
        t[i].make(types[i], i == 3 ? dyn : TensorShapeDynamism::STATIC, swapped == i, count[i]);
        if (i == 0 && types[0] == ScalarType::Float) {
            xf.resize(count[0]);
            fuzz::make_activations(r, xf);
            if (count[0]) memcpy(t[0].data.get(), xf.data(), count[0] * 4);
        } else {
            r.fill(t[i].data.get(), t[i].bytes);
        }
    }
    if (types[2] == ScalarType::Float)  // finite, positive gammas keep outputs comparable
        for (size_t n = 0; n < count[2]; ++n) {
            const float g = float(1 + t[2].data[4 * n] % 64) / 16.0f;
            memcpy(&t[2].data[4 * n], &g, 4);
        }
    const std::vector<uint8_t> out_before(t[3].data.get(), t[3].data.get() + t[3].bytes);

    // The lookup Method::init does: by name and the tensor arguments' dtypes and dim orders.
    TensorMeta metas[4];
    for (int i = 0; i < 4; ++i)
        metas[i] = TensorMeta(types[i], Span<DimOrderType>(t[i].order.data(), t[i].order.size()));
    g_log.clear();
    const auto op = executorch::runtime::get_op_function_from_registry(kOp, Span<const TensorMeta>(metas, 4));

    // Valid: the schema's dtypes and ranks, K positive, w [N, ceil(K/128)*32], gamma [N], default dim
    // orders, and an out ExecuTorch can resize to [..., N] (same rank; the same sizes if STATIC, else no more
    // elements than planned).
    const std::vector<SizesType>& x = shapes[0];
    // Resizing a dynamic tensor, ExecuTorch computes the new element count dim by dim and refuses one that
    // overflows on the way, even when a later dim is 0 (x = [huge, huge, huge, 0, K]): its clean refusal, not the
    // kernel's. A static out is only compared with the new sizes.
    int64_t running = 1;
    bool numel_overflows = false;
    for (SizesType d : want_out) numel_overflows = numel_overflows || __builtin_mul_overflow(running, int64_t(d), &running);
    bool fits = os.size() == want_out.size();
    if (fits)
        fits = dyn == TensorShapeDynamism::STATIC ? os == want_out
                                                  : !numel_overflows && count_of(want_out, limit) <= count[3];
    bool default_orders = true;
    for (int i = 0; i < 4; ++i) default_orders = default_orders && t[i].default_order();
    const bool valid = types[0] == ScalarType::Float && types[1] == ScalarType::Byte &&
                       types[2] == ScalarType::Float && types[3] == ScalarType::Float && !x.empty() &&
                       x.size() <= 16 && x.back() > 0 && shapes[1].size() == 2 &&
                       shapes[1][1] == fuzz::row_bytes(x.back()) && shapes[2].size() == 1 && shapes[2][0] == shapes[1][0] &&
                       default_orders && fits;
    if (!op.ok()) {  // the runtime refuses the program before any kernel runs: only for tensors it cannot key
        if (valid) fuzz::fail("valid input: kernel lookup failed", int(op.error()), 0, 0);
        stat("lookup refused");
        return 0;
    }

    EValue stack_values[5] = {EValue(Tensor(t[0].impl.get())), EValue(Tensor(t[1].impl.get())),
                              EValue(Tensor(t[2].impl.get())), EValue(Tensor(t[3].impl.get())),
                              EValue(Tensor(t[3].impl.get()))};
    EValue* stack[5] = {&stack_values[0], &stack_values[1], &stack_values[2], &stack_values[3], &stack_values[4]};
    KernelRuntimeContext ctx;
    op.get()(ctx, Span<EValue*>(stack, 5));

    if (ctx.failure_state() != Error::Ok) {
        if (valid) fuzz::fail(("valid input rejected: " + g_log).c_str(), int(ctx.failure_state()), 0, 0);
        if (g_log.find(kOp) == std::string::npos) fuzz::fail(("error without the op's message: " + g_log).c_str(), 0, 0, 0);
        if (t[3].bytes && memcmp(out_before.data(), t[3].data.get(), t[3].bytes) != 0) fuzz::fail("failed call wrote out", 0, 0, 0);
#ifdef EDGEBIT_FUZZ_STATS
        const size_t at = g_log.rfind(kOp);
        stat("error: " + g_log.substr(at, g_log.find_first_of(",(=\n", at + strlen(kOp) + 2) - at));
#endif
        return 0;
    }
    if (!valid) fuzz::fail("invalid input accepted", perturb, operturb, int(types[0]) * 64 + swapped);

    // Success: out is [..., N] and equals the reference.
    const Tensor out(t[3].impl.get());
    if (size_t(out.dim()) != want_out.size()) fuzz::fail("out has the wrong rank", out.dim(), 0, 0);
    for (size_t d = 0; d < want_out.size(); ++d)
        if (out.size(ssize_t(d)) != want_out[d]) fuzz::fail("out has the wrong size", ssize_t(d), out.size(ssize_t(d)), want_out[d]);
    const int64_t Kx = x.back(), M = int64_t(count[0]) / Kx;
    const float* y = out.const_data_ptr<float>();
    const uint8_t* w = t[1].data.get();
    const float* g = reinterpret_cast<const float*>(t[2].data.get());
    std::vector<int8_t> q(static_cast<size_t>(Kx));
    for (int64_t m = 0; m < M; ++m) {
        float s = 0;
        fuzz::ref_quantize(&xf[size_t(m * Kx)], Kx, q.data(), &s);
        for (int64_t n = 0; n < N; ++n)
            if (!fuzz::same_float(y[m * N + n], fuzz::ref_out(fuzz::ref_acc(q.data(), w, Kx, 0, n), s, g[n])))
                fuzz::fail("output differs from the reference", m, n, Kx);
    }
    stat(M * N == 0 ? "ok: empty" : threads > 1 && N > 64 ? "ok: 2 threads, >1 chunk" : "ok");
    return 0;
}
