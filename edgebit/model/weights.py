"""Loading a checkpoint into the weights every later stage uses: ternary linears in edgebit's packed layout
(2 bits a weight + one fp32 gamma), float norms, and the embedding / head in their stored precision.

Tensors are read and converted one at a time, so peak memory is what is kept plus one tensor in flight.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from edgebit.errors import CheckpointError, LayoutError
from edgebit.model.checkpoint import Checkpoint, open_checkpoint
from edgebit.model.config import ModelConfig
from edgebit.model.layout import StoredLinear, layout_of
from edgebit.quant.binary import binarize, row_scales
from edgebit.quant.packing import codes_to_layout, hf_unpack_codes, packed_row_bytes
from edgebit.quant.ternary import absmean_ternarize


@dataclass
class TernaryWeight:
    packed: torch.Tensor  # uint8 [N, ceil(K/128)*32], layout v2 (edgebit/quant/packing.py)
    gamma: torch.Tensor  # fp32, 0-dim (one per tensor) or [N] (binary groups): y = (x_q . W_t) / s * gamma
    out_features: int
    in_features: int
    # A norm inside the linear, before the activation quantization: norm(x) * input_norm (K,), of kind "rms"
    # (quantization_config.use_rms_norm: its own weight; OLMo-Bitnet: ones) or "layer" (binary BitNet: ones,
    # in input_norm_groups groups of K / groups features each normalized on its own).
    input_norm: torch.Tensor | None = None
    input_norm_eps: float = 0.0
    input_norm_kind: str = "rms"
    input_norm_groups: int = 1

    def same_input_norm(self, other: "TernaryWeight") -> bool:
        """Whether both linears normalize an input the same way (so they may share one quantization of it)."""
        if self.input_norm is None or other.input_norm is None:
            return self.input_norm is None and other.input_norm is None
        return ((self.input_norm_kind, self.input_norm_eps, self.input_norm_groups)
                == (other.input_norm_kind, other.input_norm_eps, other.input_norm_groups)
                and torch.equal(self.input_norm, other.input_norm))


@dataclass
class LayerWeights:
    attn_norm: torch.Tensor  # (H,) input_layernorm
    q: TernaryWeight
    k: TernaryWeight
    v: TernaryWeight
    o: TernaryWeight
    attn_sub_norm: torch.Tensor | None  # (Hq,) before o_proj; BitNet only
    mlp_norm: torch.Tensor  # (H,) post_attention_layernorm
    gate: TernaryWeight
    up: TernaryWeight
    down: TernaryWeight
    ffn_sub_norm: torch.Tensor | None  # (F,) before down_proj; BitNet only


@dataclass
class ModelWeights:
    config: ModelConfig
    embed: torch.Tensor  # (V, H), stored precision
    layers: list[LayerWeights]
    final_norm: torch.Tensor  # (H,)
    lm_head: torch.Tensor | None  # (V, H); None when tied to embed
    weight_form: str = "master"  # the checkpoint's (Checkpoint.weight_form): packed/unpacked carry a weight_scale

    @property
    def head(self) -> torch.Tensor:
        return self.embed if self.lm_head is None else self.lm_head

    def kept_bytes(self) -> int:
        seen: dict[int, int] = {}
        for t in _all_tensors(self):
            seen[t.data_ptr()] = t.numel() * t.element_size()
        return sum(seen.values())


def _all_tensors(w: ModelWeights):
    yield w.embed
    yield w.final_norm
    if w.lm_head is not None:
        yield w.lm_head
    for layer in w.layers:
        for value in vars(layer).values():
            if isinstance(value, TernaryWeight):
                yield value.packed
                yield value.gamma
                if value.input_norm is not None:
                    yield value.input_norm
            elif value is not None:
                yield value


def _weight_scale(ckpt: Checkpoint, name: str) -> torch.Tensor:
    """weight_scale as fp32: 0-dim (one per tensor), or [groups] for grouped binary weights."""
    scale = ckpt.read(name + ".weight_scale").float().reshape(-1)
    bad = ~torch.isfinite(scale) | (scale <= 0)
    if bool(bad.any()):
        raise CheckpointError(f"{ckpt.file_of(name + '.weight_scale')}: tensor '{name}.weight_scale': "
                              f"expected positive finite numbers, got {float(scale[bad][0])}")
    return scale.reshape(()) if scale.numel() == 1 else scale


def _ternary_codes(ckpt: Checkpoint, name: str) -> torch.Tensor:
    """uint8 codes (w + 1) of an "unpacked" weight: float values transformers' offline AutoBitLinear uses as they
    are, so they must already be -1, 0 or +1 for the arithmetic to be ternary."""
    w = ckpt.read(name + ".weight")
    bad = (w != -1) & (w != 0) & (w != 1)
    if bool(bad.any()):
        row, col = (int(v) for v in bad.nonzero()[0])
        raise CheckpointError(
            f"{ckpt.file_of(name + '.weight')}: tensor '{name}.weight': value {float(w[row, col])} at row {row}, "
            f"column {col}; offline autobitlinear float weights are used as stored, so they must be -1, 0 or +1")
    return (w.to(torch.int16) + 1).to(torch.uint8)


def _binary_codes(ckpt: Checkpoint, name: str, w: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Binary weights (BitNet 2023, edgebit/quant/binary.py) as codes 0 / 2 and gamma (0-dim, or [N] for groups):
    float masters binarized here, or packed codes (+ weight_scale = beta per group, which multiplies)."""
    groups = ckpt.config.quant.groups
    if w is not None:
        w_b, beta = binarize(w, groups)
        codes = (w_b + 1).view(torch.uint8)
    else:
        codes, beta = hf_unpack_codes(ckpt.read(name + ".weight")), _weight_scale(ckpt, name)
        bad = (codes != 0) & (codes != 2)
        if bool(bad.any()):
            row, col = (int(v) for v in bad.nonzero()[0])
            raise CheckpointError(f"{ckpt.file_of(name + '.weight')}: {name}.weight: packed code "
                                  f"{int(codes[row, col])} at row {row}, column {col}; binary weights are codes "
                                  "0 (-1) and 2 (+1)")
    gamma = beta.reshape(()) if groups == 1 else row_scales(beta, codes.shape[0])
    return codes, gamma


