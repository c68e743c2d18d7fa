"""The trained model as an HF-format checkpoint: what every other edgebit command and transformers load.

Ternary (the default): the packed offline form of BitNet b1.58 2B4T. Each linear is ternarized by
edgebit/quant/ternary.py's absmean_ternarize (the very values the training forward pass used), packed by
hf_pack into uint8 [out/4, in], and stored with weight_scale = 1/gamma, because transformers' BitLinear
divides by it. Norms and the tied embedding stay fp32 (they are ~a quarter of a small model's bytes).
fp16 twin (--no-quant): the same architecture with float linears and no quantization_config, which
transformers' BitNetForCausalLM runs as a plain float model. It is a baseline to compare perplexities
against, not an input for edgebit's ternary toolchain (whose loader would ternarize its weights).
Binary (--weights binary): edgebit's binary BitNet format (docs/weight-layout.md "Binary BitNet"): the same
packed uint8 [out/4, in] layout holding codes 0 and 2 only (binarize's -1 / +1 of the latent weights, the values
the training forward used), weight_scale = beta per group of rows (it multiplies), model_type and
quantization_config quant_method "bitnet_binary", which transformers refuses to load rather than misread.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from edgebit.atomic import atomic_output_dir
from edgebit.quant.binary import binarize
from edgebit.quant.packing import hf_pack
from edgebit.quant.ternary import absmean_ternarize
from edgebit.train.bpe import BOS, EOS, tokenizer_config
from edgebit.train.model import TrainModel

QUANT_CONFIG = {"quant_method": "bitnet", "linear_class": "bitlinear", "quantization_mode": "offline"}


def binary_quant_config(groups: int) -> dict:
    from edgebit.train.model import BINARY_NORM_EPS

    return {"quant_method": "bitnet_binary", "quantization_mode": "offline", "weight_bits": 1, "activation_bits": 8,
            "groups": groups, "layer_norm_eps": BINARY_NORM_EPS}


def config_json(model: TrainModel, tok) -> dict:
    s = model.shape
    cfg = {
        "architectures": ["BitNetForCausalLM"],
        "model_type": "bitnet",
        "hidden_act": "relu2",
        "vocab_size": model.vocab_size,
        "hidden_size": s.hidden_size,
        "intermediate_size": s.intermediate_size,
        "num_hidden_layers": s.num_layers,
        "num_attention_heads": s.num_heads,
        "num_key_value_heads": s.num_kv_heads,
        "head_dim": s.head_dim,
        "max_position_embeddings": s.max_position_embeddings,
        "rms_norm_eps": s.rms_norm_eps,
        "rope_theta": s.rope_theta,
        "attention_bias": False,
        "tie_word_embeddings": True,
        "bos_token_id": tok.token_to_id(BOS),
        "eos_token_id": tok.token_to_id(EOS),
        "torch_dtype": "float32",
    }
    if model.quant and model.weights == "binary":
        # its own model_type: transformers and ternary readers refuse it instead of misreading it (families/bitnet.py)
        cfg.update(architectures=["BitNetBinaryForCausalLM"], model_type="bitnet_binary",
                   quantization_config=binary_quant_config(model.groups))
    elif model.quant:
        cfg["quantization_config"] = dict(QUANT_CONFIG)
    return cfg


def checkpoint_tensors(model: TrainModel) -> dict[str, torch.Tensor]:
    out = {}
    for name, p in model.named_parameters():
        w = p.detach().float()
        if model.quant and name.endswith("_proj.weight") and model.weights == "binary":
            w_b, beta = binarize(w, model.groups)
            out[name] = hf_pack(w_b)
            out[name.removesuffix("weight") + "weight_scale"] = beta
        elif model.quant and name.endswith("_proj.weight"):
            w_t, gamma = absmean_ternarize(w)
            out[name] = hf_pack(w_t)
            out[name.removesuffix("weight") + "weight_scale"] = gamma.reciprocal().reshape(1)
        else:
            out[name] = w.contiguous()
    return out


def write_checkpoint(model: TrainModel, tok, out: Path, force: bool, training: dict,
                     extra_files: dict[str, str] | None = None) -> Path:
    with atomic_output_dir(out, force=force) as tmp:
        (tmp / "config.json").write_text(json.dumps(config_json(model, tok), indent=2) + "\n")
        save_file(checkpoint_tensors(model), tmp / "model.safetensors", metadata={"format": "pt"})
        tok.save(str(tmp / "tokenizer.json"))
        tok_cfg = tokenizer_config(model.shape.max_position_embeddings)
        (tmp / "tokenizer_config.json").write_text(json.dumps(tok_cfg, indent=2) + "\n")
        (tmp / "training.json").write_text(json.dumps(training, indent=2) + "\n")
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
    return out
