"""Checkpoints with random weights, written tensor by tensor in HF format (config.json, model.safetensors,
tokenizer.json): a tiny one for trying the toolchain, and a BitNet-b1.58-2B4T-shaped one for measuring
memory and speed at real size without downloading anything. Their text is noise by construction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from edgebit.atomic import atomic_output_dir
from edgebit.errors import EdgebitError
from edgebit.model.checkpoint import LINEARS, expected_tensors, layer_prefix
from edgebit.model.config import normalize_config
from edgebit.model.safetensors_io import write_safetensors
from edgebit.quant.packing import hf_pack
from edgebit.tokenizer import byte_level_tokenizer


@dataclass(frozen=True)
class Preset:
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    max_position_embeddings: int


PRESETS = {
    "tiny": Preset(512, 128, 256, 2, 4, 2, 512),
    # microsoft/bitnet-b1.58-2B-4T's shapes
    "2b4t": Preset(128256, 2560, 6912, 30, 20, 5, 4096),
}
FAMILIES = ("bitnet", "llama-bitnet")
FORMS = ("packed", "unpacked", "master")
LINEAR_CLASSES = ("bitlinear", "autobitlinear")
MODES = ("offline", "online")
# Each form's default quantization_config. Packed is microsoft/bitnet-b1.58-2B-4T's own (autobitlinear, offline:
# weight_scale multiplies), so the 2B4T-shaped checkpoints are read the way the official release is.
DEFAULT_QUANT = {"packed": ("autobitlinear", "offline"), "unpacked": ("autobitlinear", "offline"),
                 "master": ("autobitlinear", "online")}


def config_json(p: Preset, family: str, form: str, float_dtype: str, linear_class: str | None = None,
                mode: str | None = None, use_rms_norm: bool = False) -> dict:
    default_class, default_mode = DEFAULT_QUANT[form]
    quant = {"quant_method": "bitnet", "linear_class": linear_class or default_class,
             "quantization_mode": mode or default_mode}
    if use_rms_norm:
        quant.update(use_rms_norm=True, rms_norm_eps=1e-5)
    bitnet = family == "bitnet"
    return {
        "architectures": ["BitNetForCausalLM" if bitnet else "LlamaForCausalLM"],
        "model_type": "bitnet" if bitnet else "llama",
        "hidden_act": "relu2" if bitnet else "silu",
        "vocab_size": p.vocab_size,
        "hidden_size": p.hidden_size,
        "intermediate_size": p.intermediate_size,
        "num_hidden_layers": p.num_layers,
        "num_attention_heads": p.num_heads,
        "num_key_value_heads": p.num_kv_heads,
        "max_position_embeddings": p.max_position_embeddings,
        "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0,
        "attention_bias": False,
        "tie_word_embeddings": True,
        "bos_token_id": 256,
        "eos_token_id": 257,
        "torch_dtype": float_dtype,
        "quantization_config": quant,
    }


def _random_tensor(name: str, dtype: str, shape: tuple[int, ...], float_dtype: torch.dtype, gen: torch.Generator,
                   form: str, scale_divides: bool):
    if dtype == "U8":  # HF packed ternary weight: random codes 0..2, ~1/3 zeros
        n, k = shape[0] * 4, shape[1]
        w_t = torch.randint(-1, 2, (n, k), generator=gen, dtype=torch.int8)
        return hf_pack(w_t)
    if form == "unpacked" and name.endswith("_proj.weight"):  # ternary values stored as floats
        return torch.randint(-1, 2, shape, generator=gen, dtype=torch.int8).to(float_dtype)
    if name.endswith(".weight_scale"):  # bitlinear divides by it (1 / gamma), offline autobitlinear multiplies
        gamma = 0.01 + 0.02 * torch.rand(shape, generator=gen)
        return (1.0 / gamma if scale_divides else gamma).to(float_dtype)
    if name.endswith("norm.weight"):
        return (1.0 + 0.1 * torch.randn(shape, generator=gen)).to(float_dtype)
    return (0.02 * torch.randn(shape, generator=gen)).to(float_dtype)


def random_config(preset: str, family: str, form: str, float_dtype: str = "bfloat16", linear_class: str | None = None,
                  mode: str | None = None, use_rms_norm: bool = False):
    """(config.json dict, ModelConfig) of a random checkpoint; a form its quantization_config cannot load (as
    transformers loads it) is refused naming the options."""
    raw = config_json(PRESETS[preset], family, form, float_dtype, linear_class, mode, use_rms_norm)
    cfg = normalize_config(raw, Path("config.json"))
    if form not in cfg.quant.weight_forms:
        raise EdgebitError(f"--form: {form!r} weights are not what --linear-class {cfg.quant.linear_class} "
                           f"--mode {cfg.quant.mode} loads ({' or '.join(cfg.quant.weight_forms)})")
    return raw, cfg


def write_random_checkpoint(out: str | Path, preset: str = "tiny", family: str = "bitnet", form: str = "packed",
                            seed: int = 0, float_dtype: str = "bfloat16", force: bool = False,
                            on_tensor: Callable[[str], None] | None = None, linear_class: str | None = None,
                            mode: str | None = None, use_rms_norm: bool = False) -> Path:
    import json

    p = PRESETS[preset]
    raw, cfg = random_config(preset, family, form, float_dtype, linear_class, mode, use_rms_norm)
    out = Path(out)
    want = expected_tensors(cfg, form)
    fdt = getattr(torch, float_dtype)
    # Checkpoint tensor order: embedding, then layer by layer, then the final norm.
    names = ["model.embed_tokens.weight"]
    for i in range(cfg.num_layers):
        names += [n for n in want if n.startswith(layer_prefix(i))]
    names += [n for n in want if n not in names]
    st_to_torch = {"U8": "uint8"}
    specs = [(n, st_to_torch.get(want[n][0][0], float_dtype), want[n][1]) for n in names]
    gen = torch.Generator().manual_seed(seed)

    def tensors():
        for name, _, shape in specs:
            yield _random_tensor(name, want[name][0][0], shape, fdt, gen, form, cfg.quant.weight_scale_divides)
            if on_tensor:
                on_tensor(name)

    with atomic_output_dir(out, force=force) as tmp:
        (tmp / "config.json").write_text(json.dumps(raw, indent=2) + "\n")
        write_safetensors(tmp / "model.safetensors", specs, tensors(), metadata={"format": "pt"})
        tok = byte_level_tokenizer(p.vocab_size)
        tok.save(str(tmp / "tokenizer.json"))
        (tmp / "tokenizer_config.json").write_text(
            json.dumps({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True}, indent=2) + "\n"
        )
    return out


def tensor_count(preset: str, family: str, form: str, **quant) -> int:
    return len(expected_tensors(random_config(preset, family, form, **quant)[1], form))


__all__ = ["PRESETS", "FAMILIES", "FORMS", "LINEARS", "write_random_checkpoint", "tensor_count"]
