"""Normalization shared by the Llama-shaped families: sizes, heads, RoPE and token ids."""

from __future__ import annotations

from pathlib import Path

from edgebit.errors import ConfigError
from edgebit.model.config import (
    MAX_LAYERS,
    MAX_POSITIONS,
    MAX_VOCAB,
    ConfigReader,
    ModelConfig,
    QuantScheme,
    RopeConfig,
)
from edgebit.model.families.quant_scheme import check_groups, parse_quant_scheme, quantization_config  # noqa: F401

LINEAR_MODULES = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                  "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")


def _rope(reader: ConfigReader) -> RopeConfig:
    # transformers 5 writes rope_parameters; older checkpoints write rope_theta and rope_scaling.
    params = reader.raw.get("rope_parameters")
    scaling = reader.raw.get("rope_scaling")
    if params is not None and not isinstance(params, dict):
        raise ConfigError(f"{reader.path}: key 'rope_parameters': expected an object, got {params!r}")
    if scaling is not None and not isinstance(scaling, dict):
        raise ConfigError(f"{reader.path}: key 'rope_scaling': expected an object or null, got {scaling!r}")
    merged = {**(scaling or {}), **(params or {})}
    theta = merged.get("rope_theta", reader.raw.get("rope_theta", 10000.0))
    sub = ConfigReader({"rope_theta": theta, **merged}, reader.path)
    theta = sub.float("rope_theta", lo=1.0)
    kind = merged.get("rope_type", merged.get("type", "default"))
    if kind == "default":
        return RopeConfig(theta=theta)
    if kind == "llama3":
        return RopeConfig(
            theta=theta,
            kind="llama3",
            factor=sub.float("factor", lo=1.0),
            low_freq_factor=sub.float("low_freq_factor", lo=1e-6),
            high_freq_factor=sub.float("high_freq_factor", lo=1e-6),
            original_max_position_embeddings=sub.int("original_max_position_embeddings", hi=MAX_POSITIONS),
        )
    raise ConfigError(f"{reader.path}: key 'rope_type': {kind!r} is not supported (supported: default, llama3)")


def normalize_llama_like(raw: dict, path: Path, family: str, activation: str, sub_norms: bool,
                         quant: QuantScheme | None = None, tie_default: bool = False) -> ModelConfig:
    """quant None: read from transformers' quantization_config. tie_default is what the publisher's config class
    assumes when config.json omits tie_word_embeddings (False for transformers' BitNetConfig and LlamaConfig)."""
    r = ConfigReader(raw, path)
    if raw.get("attention_bias") or raw.get("mlp_bias"):
        raise ConfigError(f"{path}: key 'attention_bias'/'mlp_bias': biases are not supported (BitNet has none)")
    hidden = r.int("hidden_size")
    heads = r.int("num_attention_heads")
    kv_heads = r.int("num_key_value_heads", default=heads)
    default_head_dim = hidden // heads if hidden % heads == 0 else None
    head_dim = r.int("head_dim", default=default_head_dim) if raw.get("head_dim") is not None else default_head_dim
    if head_dim is None:
        raise ConfigError(f"{path}: key 'hidden_size': {hidden} is not divisible by num_attention_heads={heads}")
    if head_dim % 2:
        raise ConfigError(f"{path}: key 'head_dim': expected an even number for RoPE, got {head_dim}")
    if heads % kv_heads:
        raise ConfigError(
            f"{path}: key 'num_key_value_heads': {kv_heads} does not divide num_attention_heads={heads}"
        )
    eos = r.token_ids("eos_token_id")
    num_layers = r.int("num_hidden_layers", hi=MAX_LAYERS)
    if quant is None:
        names = [f"model.layers.{i}.{m}" for i in range(num_layers) for m in LINEAR_MODULES]
        quant = parse_quant_scheme(raw, path, names)
    cfg = ModelConfig(
        family=family,
        vocab_size=r.int("vocab_size", hi=MAX_VOCAB),
        hidden_size=hidden,
        intermediate_size=r.int("intermediate_size"),
        num_layers=num_layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        max_position_embeddings=r.int("max_position_embeddings", default=4096, hi=MAX_POSITIONS),
        rms_norm_eps=r.float("rms_norm_eps", default=1e-6, lo=0.0, hi=1.0),
        rope=_rope(r),
        activation=activation,
        sub_norms=sub_norms,
        tie_word_embeddings=r.bool("tie_word_embeddings", default=tie_default),
        bos_token_id=r.optional_token_id("bos_token_id"),
        eos_token_ids=eos,
        quant=quant,
    )
    check_groups(cfg.linear_shapes(), quant, path)
    return cfg
