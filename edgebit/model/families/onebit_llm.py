"""The 1bitLLM reproductions of BitNet b1.58 (1bitLLM/bitnet_b1_58-large, -xl, -3B; config.json has
model_type "llama", architectures ["BitnetForCausalLM"], weight_bits 1, input_bits 8 and no
quantization_config; the modeling code ships with the checkpoint: modeling_bitnet.py + utils_quant.py).

Confirmed from that published code (the copy in microsoft/BitBLAS integration/BitNet, "modified from
huggingface.co/1bitLLM/bitnet_b1_58-3B"; docs/weight-layout.md "1bitLLM"):
- float master weights; BitLinear quantizes at every forward: weight_quant = absmean ternary
  (s = 1 / mean|W| clamped at 1e-5, round, clamp to [-1, 1], / s), activation_quant = per-token absmax int8
  (127 / max|x| clamped at 1e-5, round, clamp to [-128, 127], / s): edgebit's arithmetic exactly;
- Llama decoder layer (input_layernorm, post_attention_layernorm, model.norm: RMSNorm with rms_norm_eps);
- SubLN: self_attn.inner_attn_ln (hidden_size) on the attention output before o_proj, mlp.ffn_layernorm
  (intermediate_size) on act(gate) * up before down_proj, both RMSNorm with rms_norm_eps;
- head_dim = hidden_size / num_attention_heads (no head_dim key; 100 for the 3B model), rotate-half RoPE with
  rope_theta, rope_scaling must be null (the code raises NotImplementedError otherwise);
- lm_head an ordinary nn.Linear, untied unless tie_word_embeddings (BitnetConfig's default: False).
"""

from __future__ import annotations

from pathlib import Path

from edgebit.errors import ConfigError
from edgebit.model.config import Family, ModelConfig, QuantScheme, register_family
from edgebit.model.families.llama_like import normalize_llama_like

ARCHITECTURE = "BitnetForCausalLM"  # 1bitLLM's spelling; transformers' own class is BitNetForCausalLM
_ACTIVATIONS = ("silu", "relu2")


def _matches(raw: dict) -> bool:
    archs = raw.get("architectures")
    return raw.get("model_type") == "llama" and raw.get("quantization_config") is None and (
        (isinstance(archs, list) and ARCHITECTURE in archs) or "weight_bits" in raw)


def _normalize(raw: dict, path: Path) -> ModelConfig:
    for key, want in (("weight_bits", 1), ("input_bits", 8)):
        value = raw.get(key, want)
        if value != want or isinstance(value, bool):
            raise ConfigError(f"{path}: key '{key}': expected {want} (BitNet b1.58: ternary weights, int8 "
                              f"activations), got {value!r}")
    if raw.get("rope_scaling") is not None:
        raise ConfigError(f"{path}: key 'rope_scaling': expected null (the 1bitLLM code implements no RoPE "
                          f"scaling), got {raw['rope_scaling']!r}")
    if raw.get("head_dim") is not None:
        raise ConfigError(f"{path}: key 'head_dim': the 1bitLLM code derives it from hidden_size / "
                          "num_attention_heads; remove the key")
    act = raw.get("hidden_act", "silu")
    if act not in _ACTIVATIONS:
        raise ConfigError(f"{path}: key 'hidden_act': expected one of {list(_ACTIVATIONS)}, got {act!r}")
    return normalize_llama_like(raw, path, "1bitllm", act, sub_norms=True, quant=QuantScheme())


FAMILY = register_family(
    Family(
        name="1bitllm",
        description="model_type 'llama' with architectures ['BitnetForCausalLM'] and weight_bits 1 (1bitLLM "
                    "bitnet_b1_58-*: float masters, SiLU, inner_attn_ln / ffn_layernorm sub-norms)",
        matches=_matches,
        normalize=_normalize,
        sub_norm_names=("self_attn.inner_attn_ln", "mlp.ffn_layernorm"),
    )
)
