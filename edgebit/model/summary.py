"""What `edgebit inspect` reports about a checkpoint: shapes, parameter counts, zero fractions, sizes and
the bytes one decoded token reads. Shapes and counts come from the config alone; zero fractions read the
ternary codes one tensor at a time, in no layout (nothing is packed, nothing kept)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from edgebit.model.checkpoint import Checkpoint, expected_tensors
from edgebit.model.layout import LOGICAL_LINEARS, layout_of
from edgebit.model.weights import ternary_codes
from edgebit.quant.packing import LAYOUT_VERSION, packed_row_bytes

BF16_BYTES = 2
GAMMA_BYTES = 4  # one fp32 gamma per stored ternary tensor (per group of rows for grouped binary weights)


@dataclass
class LayerSummary:
    index: int
    zero_fraction: float  # of the layer's ternary weights
    linear_zero_fraction: dict[str, float] = field(default_factory=dict)


@dataclass
class Summary:
    path: str
    family: str
    weight_form: str
    quantization: str  # how the checkpoint's linears compute (ModelConfig.quant)
    layout_version: int
    config: dict
    linear_shapes: dict[str, list[int]]  # per decoder layer: name -> [out, in]
    ternary_params: int
    float_params: int
    total_params: int
    zero_fraction: float
    bytes_bf16: int  # every parameter at 16 bits
    bytes_packed: int  # ternary at 2 bits + gammas, float parameters at bf16
    bytes_per_token: int  # one decoded token: packed ternary body + bf16 head + norms + one embedding row
    kv_cache_bytes_per_position: int  # fp32 keys and values of every layer
    layers: list[LayerSummary]

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(ckpt: Checkpoint, on_layer: Callable[[int], None] | None = None) -> Summary:
    cfg = ckpt.config
    shapes = {name: list(shape) for name, shape in cfg.linear_shapes().items()}
    ternary_per_layer = sum(n * k for n, k in shapes.values())
    # Parameters are what the checkpoint stores (its family's layout, docs/weight-layout.md): a norm without a
    # weight (OLMo's non-affine norms) has none, a tied head is the embedding; weight_scale is not a parameter.
    stored = expected_tensors(cfg, "master")
    layout = layout_of(cfg)
    linear_names = {linear.name + ".weight" for linear in layout.stored_linears()}
    ternary = ternary_per_layer * cfg.num_layers
    floats = sum(math.prod(shape) for name, (_, shape) in stored.items() if name not in linear_names)
    norms_per_layer = (floats - math.prod(stored[layout.embed][1])
                       - (math.prod(stored[layout.lm_head][1]) if layout.lm_head else 0)
                       - (cfg.hidden_size if layout.final_norm else 0)) // cfg.num_layers

    layers, zeros_total = [], 0
    for i, names in enumerate(layout.layers):
        per_linear, zeros_layer = {}, 0
        for linear in names.linears:
            codes, _ = ternary_codes(ckpt, linear.name)
            row = 0
            for part, rows in linear.parts:
                zeros = int((codes[row : row + rows] == 1).sum())
                per_linear[part] = zeros / (rows * linear.in_features)
                zeros_layer += zeros
                row += rows
            del codes
        zeros_total += zeros_layer
        layers.append(LayerSummary(i, zeros_layer / ternary_per_layer,
                                   {name: per_linear[name] for name in LOGICAL_LINEARS}))
        if on_layer:
            on_layer(i)

    # Packed rows hold whole 128-weight blocks (layout v2 pads K), so a width like 8640 stores a little more.
    packed_per_layer = sum(n * packed_row_bytes(k) for n, k in shapes.values())
    gammas = sum(cfg.quant.groups for _ in layout.stored_linears())
    packed_body = packed_per_layer * cfg.num_layers + GAMMA_BYTES * gammas
    norm_bytes = BF16_BYTES * ((cfg.hidden_size if layout.final_norm else 0) + norms_per_layer * cfg.num_layers)
    return Summary(
        path=str(ckpt.path),
        family=cfg.family,
        weight_form=ckpt.weight_form,
        quantization=cfg.quant.describe(),
        layout_version=LAYOUT_VERSION,
        config=cfg.to_dict(),
        linear_shapes=shapes,
        ternary_params=ternary,
        float_params=floats,
        total_params=ternary + floats,
        zero_fraction=zeros_total / ternary,
        bytes_bf16=BF16_BYTES * (ternary + floats),
        bytes_packed=packed_body + BF16_BYTES * floats,
        bytes_per_token=packed_body + BF16_BYTES * cfg.vocab_size * cfg.hidden_size + norm_bytes
        + BF16_BYTES * cfg.hidden_size,
        kv_cache_bytes_per_position=2 * cfg.num_layers * cfg.kv_size * torch.finfo(torch.float32).bits // 8,
        layers=layers,
    )