def ternary_codes(ckpt: Checkpoint, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One linear's ternary codes uint8 [N, K] (w + 1) and gamma (fp32: 0-dim, or [N] for grouped binary weights),
    from any checkpoint form, in no particular layout. `name` has no '.weight' suffix. gamma follows the
    checkpoint's quantization scheme exactly as its publisher's code applies weight_scale (ModelConfig.quant,
    docs/weight-layout.md). Binary weights (codes 0 and 2 only) come through here too."""
    if ckpt.weight_form == "gguf":  # TQ1_0 / TQ2_0 / I2_S blocks decode in the GGUF checkpoint itself
        return ckpt.ternary_codes(name)
    if ckpt.weight_form == "master":
        w = ckpt.read(name + ".weight")
        if not bool(torch.isfinite(w).all()):
            raise CheckpointError(f"{ckpt.file_of(name + '.weight')}: tensor '{name}.weight': non-finite values")
        if ckpt.config.quant.weights == "binary":
            return _binary_codes(ckpt, name, w)
        w_t, gamma = absmean_ternarize(w)
        del w
        return (w_t + 1).view(torch.uint8), gamma
    if ckpt.config.quant.weights == "binary":
        return _binary_codes(ckpt, name, None)
    scale = _weight_scale(ckpt, name)
    # bitlinear: y / (s * weight_scale); offline autobitlinear: y / s * weight_scale
    gamma = torch.ones((), dtype=torch.float32) / scale if ckpt.config.quant.weight_scale_divides else scale
    if ckpt.weight_form == "packed":
        codes = hf_unpack_codes(ckpt.read(name + ".weight"))
        bad = codes == 3
        if bool(bad.any()):
            row, col = (int(v) for v in bad.nonzero()[0])
            raise CheckpointError(f"{ckpt.file_of(name + '.weight')}: {name}.weight: packed code 3 at row {row}, "
                                  f"column {col}; ternary codes are 0, 1, 2")
        return codes, gamma
    return _ternary_codes(ckpt, name), gamma


def load_linear(ckpt: Checkpoint, linear: StoredLinear, outs: list[torch.Tensor] | None = None) -> list[TernaryWeight]:
    """A stored linear's logical linears (one, or q/k/v and gate/up of a fused tensor) in edgebit's layout (v2),
    each written into its `outs` entry ([N, ceil(K/128)*32] uint8) when given. The stored tensor is quantized
    whole, as its publisher's code quantizes it (one gamma over a fused att_proj), and then split by rows."""
    quant = ckpt.config.quant
    codes, gamma = ternary_codes(ckpt, linear.name)
    norm_spec = quant.input_norm
    norm = None
    if quant.use_rms_norm:
        norm = _float(ckpt, linear.name + ".rms_norm.weight")
    elif norm_spec is not None:
        norm = torch.ones(linear.in_features)
    out, row = [], 0
    for j, (_, rows) in enumerate(linear.parts):
        part_gamma = gamma if gamma.dim() == 0 else gamma[row : row + rows].contiguous()
        try:
            packed = codes_to_layout(codes[row : row + rows], linear.name + ".weight", outs[j] if outs else None)
        except LayoutError as e:
            raise CheckpointError(f"{ckpt.file_of(linear.name + '.weight')}: {e}") from None
        out.append(TernaryWeight(packed, part_gamma, rows, linear.in_features, norm,
                                 norm_spec[1] if norm_spec else 0.0, norm_spec[0] if norm_spec else "rms",
                                 quant.groups if norm_spec and norm_spec[0] == "layer" else 1))
        row += rows
    return out


@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    lib = ctypes.CDLL(name) if name else None
    return lib if lib is not None and hasattr(lib, "malloc_trim") else None


def release_free_memory() -> None:
    """Hand freed per-tensor temporaries back to the OS. Without it glibc keeps them (its mmap threshold
    grows to their size, so they land on the heap) and a 2B model's load peaks ~0.7 GB above what is kept."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def _float(ckpt: Checkpoint, name: str) -> torch.Tensor:
    return ckpt.read(name).float()


def _norm_weight(ckpt: Checkpoint, name: str | None, size: int) -> torch.Tensor:
    """A stored norm weight, or ones for a norm the family stores no weight for (OLMo's non-affine norms)."""
    return torch.ones(size) if name is None else _float(ckpt, name)


def load_weights(ckpt: Checkpoint, on_tensor: Callable[[str], None] | None = None) -> ModelWeights:
    cfg = ckpt.config
    layout = layout_of(cfg)
    tick = on_tensor or (lambda name: None)
    # All packed weights live in one arena allocated up front: kept tensors interleaved with freed
    # per-tensor temporaries would fragment the heap and hold peak memory well above what is kept.
    per_layer = sum(n * packed_row_bytes(k) for n, k in cfg.linear_shapes().values())
    arena = torch.empty(per_layer * cfg.num_layers, dtype=torch.uint8)
    offset = 0
    layers = []
    h = cfg.hidden_size
    for names in layout.layers:
        lin = {}
        for linear in names.linears:
            outs = []
            for _, rows in linear.parts:
                size = rows * packed_row_bytes(linear.in_features)
                outs.append(arena[offset : offset + size].view(rows, packed_row_bytes(linear.in_features)))
                offset += size
            for (part, _), w in zip(linear.parts, load_linear(ckpt, linear, outs)):
                lin[part] = w
            release_free_memory()
            tick(linear.name)
        layers.append(
            LayerWeights(
                attn_norm=_norm_weight(ckpt, names.attn_norm, h),
                q=lin["q_proj"], k=lin["k_proj"], v=lin["v_proj"], o=lin["o_proj"],
                attn_sub_norm=_float(ckpt, names.attn_sub_norm) if cfg.sub_norms else None,
                mlp_norm=_norm_weight(ckpt, names.mlp_norm, h),
                gate=lin["gate_proj"], up=lin["up_proj"], down=lin["down_proj"],
                ffn_sub_norm=_float(ckpt, names.ffn_sub_norm) if cfg.sub_norms else None,
            )
        )
    embed = ckpt.read(layout.embed)
    tick(layout.embed.removesuffix(".weight"))
    lm_head = None if layout.lm_head is None else ckpt.read(layout.lm_head)
    return ModelWeights(cfg, embed, layers, _norm_weight(ckpt, layout.final_norm, h), lm_head, ckpt.weight_form)


def load_model_weights(path: str | Path, on_tensor: Callable[[str], None] | None = None) -> ModelWeights:
    with open_checkpoint(path) as ckpt:
        return load_weights(ckpt, on_tensor)
