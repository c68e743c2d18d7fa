"""GGUF metadata -> ModelConfig, and GGUF tensor names <-> the HF names edgebit's loader uses.

Architectures (general.architecture), each confirmed in its publisher's code (docs/weight-layout.md, "GGUF"):
- "bitnet-25", "bitnet-b1.58": bitnet.cpp's BitNet b1.58 2B4T graph (build_bitnet_158: ReLU^2 gated FFN,
  attn_sub_norm / ffn_sub_norm); q/k rows in HF order (its converter does not permute them).
- "bitnet": llama.cpp's (and bitnet.cpp's) BitNet graph: sub-norms, SiLU unless `bitnet.hidden_activation` says
  otherwise (llama.cpp reads that key; "relu2" for 2B4T-style models), NEOX (rotate-half) RoPE, q/k rows in HF order.
- "llama" with ternary linears (Falcon3-1.58bit, Llama3-8B-1.58, TriLM conversions): SiLU, no sub-norms; llama.cpp's
  converter permutes the q and k rows for its interleaved RoPE (LlamaModel.permute), which is undone here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgebit.errors import CheckpointError, ConfigError
from edgebit.model.config import (MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, ConfigReader, ModelConfig, QuantScheme,
                                  RopeConfig, family_of)


@dataclass(frozen=True)
class Arch:
    family: str  # edgebit family whose arithmetic the graph computes
    activation: str  # default FFN activation
    sub_norms: bool
    permuted_qk: bool  # q/k rows interleaved by llama.cpp's converter for its non-NEOX RoPE


ARCHS = {
    "bitnet-25": Arch("bitnet", "relu2", True, False),
    "bitnet-b1.58": Arch("bitnet", "relu2", True, False),
    "bitnet": Arch("bitnet", "silu", True, False),
    "llama": Arch("llama-bitnet", "silu", False, True),
}
ACTIVATIONS = {"silu": "silu", "swiglu": "silu", "relu2": "relu2"}

# GGUF names (llama.cpp's gguf-py TENSOR_NAMES) -> the loader's HF names, per layer and global.
LINEARS = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
           "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
           "ffn_down": "mlp.down_proj"}
NORMS = {"attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
GLOBAL = {"token_embd.weight": "model.embed_tokens.weight", "output_norm.weight": "model.norm.weight",
          "output.weight": "lm_head.weight"}
ROPE_FREQS = "rope_freqs.weight"


def hf_to_gguf_names(cfg: ModelConfig) -> dict[str, str]:
    """Every HF tensor name of the config's model (linears without '.weight') -> its GGUF name."""
    attn_sub, ffn_sub = family_of(cfg).sub_norm_names
    out = {hf: g for g, hf in GLOBAL.items()}
    if cfg.tie_word_embeddings:
        del out["lm_head.weight"]
    for i in range(cfg.num_layers):
        p = f"model.layers.{i}."
        for g, hf in LINEARS.items():
            out[p + hf] = f"blk.{i}.{g}"
        for g, hf in NORMS.items():
            out[p + hf + ".weight"] = f"blk.{i}.{g}.weight"
        if cfg.sub_norms:
            out[p + attn_sub + ".weight"] = f"blk.{i}.attn_sub_norm.weight"
            out[p + ffn_sub + ".weight"] = f"blk.{i}.ffn_sub_norm.weight"
    return out


def qk_heads(cfg: ModelConfig, hf_linear: str) -> int | None:
    """Heads whose rows llama.cpp's converter interleaves in this linear, or None (not q/k)."""
    if hf_linear.endswith("q_proj"):
        return cfg.num_heads
    if hf_linear.endswith("k_proj"):
        return cfg.num_kv_heads
    return None


