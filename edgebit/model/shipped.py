"""The model edgebit ships inside the package: what every command uses when MODEL is not given.

A small BitNet b1.58 model trained by `edgebit train` on the King James Bible; see its MODEL_CARD.md.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_NAME = "bitnet-kjv-small"


def default_model_path() -> Path:
    """The shipped checkpoint directory (config.json, model.safetensors, tokenizer.json, MODEL_CARD.md)."""
    return Path(__file__).resolve().parent.parent / "data" / "models" / SHIPPED_NAME
