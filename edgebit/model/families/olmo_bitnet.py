"""NousResearch's OLMo-Bitnet-1B: the OLMo architecture (allenai/OLMo's olmo/model.py) with every block linear a
BitLinear158, published in the hf_olmo layout (config.json: hf_olmo's OLMoConfig, model_type "olmo", OLMo's own
ModelConfig keys d_model, n_heads, mlp_ratio, ...; tensors under model.transformer.*) and loaded with
trust_remote_code. Float master weights, quantized at every forward by BitLinear158.

Confirmed from the published code (docs/weight-layout.md "OLMo-Bitnet" says where each point was read):
- BitLinear158(nn.Linear): self.norm = RMSLayerNorm(config, elementwise_affine=False) -- an RMSNorm with no
  weight, eps 1e-5 (RMSLayerNorm's default); forward: x_norm = norm(x); activation_quant (per token,
  127 / max|x| clamped at 1e-5, round, clamp [-128, 127]); weight_quant (1 / mean|W| clamped at 1e-5, round,
  clamp [-1, 1]); y = F.linear(x_quant, w_quant): no bias, even if the module has one;
- OLMoSequentialBlock: x + attn_out(attention(att_proj(attn_norm(x)))), then + ff_out(act(ff_proj(ff_norm(x))));
  att_proj fused, split q, k, v by rows (d_model, kv, kv); ff_proj fused and SwiGLU `x, gate = x.chunk(2)`,
  `silu(gate) * x`: the FIRST half is the up projection, the SECOND the gate; ff_out takes hidden / 2;
- one BitLinear158 quantizes the whole fused tensor: one absmean scale over all of att_proj (and of ff_proj),
  so the split linears share it, and one activation quantization of the normed input;
- norms: LayerNorm.build -> "default"/"low_precision" F.layer_norm, "rms" RMSLayerNorm, eps 1e-5, a weight only
  with layer_norm_with_affine, a bias only with bias_for_layer_norm (None: include_bias);
- RoPE: head_dim = d_model / n_heads, theta 10000 (rope_theta where the code reads it), rotate-half order;
- wte has embedding_size rows (>= vocab_size, padded to a multiple of 128): the logits have embedding_size
  entries; the head is wte (weight_tying) or transformer.ff_out.
"""

from __future__ import annotations

from pathlib import Path

from edgebit.errors import ConfigError
from edgebit.model.config import (MAX_LAYERS, MAX_POSITIONS, MAX_VOCAB, ConfigReader, Family, ModelConfig,
                                  QuantScheme, RopeConfig, register_family)
from edgebit.model.layout import LayerNames, Layout, StoredLinear

NORM_EPS = 1e-5  # LayerNormBase's and RMSLayerNorm's default eps, which every OLMo norm (and BitLinear158's) uses
_NORMS = {"default": "layer", "low_precision": "layer", "rms": "rms"}
# (key, OLMo's ModelConfig default when the key is absent, the value edgebit requires, why): any other value is
# refused naming the key
_REQUIRED = (
    ("block_type", "sequential", "sequential", "edgebit reads OLMoSequentialBlock's fused att_proj / ff_proj"),
    ("activation_type", "swiglu", "swiglu", "the MLP edgebit runs is SwiGLU"),
    ("alibi", False, False, "ALiBi positions are not implemented"),
    ("rope", False, True, "edgebit implements RoPE positions only; without rope OLMo learns wpe embeddings"),
    ("attention_layer_norm", False, False, "q/k norms are not implemented"),
    ("clip_qkv", None, None, "clipping q/k/v is not implemented"),
    ("scale_logits", False, False, "scaled logits are not implemented"),
    ("block_group_size", 1, 1, "edgebit reads the transformer.blocks.{i} tensor names"),
    ("include_bias", True, False, "OLMo-Bitnet has no biases (and BitLinear158 would ignore them)"),
    ("weight_tying", True, True, "the published code's untied output layer (transformer.ff_out) was not confirmed "
                                 "to be a float nn.Linear rather than a BitLinear158"),
)


def _matches(raw: dict) -> bool:
    return raw.get("model_type") in ("olmo", "hf_olmo") and "d_model" in raw


def _check(raw: dict, path: Path) -> None:
    for key, default, want, why in _REQUIRED:
        got = raw.get(key, default)
        if got != want or type(got) is not type(want):
            shown = repr(raw[key]) if key in raw else f"missing (OLMo's default: {default!r})"
            raise ConfigError(f"{path}: key '{key}': expected {want!r} ({why}), got {shown}")
    if raw.get("bias_for_layer_norm"):
        raise ConfigError(f"{path}: key 'bias_for_layer_norm': expected false or null (OLMo-Bitnet's norms have no "
                          f"bias), got {raw['bias_for_layer_norm']!r}")
    eps = raw.get("layer_norm_eps")
    if eps is not None and eps != NORM_EPS:
        raise ConfigError(f"{path}: key 'layer_norm_eps': expected {NORM_EPS} (the eps of OLMo-Bitnet's norms and of "
                          f"the RMSLayerNorm inside every BitLinear158), got {eps!r}")
    if raw.get("quantization_config") is not None:
        raise ConfigError(f"{path}: key 'quantization_config': OLMo-Bitnet's linears quantize themselves "
                          "(BitLinear158); expected no quantization_config")


