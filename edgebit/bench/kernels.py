"""`edgebit bench kernels`: edgebit's ternary kernels against PyTorch fp32 F.linear, ONNX Runtime
MatMulInteger (int8) and MatMulNBits (2-bit and 4-bit), all measured in the same run on the same shapes.

Two parts: each BitNet-2B4T matrix shape alone (M=1 decode, M=128 prefill), and a decode sweep over every
ternary matrix of a 2B4T-shaped model in turn (~0.5 GB packed, far beyond cache, as one decoded token
reads them), whose figure of merit is the fraction of this machine's streaming read bandwidth reached.
With the sweep comes the same M=1 work from cache (one layer's matrices, in L3, 1 thread): when it runs no faster
than the sweep, decode is bound by the kernel's operations, not by DRAM.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from edgebit.bench.ort_baselines import matmul_integer_session, matmul_nbits_session
from edgebit.bench.timing import huge_page_tensor, seconds_per_call, streaming_read_gbps
from edgebit.model.weights import TernaryWeight
from edgebit.ops import native
from edgebit.quant.packing import pack_ternary

SHAPES = [(2560, 2560), (640, 2560), (6912, 2560), (2560, 6912)]  # [N, K] of BitNet 2B4T's linears
LAYER = [(2560, 2560), (640, 2560), (640, 2560), (2560, 2560), (6912, 2560), (6912, 2560), (2560, 6912)]
NUM_LAYERS = 30
FP32_SWEEP_LAYERS = 4  # fp32 copies of all 30 layers would be ~10 GB; 4 layers (1.3 GB) are past cache too
BASELINES = ("torch_fp32", "ort_matmulinteger_int8", "ort_matmulnbits_2bit", "ort_matmulnbits_4bit")


@dataclass
class Row:
    shape: list[int] | str
    m: int
    threads: int
    variant: str
    seconds: float
    weight_gbps: float  # packed ternary bytes read per second
    bandwidth_fraction: float  # of the streaming read bandwidth measured in this run
    speedup_vs: dict[str, float] = field(default_factory=dict)  # baseline -> its time / ours
    baseline_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _ternary(n: int, k: int, seed: int) -> tuple[np.ndarray, TernaryWeight]:
    g = torch.Generator().manual_seed(seed)
    w_t = torch.randint(-1, 2, (n, k), generator=g, dtype=torch.int8)
    return w_t.numpy(), TernaryWeight(pack_ternary(w_t), torch.tensor(0.02), n, k)


def _baseline_calls(mats: list[np.ndarray], m: int, threads: int, seed: int) -> dict[str, Callable[[], object]]:
    """One callable per baseline computing the same products as ours over `mats` (each [N, K])."""
    g = torch.Generator().manual_seed(seed)
    ks = sorted({w.shape[1] for w in mats})
    x = {k: torch.randn(m, k, generator=g) for k in ks}
    feeds_f = {f"x_{k}": x[k].numpy() for k in ks}
    feeds_q = {f"x_{k}": (np.clip(np.rint(x[k].numpy() * 40), -128, 127) + 128).astype(np.uint8) for k in ks}
    fp32 = [(torch.from_numpy(w).float() * 0.02, x[w.shape[1]]) for w in mats]
    pairs = [(w, 0.02) for w in mats]
    int8 = matmul_integer_session(pairs, threads)
    nbits2 = matmul_nbits_session(pairs, 2, threads)
    nbits4 = matmul_nbits_session(pairs, 4, threads)

    def torch_fp32():
        for w, xk in fp32:
            F.linear(xk, w)

    return {
        "torch_fp32": torch_fp32,
        "ort_matmulinteger_int8": lambda: int8.run(None, feeds_q),
        "ort_matmulnbits_2bit": lambda: nbits2.run(None, feeds_f),
        "ort_matmulnbits_4bit": lambda: nbits4.run(None, feeds_f),
    }


def _timed(fn: Callable[[], object], threads: int) -> float:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return seconds_per_call(fn)
    finally:
        torch.set_num_threads(previous)


def bench_shapes(ms=(1, 128), thread_counts=(1, 2), bandwidth_gbps: float = 0.0,
                 on_row: Callable[[Row], None] | None = None) -> list[Row]:
    rows = []
    for idx, (n, k) in enumerate(SHAPES):
        w_np, w = _ternary(n, k, seed=idx)
        for m in ms:
            x = torch.randn(m, k)
            for threads in thread_counts:
                ours = _timed(lambda: native.ternary_linear(x, w, threads=threads), threads)
                base = {name: _timed(fn, threads) for name, fn in _baseline_calls([w_np], m, threads, idx).items()}
                gbps = n * k / 4 / ours / 1e9
                row = Row([n, k], m, threads, native.variant(), ours, gbps,
                          gbps / bandwidth_gbps if bandwidth_gbps else 0.0,
                          {b: t / ours for b, t in base.items()}, base)
                rows.append(row)
                if on_row:
                    on_row(row)
    return rows


def bench_decode_sweep(thread_counts=(1, 2), bandwidth_gbps: float = 0.0,
                       on_row: Callable[[Row], None] | None = None) -> list[Row]:
    """Every ternary matrix of a 30-layer 2B4T-shaped model once per 'token', at M=1. Each layer has its
    own copy of the weights (same values, distinct memory), so nothing is served from cache."""
    layer = [_ternary(n, k, seed=i) for i, (n, k) in enumerate(LAYER)]
    # One region on 2 MB pages, as the runner maps an artifact's weights (timing.huge_page_tensor).
    total_bytes = NUM_LAYERS * sum(w.packed.numel() for _, w in layer)
    region_tensor, region = huge_page_tensor(total_bytes)
    ours_weights, offset = [], 0
    for _ in range(NUM_LAYERS):
        for _, w in layer:
            n = w.packed.numel()
            packed = region_tensor[offset:offset + n].view(w.packed.dtype).view(w.packed.shape)
            packed.copy_(w.packed)
            ours_weights.append(TernaryWeight(packed, w.gamma, w.out_features, w.in_features))
            offset += n
    xs = {k: torch.randn(1, k) for k in (2560, 6912)}
    rows = []
    for threads in thread_counts:
        def token():
            for w in ours_weights:
                native.ternary_linear(xs[w.in_features], w, threads=threads)

        ours = _timed(token, threads)
        base = {}
        for name in BASELINES:
            # Baselines run layer by layer (one ONNX session per layer keeps each model under protobuf's
            # 2 GB); fp32 runs FP32_SWEEP_LAYERS layers and is scaled to the whole model.
            layers = FP32_SWEEP_LAYERS if name == "torch_fp32" else NUM_LAYERS
            calls = [_baseline_calls([w for w, _ in layer], 1, threads, seed=j)[name] for j in range(layers)]
            base[name] = _timed(lambda: [c() for c in calls], threads) * NUM_LAYERS / layers
        gbps = total_bytes / ours / 1e9
        row = Row("2b4t_all_ternary_matrices", 1, threads, native.variant(), ours, gbps,
                  gbps / bandwidth_gbps if bandwidth_gbps else 0.0, {b: t / ours for b, t in base.items()}, base)
        rows.append(row)
        if on_row:
            on_row(row)
    return rows


def bench_from_cache(bandwidth_gbps: float = 0.0, on_row: Callable[[Row], None] | None = None) -> Row:
    """The decode sweep's M=1 products with the weights in cache, 1 thread: one layer's seven matrices (17 MB, in L3
    where it holds 32 MB) 30 times, the same calls as the sweep's. No baselines: the figure is this row's GB/s
    against the sweep's from DRAM (about equal: decode is bound by the kernel's operations; well above it: by
    memory)."""
    weights = [_ternary(n, k, seed=i)[1] for i, (n, k) in enumerate(LAYER)]
    total_bytes = NUM_LAYERS * sum(w.packed.numel() for w in weights)
    xs = {k: torch.randn(1, k) for k in (2560, 6912)}

    def calls():
        for _ in range(NUM_LAYERS):
            for w in weights:
                native.ternary_linear(xs[w.in_features], w, threads=1)

    ours = _timed(calls, 1)
    gbps = total_bytes / ours / 1e9
    row = Row("2b4t_layer_from_cache", 1, 1, native.variant(), ours, gbps,
              gbps / bandwidth_gbps if bandwidth_gbps else 0.0)
    if on_row:
        on_row(row)
    return row


def measure_bandwidth() -> float:
    return streaming_read_gbps(1 << 30, threads=1)
