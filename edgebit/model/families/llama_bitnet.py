"""Llama-architecture checkpoints whose linears are BitNet b1.58 ternary (model_type "llama" with
quantization_config.quant_method "bitnet", e.g. Falcon3-*-1.58bit, Llama3-8B-1.58): SiLU, no sub-norms."""

from __future__ import annotations

from pathlib import Path

from edgebit.errors import ConfigError
from edgebit.model.config import Family, ModelConfig, register_family
from edgebit.model.families.llama_like import normalize_llama_like
from edgebit.model.families.quant_scheme import quantization_config


def _normalize(raw: dict, path: Path) -> ModelConfig:
    act = raw.get("hidden_act", "silu")
    if act != "silu":
        raise ConfigError(f"{path}: key 'hidden_act': expected 'silu' for a Llama-style checkpoint, got {act!r}")
    return normalize_llama_like(raw, path, "llama-bitnet", "silu", sub_norms=False)


FAMILY = register_family(
    Family(
        name="llama-bitnet",
        description="model_type 'llama' with quantization_config.quant_method 'bitnet' (SiLU, no sub-norms)",
        matches=lambda raw: raw.get("model_type") == "llama"
        and quantization_config(raw).get("quant_method") == "bitnet",
        normalize=_normalize,
    )
)
