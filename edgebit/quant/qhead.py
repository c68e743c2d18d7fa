"""The LM head in edgebit's own GEMV (the QLinear op: runtime_ops/kernels/qlinear_api.cpp, docs/weight-layout.md):
weight rows quantized to 8 or 4 bits, activations to int8 per token as the ternary linears do.

  bits 8 ("int8" head): Kp = ceil(K/128)*128 bytes a row, byte k = q + 128 with q in [-127, 127], one fp32 scale a row
         (quantize_rows_int8); the embedding gathers the same rows.
  bits 4 ("q4" head): Kp/2 nibble bytes then Kp/32 group scales (uint8) a row, one fp32 scale a row. In each 64-weight
         chunk c (32 bytes) byte j holds weight 64c + j in its low nibble and 64c + 32 + j in its high one, as q + 8.
         Weight 64c + j is in group 2c + (j % 8) // 4 (runs of four alternate between the chunk's two groups: what one
         int32 lane of vpmaddwd or SDOT sums, so one instruction scales both) and stands for q * sub[group] * scale.
         Integer group scales keep the kernel's sums exact int32 (every SIMD variant bit-exact to the scalar one) at
         4.25 bits a weight plus 4 bytes a row.

qlinear_reference computes what the op computes, in PyTorch (the CPU implementation of torch.ops.edgebit.qlinear).
"""

from __future__ import annotations

import torch

from edgebit.quant.head import CHUNK_ROWS, quantize_rows_int8
from edgebit.quant.packing import padded_k
from edgebit.quant.ternary import quantize_activations

GROUP = 32
HEAD_BITS = {"int8": 8, "q4": 4}
MAX_K = {8: 131072, 4: 8192}  # EDGEBIT_QLINEAR_MAX_K: the int32 sums stay exact


def row_bytes(k: int, bits: int) -> int:
    kp = padded_k(k)
    return kp if bits == 8 else kp // 2 + kp // GROUP


