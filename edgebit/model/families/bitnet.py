"""BitNet as transformers names it (model_type "bitnet"): BitNet b1.58 (e.g. microsoft/bitnet-b1.58-2B-4T and its
-bf16 master-weight twin: ReLU^2 gated FFN, attn_sub_norm and ffn_sub_norm (SubLN), GQA, RoPE), and the same
architecture with the binary weights of the original BitNet (2023) in edgebit's own format, quantization_config
quant_method "bitnet_binary" (what `edgebit train --weights binary` writes; docs/weight-layout.md)."""

from __future__ import annotations

from pathlib import Path

from edgebit.errors import ConfigError
from edgebit.model.config import Family, ModelConfig, register_family
from edgebit.model.families.llama_like import normalize_llama_like
from edgebit.model.families.quant_scheme import BINARY, quantization_config

_ACTIVATIONS = {"relu2": "relu2", "silu": "silu"}


def _normalizer(family: str):
    def normalize(raw: dict, path: Path) -> ModelConfig:
        act = raw.get("hidden_act", "relu2")
        if act not in _ACTIVATIONS:
            raise ConfigError(f"{path}: key 'hidden_act': expected one of {sorted(_ACTIVATIONS)}, got {act!r}")
        return normalize_llama_like(raw, path, family, _ACTIVATIONS[act], sub_norms=True)

    return normalize


def _binary(raw: dict) -> bool:
    return quantization_config(raw).get("quant_method") == BINARY


FAMILY = register_family(
    Family(
        name="bitnet",
        description="model_type 'bitnet' (BitNet b1.58 2B4T: ReLU^2, sub-norms), packed or bf16 master weights",
        matches=lambda raw: raw.get("model_type") == "bitnet" and not _binary(raw),
        normalize=_normalizer("bitnet"),
    )
)

BINARY_FAMILY = register_family(
    Family(
        name="bitnet-binary",
        description=f"model_type 'bitnet' with quantization_config.quant_method '{BINARY}' (the original BitNet's "
                    "binary weights, W1A8; edgebit's format, written by `edgebit train --weights binary`)",
        matches=lambda raw: raw.get("model_type") == "bitnet" and _binary(raw),
        normalize=_normalizer("bitnet-binary"),
    )
)
