"""The compiled kernel core (libedgebit_kernels.so, built from runtime_ops/ by `pip install`), through its
C API with ctypes. Used by benchmarks and by tests that hold the C++ kernels to the PyTorch reference."""

from __future__ import annotations

import ctypes
import functools
from pathlib import Path

from edgebit.errors import EdgebitError
from edgebit.ops.libpath import find_library

LIB_NAME = "libedgebit_kernels.so"


class KernelError(EdgebitError):
    pass


class _Threading(ctypes.Structure):
    _fields_ = [("parallel_for", ctypes.c_void_p), ("pool_ctx", ctypes.c_void_p), ("num_threads", ctypes.c_int32)]


def library_path() -> Path:
    """The installed library, or the one in $EDGEBIT_LIB_DIR (a developer's own CMake build)."""
    return find_library(LIB_NAME, "reinstall edgebit with `pip install .` (it builds runtime_ops/ with CMake)")


@functools.cache
def lib() -> ctypes.CDLL:
    from edgebit.quant.packing import LAYOUT_VERSION

    so = ctypes.CDLL(str(library_path()))
    i64, p = ctypes.c_int64, ctypes.c_void_p
    so.edgebit_quantize_rows.argtypes = [p, i64, i64, p, p]
    so.edgebit_ternary_gemm_i32.argtypes = [p, i64, p, i64, i64, p, ctypes.POINTER(_Threading)]
    so.edgebit_ternary_gemm_q8.argtypes = [p, p, i64, p, i64, i64, ctypes.c_float, p, ctypes.POINTER(_Threading)]
    so.edgebit_ternary_linear_f32.argtypes = [p, i64, i64, p, i64, ctypes.c_float, p, ctypes.POINTER(_Threading)]
    so.edgebit_ternary_linear_f32_channels.argtypes = [p, i64, i64, p, i64, p, p, ctypes.POINTER(_Threading)]
    so.edgebit_rms_norm_rows.argtypes = [p, i64, i64, p, ctypes.c_float, p]
    so.edgebit_ternary_linear_f32_rmsnorm.argtypes = [p, i64, i64, p, ctypes.c_float, p, i64, p, p,
                                                      ctypes.POINTER(_Threading)]
    for name in ("edgebit_kernel_variant", "edgebit_last_error", "edgebit_variant_name"):
        getattr(so, name).restype = ctypes.c_char_p
    so.edgebit_force_variant.argtypes = [ctypes.c_char_p]
    so.edgebit_variant_supported.argtypes = [ctypes.c_char_p]
    so.edgebit_variant_name.argtypes = [ctypes.c_int]
    if so.edgebit_layout_version() != LAYOUT_VERSION:
        raise KernelError(f"{library_path()}: kernels read layout v{so.edgebit_layout_version()}, "
                          f"this edgebit writes v{LAYOUT_VERSION}; reinstall edgebit")
    return so


def _check(status: int) -> None:
    if status:
        raise KernelError(lib().edgebit_last_error().decode())


def _threads(n: int) -> _Threading:
    return _Threading(None, None, n)


def variant() -> str:
    return lib().edgebit_kernel_variant().decode()


def compiled_variants() -> list[str]:
    return [lib().edgebit_variant_name(i).decode() for i in range(lib().edgebit_variant_count())]


def runnable_variants() -> list[str]:
    return [v for v in compiled_variants() if lib().edgebit_variant_supported(v.encode())]


def force_variant(name: str | None) -> None:
    _check(lib().edgebit_force_variant(name.encode() if name else None))


def quantize_rows(x):
    """fp32 (M, K) -> (int8 x_q (M, K), fp32 scales (M,))."""
    import torch

    x = x.contiguous().float()
    m, k = x.shape
    x_q, s = torch.empty(m, k, dtype=torch.int8), torch.empty(m)
    _check(lib().edgebit_quantize_rows(x.data_ptr(), m, k, x_q.data_ptr(), s.data_ptr()))
    return x_q, s


