"""Checkpoints with random weights, written tensor by tensor in HF format (config.json, model.safetensors,
tokenizer.json): a tiny one for trying the toolchain, and a BitNet-b1.58-2B4T-shaped one for measuring
memory and speed at real size without downloading anything. Their text is noise by construction."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from edgebit.atomic import atomic_output_dir
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
FORMS = ("packed", "master")


def config_json(p: Preset, family: str, form: str, float_dtype: str) -> dict:
    quant = {"quant_method": "bitnet", "linear_class": "bitlinear", "quantization_mode": "offline"}
    if form == "master":
        quant = {"quant_method": "bitnet", "linear_class": "autobitlinear", "quantization_mode": "online"}
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


def _random_tensor(name: str, dtype: str, shape: tuple[int, ...], float_dtype: torch.dtype, gen: torch.Generator):
    if dtype == "U8":  # HF packed ternary weight: random codes 0..2, ~1/3 zeros
        n, k = shape[0] * 4, shape[1]
        w_t = torch.randint(-1, 2, (n, k), generator=gen, dtype=torch.int8)
        return hf_pack(w_t)
    if name.endswith(".weight_scale"):  # 1 / gamma, as transformers' BitLinear divides by it
        gamma = 0.01 + 0.02 * torch.rand(shape, generator=gen)
        return (1.0 / gamma).to(float_dtype)
    if name.endswith("norm.weight"):
        return (1.0 + 0.1 * torch.randn(shape, generator=gen)).to(float_dtype)
    return (0.02 * torch.randn(shape, generator=gen)).to(float_dtype)


def write_random_checkpoint(out: str | Path, preset: str = "tiny", family: str = "bitnet", form: str = "packed",
                            seed: int = 0, float_dtype: str = "bfloat16", force: bool = False,
                            on_tensor: Callable[[str], None] | None = None) -> Path:
    import json

    p = PRESETS[preset]
    raw = config_json(p, family, form, float_dtype)
    out = Path(out)
    cfg = normalize_config(raw, out / "config.json")
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
            yield _random_tensor(name, want[name][0][0], shape, fdt, gen)
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


def tensor_count(preset: str, family: str, form: str) -> int:
    p = PRESETS[preset]
    cfg = normalize_config(config_json(p, family, form, "bfloat16"), Path("config.json"))
    return len(expected_tensors(cfg, form))


__all__ = ["PRESETS", "FAMILIES", "FORMS", "LINEARS", "write_random_checkpoint", "tensor_count"]
