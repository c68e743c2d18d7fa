"""The interface `verify` and `run` use: a decoder that keeps its own KV cache."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Backend(Protocol):
    name: str  # e.g. "onnxruntime 1.31.1"
    max_seq_len: int
    vocab_size: int
    all_logits: bool  # False: forward returns the last token's logits only ([1, vocab]; an edgebit .pte)

    def reset(self) -> None:
        """Forget the cached sequence (batch 1)."""

    def forward(self, token_ids: list[int]) -> np.ndarray:
        """Append tokens to the cached sequence (prefill: many, decode: one) and return their logits
        [len(token_ids), vocab] as float32 ([1, vocab], the last token's, when not all_logits)."""
