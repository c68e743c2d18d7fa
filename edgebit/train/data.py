"""Token streams and batches.

Each line is encoded with its trailing newline, so the model learns where verses end and generated text
keeps its line structure. Every window is fed with BOS first, as the tokenizer's post-processor gives it at
inference: input [BOS, t0 .. t(n-2)] predicts [t0 .. t(n-1)]. A training batch is a pure function of
(seed, step), which is what makes `--resume` continue bit for bit without saving any RNG state.
"""

from __future__ import annotations

import torch

ENCODE_CHUNK = 4096  # lines per encode_batch call


def encode_lines(tok, lines: list[str]) -> torch.Tensor:
    ids: list[int] = []
    for i in range(0, len(lines), ENCODE_CHUNK):
        for enc in tok.encode_batch([line + "\n" for line in lines[i : i + ENCODE_CHUNK]], add_special_tokens=False):
            ids.extend(enc.ids)
    return torch.tensor(ids, dtype=torch.int64)


def train_batch(stream: torch.Tensor, bos_id: int, seed: int, step: int, batch: int, seq_len: int):
    """(inputs, targets), each (batch, seq_len), at random offsets drawn from a generator seeded by (seed, step)."""
    if len(stream) <= seq_len:
        raise ValueError(f"training text has {len(stream)} tokens, fewer than --seq-len {seq_len} + 1")
    gen = torch.Generator().manual_seed(seed * 1_000_003 + step)
    starts = torch.randint(0, len(stream) - seq_len, (batch,), generator=gen)
    return _windows(stream, starts, bos_id, seq_len)


def heldout_batches(stream: torch.Tensor, bos_id: int, batch: int, seq_len: int):
    """Non-overlapping windows covering the held-out stream, in order (the last partial window is dropped)."""
    starts = torch.arange(0, len(stream) - seq_len + 1, seq_len)
    if len(starts) == 0:
        raise ValueError(f"held-out text has {len(stream)} tokens, fewer than --seq-len {seq_len}")
    for i in range(0, len(starts), batch):
        yield _windows(stream, starts[i : i + batch], bos_id, seq_len)


def _windows(stream: torch.Tensor, starts: torch.Tensor, bos_id: int, seq_len: int):
    offsets = torch.arange(seq_len)
    targets = stream[starts[:, None] + offsets]
    inputs = torch.cat([torch.full((len(starts), 1), bos_id, dtype=torch.int64), targets[:, :-1]], dim=1)
    return inputs, targets