def permute_rows(rows, heads: int, undo: bool):
    """llama.cpp's LlamaModel.permute on the rows of an [N, ...] array (undo=True inverts it): within each head of
    D rows, HF's rotate-half order (i, i + D/2) becomes adjacent pairs (2i, 2i + 1)."""
    n = rows.shape[0]
    d = n // heads
    if undo:
        return rows.reshape(heads, d // 2, 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)
    return rows.reshape(heads, 2, d // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def _int_key(kv: dict, key: str) -> bool:
    value = kv.get(key)
    return isinstance(value, int) and not isinstance(value, bool)


def config_from_gguf(g, rope_factors=None) -> ModelConfig:
    """The frozen config of GGUF file G (a reader.GGUFFile); rope_factors: the rope_freqs tensor if the file has
    one (llama.cpp's Llama 3 RoPE frequency factors)."""
    arch_name = g.kv.get("general.architecture")
    if arch_name not in ARCHS:
        raise ConfigError(f"{g.path}: metadata 'general.architecture': {arch_name!r} is not a ternary architecture "
                          f"edgebit reads ({', '.join(ARCHS)})")
    arch = ARCHS[arch_name]
    a = arch_name + "."
    r = ConfigReader(g.kv, g.path)
    hidden = r.int(a + "embedding_length")
    heads = r.int(a + "attention.head_count")
    kv_heads = r.int(a + "attention.head_count_kv", default=heads)
    if hidden % heads and not _int_key(g.kv, a + "attention.key_length"):
        raise ConfigError(f"{g.path}: key '{a}embedding_length': {hidden} is not divisible by {heads} heads")
    head_dim = r.int(a + "attention.key_length", default=hidden // heads)
    for key in ("attention.value_length", "rope.dimension_count"):
        if r.int(a + key, default=head_dim) != head_dim:
            raise ConfigError(f"{g.path}: key '{a}{key}': {g.kv[a + key]} differs from the head size {head_dim}; "
                              "edgebit rotates and attends over the whole head")
    if heads % kv_heads or head_dim % 2:
        raise ConfigError(f"{g.path}: key '{a}attention.head_count_kv': {kv_heads} KV heads of size {head_dim} do "
                          f"not fit {heads} query heads")
    act = g.kv.get(a + "hidden_activation", arch.activation)
    if act not in ACTIVATIONS:
        raise ConfigError(f"{g.path}: key '{a}hidden_activation': {act!r} is not one of {', '.join(ACTIVATIONS)}")
    scaling = g.kv.get(a + "rope.scaling.type", "none")
    factor = g.kv.get(a + "rope.scaling.factor", 1.0)
    if scaling not in ("none", "linear") or (scaling == "linear" and factor != 1.0):
        raise ConfigError(f"{g.path}: key '{a}rope.scaling.type': {scaling!r} with factor {factor!r} is not supported "
                          "(none, or linear with factor 1)")
    theta = r.float(a + "rope.freq_base", default=10000.0, lo=1.0)
    embd = g.tensors.get("token_embd.weight")
    if embd is None or len(embd.ne) != 2:
        raise CheckpointError(f"{g.path}: tensor 'token_embd.weight' is missing or not 2-D")
    vocab = embd.ne[1]
    if vocab != r.int(a + "vocab_size", default=vocab, hi=MAX_VOCAB):
        raise ConfigError(f"{g.path}: key '{a}vocab_size': {g.kv[a + 'vocab_size']} differs from token_embd's "
                          f"{vocab} rows")
    eos = [g.kv[k] for k in ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id") if _int_key(g.kv, k)]
    bos = g.kv.get("tokenizer.ggml.bos_token_id")
    return ModelConfig(
        family=arch.family,
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=r.int(a + "feed_forward_length"),
        num_layers=r.int(a + "block_count", hi=MAX_LAYERS),
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        max_position_embeddings=r.int(a + "context_length", default=4096, hi=MAX_POSITIONS),
        rms_norm_eps=r.float(a + "attention.layer_norm_rms_epsilon", lo=0.0, hi=1.0),
        rope=rope_config(g, theta, head_dim, rope_factors),
        activation=ACTIVATIONS[act],
        sub_norms=arch.sub_norms,
        tie_word_embeddings="output.weight" not in g.tensors,
        bos_token_id=bos if _int_key(g.kv, "tokenizer.ggml.bos_token_id") else None,
        eos_token_ids=tuple(dict.fromkeys(eos)),
        # GGUF stores ternary codes with a scale that multiplies: transformers' offline AutoBitLinear arithmetic.
        quant=QuantScheme("autobitlinear", "offline"),
    )


# edgebit's own keys for the Llama 3 RoPE parameters it exports (llama.cpp keeps only the rope_freqs tensor, from
# which they cannot always be recovered); llama.cpp ignores keys it does not know.
LLAMA3_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")


def llama3_factors(rope: RopeConfig, head_dim: int):
    """Per-frequency divisors llama.cpp applies (rope_freqs), as its converter computes them from a llama3 config."""
    import numpy as np

    from edgebit.model.reference import rope_inv_freq

    base = 1.0 / (rope.theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    return (base / rope_inv_freq(head_dim, rope).double().numpy()).astype(np.float32)


def rope_config(g, theta: float, head_dim: int, factors) -> RopeConfig:
    if factors is None:
        return RopeConfig(theta=theta)
    import numpy as np

    if factors.shape != (head_dim // 2,) or not np.isfinite(factors).all() or (factors <= 0).any():
        raise CheckpointError(f"{g.path}: tensor '{ROPE_FREQS}': expected {head_dim // 2} positive factors")
    if (factors == 1).all():
        return RopeConfig(theta=theta)
    keys = [f"edgebit.rope.{k}" for k in LLAMA3_KEYS]
    if all(k in g.kv for k in keys):
        r = ConfigReader(g.kv, g.path)
        rope = RopeConfig(theta, "llama3", *(r.float(k, lo=1e-6) for k in keys[:3]),
                          r.int(keys[3], hi=MAX_POSITIONS))
    else:
        rope = _invert_llama3(factors, theta, head_dim, g)
    if not np.allclose(llama3_factors(rope, head_dim), factors, rtol=1e-5, atol=0):
        raise CheckpointError(f"{g.path}: tensor '{ROPE_FREQS}': factors are not those of a Llama 3 RoPE scaling "
                              f"({'edgebit.rope.* keys disagree' if keys[0] in g.kv else 'no parameters fit'})")
    return rope


def _invert_llama3(factors, theta: float, head_dim: int, g) -> RopeConfig:
    """Llama 3 scaling parameters that reproduce llama.cpp's rope_freqs factors. factor is the largest divisor;
    the smoothing between the two wavelength thresholds is linear in 1 / wavelength, so two or more smoothed
    frequencies give the thresholds exactly, and with fewer any thresholds in the gaps between neighbouring
    wavelengths (and matching the one smoothed value) reproduce the same factors."""
    import numpy as np

    inv = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))  # falls with the index
    f = factors.astype(np.float64)
    top = f.max()
    if top <= 1:
        raise CheckpointError(f"{g.path}: tensor '{ROPE_FREQS}': factors below 1 are not a Llama 3 RoPE scaling")
    high, medium = f <= 1 + 1e-6, (f > 1 + 1e-6) & (f < top * (1 - 1e-6))
    smooth = (1 / f - 1 / top) / (1 - 1 / top)  # 1 at high frequencies, 0 at low ones
    x = inv / (2 * math.pi)  # 1 / wavelength
    if medium.sum() >= 2:
        slope, icept = np.polyfit(x[medium], smooth[medium], 1)  # smooth = (x - u) / (v - u)
        u = -icept / slope
        v = u + 1 / slope
    else:
        x_high = x[high].min() if high.any() else x.max() * 2  # slowest still-unscaled frequency
        x_low = x[~high & ~medium].max() if (~high & ~medium).any() else x.min() / 2  # fastest fully scaled one
        if medium.any():
            xm, sm = x[medium][0], smooth[medium][0]
            delta = min(xm - x_low, (x_high - xm) * sm / (1 - sm)) / 2
            u, v = xm - delta, xm - delta + delta / sm
        else:
            u, v = x_low + (x_high - x_low) / 3, x_low + 2 * (x_high - x_low) / 3
    old_len = int(g.kv.get(g.kv["general.architecture"] + ".rope.scaling.original_context_length", 8192))
    # low_freq_wavelen = old_len / low_freq_factor = 1 / u; high_freq_wavelen = old_len / high_freq_factor = 1 / v
    return RopeConfig(theta, "llama3", float(top), float(old_len * u), float(old_len * v), old_len)
