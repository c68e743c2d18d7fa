"""int8 embedding / LM head: per-row (per-token-id) symmetric quantization. Decoding reads the whole head
once a token (DESIGN.md 9), so it is where an fp32 or bf16 head spends most of the memory traffic."""

from __future__ import annotations

import torch

CHUNK_ROWS = 16384  # rows converted to fp32 at a time: a 2B model's head is 0.66 GB in bf16


def quantize_rows_int8(table: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[V, H] float -> (int8 [V, H] in [-127, 127], fp32 scale [V]) with table ~= q * scale[:, None]."""
    v, h = table.shape
    q = torch.empty(v, h, dtype=torch.int8)
    scale = torch.empty(v, dtype=torch.float32)
    for r in range(0, v, CHUNK_ROWS):
        rows = table[r : r + CHUNK_ROWS].float()
        s = rows.abs().amax(dim=1).clamp(min=1e-12) / 127.0
        q[r : r + CHUNK_ROWS] = (rows / s[:, None]).round_().clamp_(-127, 127).to(torch.int8)
        scale[r : r + CHUNK_ROWS] = s
    return q, scale


def dequantize_rows_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() * scale[:, None]
