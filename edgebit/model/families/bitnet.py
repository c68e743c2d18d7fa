"""BitNet as transformers names it (model_type "bitnet"): BitNet b1.58 (e.g. microsoft/bitnet-b1.58-2B-4T and its
-bf16 master-weight twin: ReLU^2 gated FFN, attn_sub_norm and ffn_sub_norm (SubLN), GQA, RoPE), and the same
architecture with the binary weights of the original BitNet (2023) in edgebit's own format: model_type
"bitnet_binary" with quantization_config quant_method "bitnet_binary" (what `edgebit train --weights binary` writes;
docs/weight-layout.md). Its own model_type, because transformers would load a "bitnet" config with an unknown
quant_method as a float model (reinitializing the packed weights it cannot read) and other ternary readers would take
its codes for ternary ones: a model_type nobody else knows is refused by all of them."""

from __future__ import annotations

from pathlib import Path

from edgebit.errors import ConfigError
from edgebit.model.config import Family, ModelConfig, register_family
from edgebit.model.families.llama_like import normalize_llama_like
from edgebit.model.families.quant_scheme import BINARY, binary_scheme

_ACTIVATIONS = {"relu2": "relu2", "silu": "silu"}


def _normalizer(family: str):
    def normalize(raw: dict, path: Path) -> ModelConfig:
        act = raw.get("hidden_act", "relu2")
        if act not in _ACTIVATIONS:
            raise ConfigError(f"{path}: key 'hidden_act': expected one of {sorted(_ACTIVATIONS)}, got {act!r}")
        quant = binary_scheme(raw, path) if family == "bitnet-binary" else None
        return normalize_llama_like(raw, path, family, _ACTIVATIONS[act], sub_norms=True, quant=quant)

    return normalize


FAMILY = register_family(
    Family(
        name="bitnet",
        description="model_type 'bitnet' (BitNet b1.58 2B4T: ReLU^2, sub-norms), packed or bf16 master weights",
        matches=lambda raw: raw.get("model_type") == "bitnet",
        normalize=_normalizer("bitnet"),
    )
)

BINARY_FAMILY = register_family(
    Family(
        name="bitnet-binary",
        description=f"model_type '{BINARY}' (the original BitNet's binary weights, W1A8, on BitNet b1.58's "
                    "architecture; edgebit's format, written by `edgebit train --weights binary`)",
        matches=lambda raw: raw.get("model_type") == BINARY,
        normalize=_normalizer("bitnet-binary"),
    )
)
