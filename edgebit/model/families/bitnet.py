"""BitNet b1.58 as transformers names it (model_type "bitnet", e.g. microsoft/bitnet-b1.58-2B-4T and its
-bf16 master-weight twin): ReLU^2 gated FFN, attn_sub_norm and ffn_sub_norm (SubLN), GQA, RoPE."""

from __future__ import annotations

from pathlib import Path

from edgebit.errors import ConfigError
from edgebit.model.config import Family, ModelConfig, register_family
from edgebit.model.families.llama_like import normalize_llama_like

_ACTIVATIONS = {"relu2": "relu2", "silu": "silu"}


def _normalize(raw: dict, path: Path) -> ModelConfig:
    act = raw.get("hidden_act", "relu2")
    if act not in _ACTIVATIONS:
        raise ConfigError(f"{path}: key 'hidden_act': expected one of {sorted(_ACTIVATIONS)}, got {act!r}")
    return normalize_llama_like(raw, path, "bitnet", _ACTIVATIONS[act], sub_norms=True)


FAMILY = register_family(
    Family(
        name="bitnet",
        description="model_type 'bitnet' (BitNet b1.58 2B4T: ReLU^2, sub-norms), packed or bf16 master weights",
        matches=lambda raw: raw.get("model_type") == "bitnet",
        normalize=_normalize,
    )
)
