"""The PyTorch reference model behind the Backend interface: the yardstick `verify` holds artifacts to."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edgebit.model.reference import ReferenceModel
from edgebit.model.weights import load_model_weights


class ReferenceBackend:
    all_logits = True

    def __init__(self, checkpoint: Path, max_seq_len: int | None = None, head: str = "fp32", weights=None,
                 kv_dtype: str = "float32"):
        """head, kv_dtype: as ReferenceModel's; weights: already loaded ModelWeights of the checkpoint (shared, not
        copied)."""
        self.model = ReferenceModel(weights if weights is not None else load_model_weights(checkpoint), head, kv_dtype)
        self.name = f"edgebit reference (torch {torch.__version__})"
        self.max_seq_len = max_seq_len or self.model.cfg.max_position_embeddings
        self.vocab_size = self.model.cfg.vocab_size
        self.reset()

    def reset(self) -> None:
        self.cache = self.model.new_cache(1, self.max_seq_len)

    def forward(self, token_ids: list[int]) -> np.ndarray:
        return self.model.forward(torch.tensor([token_ids]), self.cache)[0].numpy()
