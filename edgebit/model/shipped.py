"""The models edgebit ships inside the package. bitnet-kjv-small (BitNet b1.58, ternary) is what every command uses
when MODEL is not given; bitnet-kjv-small-binary is the same model trained with the original BitNet's binary
weights (the b1.58-vs-binary comparison in both model cards). Each is named by its name as MODEL, unless a path of
that name exists. Both were trained by `edgebit train` on the King James Bible; see their MODEL_CARD.md.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_NAME = "bitnet-kjv-small"
SHIPPED_MODELS = (SHIPPED_NAME, "bitnet-kjv-small-binary")


def default_model_path() -> Path:
    """The shipped checkpoint directory (config.json, model.safetensors, tokenizer.json, MODEL_CARD.md)."""
    return Path(__file__).resolve().parent.parent / "data" / "models" / SHIPPED_NAME


def shipped_model_path(name: str) -> Path | None:
    """The shipped checkpoint called `name`, or None when no shipped model has that name."""
    return default_model_path().parent / name if name in SHIPPED_MODELS else None