def int8_rows(table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[V, H] float -> (uint8 [V, Kp] = q + 128, zero weights (128) in the padding; fp32 scale [V])."""
    q, scale = quantize_rows_int8(table)
    v, h = q.shape
    rows = torch.full((v, padded_k(h)), 128, dtype=torch.uint8)
    rows[:, :h] = (q.to(torch.int16) + 128).to(torch.uint8)
    return rows, scale


# Candidate steps of a group, as amax / f: the step that minimizes the group's squared error is searched among them
# (as llama.cpp's quantizers do): amax / 7 never clips, a slightly finer step rounds the bulk of the weights better.
STEP_DIVISORS = (7.0, 7.25, 7.5, 7.75, 8.0, 8.25, 8.5, 6.75, 6.5)


def group_of(kp: int) -> torch.Tensor:
    """The 4-bit group of each weight k < kp: 2 * (k // 64) + (k % 8) // 4."""
    k = torch.arange(kp)
    return 2 * (k // 64) + (k % 8) // 4


def _grouped(x: torch.Tensor) -> torch.Tensor:
    """[R, Kp] -> [R, Kp/32, 32]: each group's weights (group 2c + h: chunk c's runs of four with (k % 8) // 4 == h)."""
    r, kp = x.shape
    return x.view(r, kp // 64, 8, 2, 4).transpose(2, 3).reshape(r, kp // 32, 32)


def _ungrouped(g: torch.Tensor) -> torch.Tensor:
    """The inverse of _grouped."""
    r, n, _ = g.shape
    return g.view(r, n // 2, 2, 8, 4).transpose(2, 3).reshape(r, n * 32)


def _q4_chunk(rows: torch.Tensor, kp: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """fp32 [R, H] -> (q int8 [R, Kp] in [-8, 7], sub uint8 [R, Kp/32], scale fp32 [R]). The row's scale makes its
    coarsest candidate step 255; each group takes the candidate (an integer multiple of the scale) with the least
    squared error, q = round(w / step) clamped to [-8, 7]."""
    r, h = rows.shape
    x = torch.zeros(r, kp)
    x[:, :h] = rows
    groups = _grouped(x)
    amax = groups.abs().amax(-1)
    scale = amax.amax(-1) / min(STEP_DIVISORS) / 255.0
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))[:, None]
    best_q = torch.zeros_like(groups)
    best_sub = torch.zeros_like(amax)
    best_err = torch.full_like(amax, float("inf"))
    for f in STEP_DIVISORS:
        sub = (amax / f / safe).round().clamp(1, 255)
        step = (sub * safe)[:, :, None]
        q = (groups / step).round().clamp(-8, 7)
        err = ((q * step - groups) ** 2).sum(-1)
        better = err < best_err
        best_q = torch.where(better[:, :, None], q, best_q)
        best_sub = torch.where(better, sub, best_sub)
        best_err = torch.where(better, err, best_err)
    best_sub = torch.where(amax > 0, best_sub, torch.zeros_like(best_sub))  # an all-zero group: sub 0
    best_sub = torch.where(scale[:, None] > 0, best_sub, torch.zeros_like(best_sub))
    return _ungrouped(best_q).to(torch.int8), best_sub.to(torch.uint8), scale


def q4_rows(table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[V, H] float -> (uint8 [V, row_bytes(H, 4)], fp32 scale [V])."""
    v, h = table.shape
    kp = padded_k(h)
    out = torch.empty(v, row_bytes(h, 4), dtype=torch.uint8)
    scale = torch.empty(v, dtype=torch.float32)
    for r in range(0, v, CHUNK_ROWS):
        q, sub, s = _q4_chunk(table[r : r + CHUNK_ROWS].float(), kp)
        nib = (q.to(torch.int16) + 8).to(torch.uint8).view(q.shape[0], kp // 64, 2, 32)
        out[r : r + CHUNK_ROWS, : kp // 2] = (nib[:, :, 0] | (nib[:, :, 1] << 4)).reshape(q.shape[0], kp // 2)
        out[r : r + CHUNK_ROWS, kp // 2 :] = sub
        scale[r : r + CHUNK_ROWS] = s
    return out, scale


def quantize_head(table: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    return int8_rows(table) if bits == 8 else q4_rows(table)


def dequantized_int_rows(w: torch.Tensor, k: int, bits: int) -> torch.Tensor:
    """The integer weights q (bits 8) or q * sub (bits 4) of rows w, [R, K] int32 (padding dropped)."""
    kp = padded_k(k)
    if bits == 8:
        return w[:, :k].to(torch.int32) - 128
    r = w.shape[0]
    nib = w[:, : kp // 2].view(r, kp // 64, 1, 32)
    q = torch.cat([nib & 0x0F, nib >> 4], dim=2).view(r, kp).to(torch.int32) - 8
    sub = w[:, kp // 2 :].to(torch.int32)[:, group_of(kp)]
    return (q * sub)[:, :k]


def dequantize_head(w: torch.Tensor, scale: torch.Tensor, k: int, bits: int) -> torch.Tensor:
    """fp32 [R, K]: what the quantized rows stand for (quality measurements)."""
    return dequantized_int_rows(w, k, bits).float() * scale[:, None]


def qlinear_reference(x: torch.Tensor, w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    """(..., K) fp32 -> (..., N) fp32, as the QLinear op: ((float)acc / s) * scale with acc exact (int64 here,
    then wrapped to int32 as the kernels' lanes; within MAX_K no wrap occurs)."""
    k = x.shape[-1]
    x_q, s = quantize_activations(x)
    flat = x_q.reshape(-1, k).to(torch.int64)
    acc = torch.empty(flat.shape[0], w.shape[0], dtype=torch.int64)
    for r in range(0, w.shape[0], CHUNK_ROWS):
        acc[:, r : r + CHUNK_ROWS] = flat @ dequantized_int_rows(w[r : r + CHUNK_ROWS], k, bits).to(torch.int64).T
    acc32 = ((acc + 2**31) % 2**32 - 2**31).to(torch.int32)
    y = acc32.float().reshape(*x.shape[:-1], w.shape[0])
    return y / s * scale
