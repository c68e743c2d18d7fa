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
from edgebit.model.checkpoint import LINEARS, Checkpoint, layer_prefix, linear_shape, open_checkpoint, sub_norm_tensor
from edgebit.model.config import ModelConfig
from edgebit.quant.packing import codes_to_layout, hf_unpack_codes, packed_row_bytes
from edgebit.quant.ternary import absmean_ternarize


@dataclass
class TernaryWeight:
    packed: torch.Tensor  # uint8 [N, ceil(K/128)*32], layout v2 (edgebit/quant/packing.py)
    gamma: torch.Tensor  # fp32 0-dim: y = (x_q . W_t) / s * gamma
    out_features: int
    in_features: int
    # quantization_config.use_rms_norm: RMSNorm(x) * input_norm (K,) before the activation quantization
    input_norm: torch.Tensor | None = None
    input_norm_eps: float = 0.0


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
    scale = ckpt.read(name + ".weight_scale").float().reshape(())
    if not bool(torch.isfinite(scale)) or float(scale) <= 0:
        raise CheckpointError(f"{ckpt.file_of(name + '.weight_scale')}: tensor '{name}.weight_scale': "
                              f"expected a positive finite number, got {float(scale)}")
    return scale


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


def ternary_codes(ckpt: Checkpoint, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One linear's ternary codes uint8 [N, K] (w + 1) and gamma (fp32 0-dim), from any checkpoint form, in no
    particular layout. `name` has no '.weight' suffix. gamma follows the checkpoint's quantization scheme exactly
    as its publisher's code applies weight_scale (ModelConfig.quant, docs/weight-layout.md)."""
    if ckpt.weight_form == "gguf":  # TQ1_0 / TQ2_0 / I2_S blocks decode in the GGUF checkpoint itself
        return ckpt.ternary_codes(name)
    if ckpt.weight_form == "master":
        w = ckpt.read(name + ".weight")
        if not bool(torch.isfinite(w).all()):
            raise CheckpointError(f"{ckpt.file_of(name + '.weight')}: tensor '{name}.weight': non-finite values")
        w_t, gamma = absmean_ternarize(w)
        del w
        return (w_t + 1).view(torch.uint8), gamma
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


def load_ternary(ckpt: Checkpoint, name: str, shape: tuple[int, int], out: torch.Tensor | None = None) -> TernaryWeight:
    """One linear's weight in edgebit's layout (v2), written into `out` ([N, ceil(K/128)*32] uint8) when given."""
    n, k = shape
    quant = ckpt.config.quant
    codes, gamma = ternary_codes(ckpt, name)
    try:
        packed = codes_to_layout(codes, name + ".weight", out)
    except LayoutError as e:
        raise CheckpointError(f"{ckpt.file_of(name + '.weight')}: {e}") from None
    del codes
    norm = _float(ckpt, name + ".rms_norm.weight") if quant.use_rms_norm else None
    return TernaryWeight(packed, gamma, n, k, norm, quant.rms_norm_eps if norm is not None else 0.0)


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


def load_weights(ckpt: Checkpoint, on_tensor: Callable[[str], None] | None = None) -> ModelWeights:
    cfg = ckpt.config
    tick = on_tensor or (lambda name: None)
    # All packed weights live in one arena allocated up front: kept tensors interleaved with freed
    # per-tensor temporaries would fragment the heap and hold peak memory well above what is kept.
    per_layer = sum(n * packed_row_bytes(k) for n, k in (linear_shape(cfg, name) for name in LINEARS))
    arena = torch.empty(per_layer * cfg.num_layers, dtype=torch.uint8)
    offset = 0
    layers = []
    for i in range(cfg.num_layers):
        p = layer_prefix(i)
        lin = {}
        for linear in LINEARS:
            n, k = linear_shape(cfg, linear)
            out = arena[offset : offset + n * packed_row_bytes(k)].view(n, packed_row_bytes(k))
            offset += n * packed_row_bytes(k)
            lin[linear.split(".")[1]] = load_ternary(ckpt, p + linear, (n, k), out)
            release_free_memory()
            tick(p + linear)
        layers.append(
            LayerWeights(
                attn_norm=_float(ckpt, p + "input_layernorm.weight"),
                q=lin["q_proj"], k=lin["k_proj"], v=lin["v_proj"], o=lin["o_proj"],
                attn_sub_norm=_float(ckpt, sub_norm_tensor(cfg, i, 0)) if cfg.sub_norms else None,
                mlp_norm=_float(ckpt, p + "post_attention_layernorm.weight"),
                gate=lin["gate_proj"], up=lin["up_proj"], down=lin["down_proj"],
                ffn_sub_norm=_float(ckpt, sub_norm_tensor(cfg, i, 1)) if cfg.sub_norms else None,
            )
        )
    embed = ckpt.read("model.embed_tokens.weight")
    tick("model.embed_tokens")
    lm_head = None if cfg.tie_word_embeddings else ckpt.read("lm_head.weight")
    return ModelWeights(cfg, embed, layers, _float(ckpt, "model.norm.weight"), lm_head, ckpt.weight_form)


def load_model_weights(path: str | Path, on_tensor: Callable[[str], None] | None = None) -> ModelWeights:
    with open_checkpoint(path) as ckpt:
        return load_weights(ckpt, on_tensor)
