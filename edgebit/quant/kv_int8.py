"""The int8 KV cache's rows (`--kv-cache int8`): each cached row, the D values of one position and kv head, is stored
as D int8 codes followed by the row's float32 scale (D + 4 bytes: at D = 128 about a quarter of the fp32 cache's
bytes and 52% of the fp16 one's). The same arithmetic as the kernel core's edgebit_f32_to_q8_row and edgebit_attention_q8kv
(runtime_ops/kernels/attention_api.cpp), bit for bit:

    s = max|x| / 127 (float32 division), code = rint(x / s) within [-127, 127] (ties to even), value = code * s.

s = 0 gives zero codes; a row with a NaN or infinity gets s = NaN (it reads back as NaN, as the fp32 cache would
carry it). Symmetric per row, like BitNet's own per-token activation quantization, so the cache costs no offset and
a key row's error is at most s / 2 a value.
"""

from __future__ import annotations

import torch

SCALE_BYTES = 4  # the float32 scale after each row's codes


def quantize_rows(x: torch.Tensor) -> torch.Tensor:
    """float rows (..., D) -> int8 (..., D + 4): the codes, then the scale's bytes (little-endian float32)."""
    x = x.float()
    finite = torch.isfinite(x).all(dim=-1, keepdim=True)
    amax = torch.where(finite, x.abs(), 0.0).amax(dim=-1, keepdim=True)
    scale = torch.where(finite, amax / 127, torch.full_like(amax, float("nan")))
    positive = scale > 0  # false for 0 and NaN
    codes = torch.where(positive, torch.round(x / torch.where(positive, scale, 1.0)), 0.0).clamp(-127, 127)
    return torch.cat([codes.to(torch.int8), scale.contiguous().view(torch.int8)], dim=-1)


def dequantize_rows(q: torch.Tensor) -> torch.Tensor:
    """int8 rows (..., D + 4) -> float32 (..., D): code * scale."""
    if q.dtype != torch.int8 or q.shape[-1] <= SCALE_BYTES:
        raise ValueError(f"int8 KV rows must be int8 (..., D + 4), got {q.dtype} {tuple(q.shape)}")
    scale = q[..., -SCALE_BYTES:].contiguous().view(torch.float32)  # (..., 1)
    return q[..., :-SCALE_BYTES].float() * scale


def round_trip(x: torch.Tensor) -> torch.Tensor:
    """What the int8 cache hands back for x (float32)."""
    return dequantize_rows(quantize_rows(x))