def _check_packed(packed, n: int, k: int, what: str) -> None:
    """The C entry points trust the packed buffer's size (N * ceil(K/128)*32 bytes, layout v2): checked here."""
    from edgebit.quant.packing import LAYOUT_VERSION, packed_row_bytes

    if tuple(packed.shape) != (n, packed_row_bytes(k)):
        raise KernelError(f"{what}: K={k} needs packed ({n}, {packed_row_bytes(k)}) (layout v{LAYOUT_VERSION}: "
                          f"ceil(K/128)*32 bytes a row), got {tuple(packed.shape)}")


def ternary_gemm_i32(x_q, packed, n: int, k: int, threads: int = 1):
    import torch

    x_q = x_q.contiguous()
    if x_q.shape[1] != k:
        raise KernelError(f"ternary_gemm_i32: x_q has {x_q.shape[1]} features, K is {k}")
    _check_packed(packed, n, k, "ternary_gemm_i32")
    acc = torch.empty(x_q.shape[0], n, dtype=torch.int32)
    t = _threads(threads)
    _check(lib().edgebit_ternary_gemm_i32(x_q.data_ptr(), x_q.shape[0], packed.contiguous().data_ptr(), n, k,
                                          acc.data_ptr(), ctypes.byref(t)))
    return acc


def ternary_linear(x, w, threads: int = 1):
    """fp32 (M, K) -> (M, N) with a TernaryWeight, through the fused C entry point custom ops call."""
    import torch

    x = x.contiguous().float()
    m, k = x.shape
    if k != w.in_features:
        raise KernelError(f"ternary_linear: x has {k} features, the weight expects {w.in_features}")
    _check_packed(w.packed, w.out_features, k, "ternary_linear")
    y = torch.empty(m, w.out_features)
    t = _threads(threads)
    _check(lib().edgebit_ternary_linear_f32(x.data_ptr(), m, k, w.packed.contiguous().data_ptr(), w.out_features,
                                            float(w.gamma), y.data_ptr(), ctypes.byref(t)))
    return y


def ternary_linear_channels(x, packed, gamma, threads: int = 1, norm: tuple | None = None):
    """fp32 (M, K) -> (M, N) with packed uint8 (N, ceil(K/128)*32) and one fp32 scale per output channel, gamma (N,):
    the entry point the ONNX Runtime op calls (q/k/v or gate/up concatenated along N). norm: (weight (K,), eps), an
    RMSNorm fused in front (edgebit_ternary_linear_f32_rmsnorm, BitLinear's norm_weight input)."""
    import torch

    x = x.contiguous().float()
    m, k = x.shape
    n = packed.shape[0]
    gamma = gamma.contiguous().float()
    _check_packed(packed, n, k, "ternary_linear_channels")
    if gamma.shape != (n,):
        raise KernelError(f"ternary_linear_channels: packed ({n}, ...) needs gamma ({n},), got {tuple(gamma.shape)}")
    y = torch.empty(m, n)
    t = _threads(threads)
    w = packed.contiguous().data_ptr()
    if norm is None:
        _check(lib().edgebit_ternary_linear_f32_channels(x.data_ptr(), m, k, w, n, gamma.data_ptr(), y.data_ptr(),
                                                         ctypes.byref(t)))
        return y
    nw = _norm_weight(norm[0], k, "ternary_linear_channels")
    _check(lib().edgebit_ternary_linear_f32_rmsnorm(x.data_ptr(), m, k, nw.data_ptr(), float(norm[1]), w, n,
                                                    gamma.data_ptr(), y.data_ptr(), ctypes.byref(t)))
    return y


def _norm_weight(weight, k: int, what: str):
    weight = weight.contiguous().float()
    if tuple(weight.shape) != (k,):
        raise KernelError(f"{what}: the norm weight must be ({k},) (K), got {tuple(weight.shape)}")
    return weight


def rms_norm_rows(x, weight, eps: float):
    """fp32 (M, K) -> (M, K): edgebit_rms_norm_rows, the RMSNorm BitLinear fuses (the reference's rms_norm)."""
    import torch

    x = x.contiguous().float()
    m, k = x.shape
    weight = _norm_weight(weight, k, "rms_norm_rows")
    y = torch.empty(m, k)
    _check(lib().edgebit_rms_norm_rows(x.data_ptr(), m, k, weight.data_ptr(), float(eps), y.data_ptr()))
    return y
