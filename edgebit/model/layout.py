"""Where a checkpoint family stores each tensor the reference model needs.

Most families use the Llama names (model.layers.{i}.self_attn.q_proj.weight, ...), one tensor per linear. Others
differ: OLMo stores q/k/v as one fused `att_proj` and the MLP's two input halves as one `ff_proj`, and has norms
with no weight at all. A Layout names, per layer, the stored linears (each split by rows into the logical linears
of the reference model: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj) and the stored norm weights
(None: a norm without a weight, which the loader gives a weight of ones). The loader, the tensor check and
`inspect` all read the same Layout, so a family is described once.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgebit.model.config import ModelConfig, family_of

LOGICAL_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class StoredLinear:
    name: str  # the stored tensor's name without ".weight"
    parts: tuple[tuple[str, int], ...]  # (logical linear, rows) in the stored row order
    in_features: int

    @property
    def out_features(self) -> int:
        return sum(rows for _, rows in self.parts)


@dataclass(frozen=True)
class LayerNames:
    attn_norm: str | None  # stored weight names; None: a norm without a weight
    mlp_norm: str | None
    attn_sub_norm: str | None  # only with cfg.sub_norms
    ffn_sub_norm: str | None
    linears: tuple[StoredLinear, ...]


@dataclass(frozen=True)
class Layout:
    embed: str
    final_norm: str | None
    lm_head: str | None  # None: the head is the embedding (tied)
    layers: tuple[LayerNames, ...]

    def stored_linears(self):
        for layer in self.layers:
            yield from layer.linears


def llama_layout(cfg: ModelConfig) -> Layout:
    """model.embed_tokens, model.layers.{i}.{input_layernorm, self_attn.*_proj, post_attention_layernorm,
    mlp.*_proj} and the family's sub-norm names, model.norm, lm_head."""
    attn_sub, ffn_sub = family_of(cfg).sub_norm_names
    shapes = cfg.linear_shapes()
    layers = []
    for i in range(cfg.num_layers):
        p = f"model.layers.{i}."
        linears = tuple(
            StoredLinear(p + ("self_attn." if name in LOGICAL_LINEARS[:4] else "mlp.") + name,
                         ((name, shapes[name][0]),), shapes[name][1])
            for name in LOGICAL_LINEARS)
        layers.append(LayerNames(p + "input_layernorm.weight", p + "post_attention_layernorm.weight",
                                 p + attn_sub + ".weight" if cfg.sub_norms else None,
                                 p + ffn_sub + ".weight" if cfg.sub_norms else None, linears))
    return Layout("model.embed_tokens.weight", "model.norm.weight",
                  None if cfg.tie_word_embeddings else "lm_head.weight", tuple(layers))


def layout_of(cfg: ModelConfig) -> Layout:
    make = family_of(cfg).layout
    return make(cfg) if make is not None else llama_layout(cfg)