def _normalize(raw: dict, path: Path) -> ModelConfig:
    _check(raw, path)
    r = ConfigReader(raw, path)
    d_model, heads = r.int("d_model"), r.int("n_heads")
    if d_model % heads:
        raise ConfigError(f"{path}: key 'n_heads': {heads} does not divide d_model={d_model}")
    head_dim = d_model // heads
    if head_dim % 2:
        raise ConfigError(f"{path}: key 'n_heads': head_dim {head_dim} = d_model / n_heads must be even for RoPE")
    kv_heads = raw.get("n_kv_heads")
    if kv_heads is None:
        kv_heads = 1 if r.bool("multi_query_attention", False) else heads
    else:
        kv_heads = r.int("n_kv_heads", hi=heads)
        if raw.get("multi_query_attention") and kv_heads != 1:
            raise ConfigError(f"{path}: key 'n_kv_heads': {kv_heads} contradicts multi_query_attention true")
    if heads % kv_heads:
        raise ConfigError(f"{path}: key 'n_kv_heads': {kv_heads} does not divide n_heads={heads}")
    hidden = r.int("mlp_hidden_size") if raw.get("mlp_hidden_size") is not None else r.int("mlp_ratio") * d_model
    if hidden % 2:
        raise ConfigError(f"{path}: key 'mlp_hidden_size': {hidden} is odd; SwiGLU splits ff_proj's output in halves")
    vocab = r.int("vocab_size", hi=MAX_VOCAB)
    rows = r.int("embedding_size", hi=MAX_VOCAB) if raw.get("embedding_size") is not None else vocab
    if rows < vocab:
        raise ConfigError(f"{path}: key 'embedding_size': {rows} is smaller than vocab_size={vocab}")
    kind = raw.get("layer_norm_type", "default")
    if kind not in _NORMS:
        raise ConfigError(f"{path}: key 'layer_norm_type': expected one of {', '.join(_NORMS)}, got {kind!r}")
    return ModelConfig(
        family="olmo-bitnet",
        vocab_size=rows,  # the logits have one entry per wte row, padding rows included
        hidden_size=d_model,
        intermediate_size=hidden // 2,
        num_layers=r.int("n_layers", hi=MAX_LAYERS),
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        max_position_embeddings=r.int("max_sequence_length", default=1024, hi=MAX_POSITIONS),
        rms_norm_eps=NORM_EPS,
        rope=RopeConfig(theta=r.float("rope_theta", default=10000.0, lo=1.0)),
        activation="silu",
        sub_norms=False,
        tie_word_embeddings=True,
        bos_token_id=None,  # OLMo's tokenizer prepends nothing; eos ends each document
        eos_token_ids=r.token_ids("eos_token_id"),
        quant=QuantScheme(inner_norm="rms", inner_norm_eps=NORM_EPS),
        norm=_NORMS[kind],
        norm_weights=r.bool("layer_norm_with_affine", True),  # OLMo's ModelConfig default
    )


def _layout(cfg: ModelConfig) -> Layout:
    """hf_olmo's names: OLMoForCausalLM.model (base_model_prefix "model") is the OLMo module, whose parameters are
    transformer.wte, transformer.blocks.{i}.*, transformer.ln_f (hf_olmo/convert_olmo_to_hf.py writes them so)."""
    affine = cfg.norm_weights  # layer_norm_with_affine
    h, f, q, kv = cfg.hidden_size, cfg.intermediate_size, cfg.q_size, cfg.kv_size
    layers = []
    for i in range(cfg.num_layers):
        p = f"model.transformer.blocks.{i}."
        layers.append(LayerNames(
            p + "attn_norm.weight" if affine else None, p + "ff_norm.weight" if affine else None, None, None, (
                StoredLinear(p + "att_proj", (("q_proj", q), ("k_proj", kv), ("v_proj", kv)), h),
                StoredLinear(p + "attn_out", (("o_proj", h),), q),
                StoredLinear(p + "ff_proj", (("up_proj", f), ("gate_proj", f)), h),  # x, gate = chunk(2)
                StoredLinear(p + "ff_out", (("down_proj", h),), f))))
    return Layout("model.transformer.wte.weight", "model.transformer.ln_f.weight" if affine else None, None,
                  tuple(layers))


FAMILY = register_family(
    Family(
        name="olmo-bitnet",
        description="hf_olmo layout (model_type 'olmo' with d_model, n_heads, ...; NousResearch/OLMo-Bitnet-1B: "
                    "BitLinear158 in every block linear, float masters)",
        matches=_matches,
        normalize=_normalize,
        layout=_layout,
    )
)
