"""GGUF files written the way their publishers write them, from the HF checkpoints the tests build, with none of
edgebit's GGUF code: the gguf package's GGUFWriter, its tensor-name map and its TQ1_0 / TQ2_0 / Q8_0 quantizers
(what llama.cpp's convert_hf_to_gguf.py uses), and an I2_S encoder ported from bitnet.cpp's quantize_i2_s (x86
layout, as docs/weight-layout.md documents it).

The ternary values come from the HF checkpoint as its publisher's code defines them (transformers' unpack_weights
and the quantization_config's weight_scale rule), then go through the converter's steps: values = w_t * gamma (or
w_t with a separate per-tensor `.scale` tensor, llama.cpp's bitnet loader's optional scales), q/k rows permuted for
the llama architecture (LlamaModel.permute), quantized.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

LINEARS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
           "mlp.up_proj", "mlp.down_proj")
SUB_NORMS = {"attn_sub_norm": "attn_sub_norm", "ffn_sub_norm": "ffn_sub_norm",  # 2B4T's names (bitnet.cpp's map)
             "inner_attn_ln": "attn_sub_norm", "ffn_layernorm": "ffn_sub_norm"}  # 1bitLLM's (the gguf package's)


def hf_ternary(ckpt: Path) -> dict[str, tuple[np.ndarray, float]]:
    """HF linear name (no .weight) -> (int8 w_t [N, K], gamma), per the checkpoint's quantization_config."""
    from safetensors.torch import load_file
    from transformers.integrations.bitnet import unpack_weights

    cfg = json.loads((ckpt / "config.json").read_text())
    qc = cfg.get("quantization_config") or {}
    state = load_file(ckpt / "model.safetensors")
    out = {}
    for name, w in state.items():
        if not name.endswith("_proj.weight"):
            continue
        base = name.removesuffix(".weight")
        scale = state.get(base + ".weight_scale")
        if w.dtype == torch.uint8:
            w_t = unpack_weights(w, dtype=torch.float32)
        elif scale is not None:
            w_t = w.float()
        else:  # master weights: transformers' WeightQuant
            gamma = w.float().abs().mean().clamp(min=1e-5)
            out[base] = ((w.float() * (1.0 / gamma)).round().clamp(-1, 1).to(torch.int8).numpy(), float(gamma))
            continue
        s = scale.float().reshape(())
        gamma = 1.0 / s if qc.get("linear_class", "bitlinear") == "bitlinear" else s
        out[base] = (w_t.to(torch.int8).numpy(), float(gamma))
    return out


def permute(rows: np.ndarray, heads: int) -> np.ndarray:
    """convert_hf_to_gguf's LlamaModel.permute."""
    return rows.reshape(heads, 2, rows.shape[0] // heads // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def quantize_i2_s(values: np.ndarray) -> np.ndarray:
    """bitnet.cpp's quantize_i2_s (src/ggml-bitnet-mad.cpp, x86: QK_I2_S = 128), on a float [N, K] tensor: the
    tensor's bytes (n/4 packed + 32: the fp32 scale, then padding)."""
    flat = values.reshape(-1).astype(np.float64)
    scale = np.abs(flat).max()
    q8 = np.where(np.abs(flat) < 1e-6, 1, np.where(flat * scale > 0, 2, 0)).astype(np.uint8)
    # for each block i of 128 and j in 0..127: out[i*32 + j%32] |= q8[i*128 + j] << (6 - 2*(j/32))
    groups = q8.reshape(-1, 4, 32)  # (block, j // 32, j % 32)
    packed = (groups[:, 0] << 6) | (groups[:, 1] << 4) | (groups[:, 2] << 2) | groups[:, 3]
    out = np.zeros(flat.size // 4 + 32, dtype=np.uint8)
    out[: flat.size // 4] = packed.reshape(-1)
    out[flat.size // 4: flat.size // 4 + 4] = np.array([scale], dtype=np.float32).view(np.uint8)
    return out


def llama3_rope_factors(rope: dict, theta: float, head_dim: int) -> np.ndarray:
    """convert_hf_to_gguf's LlamaModel.generate_extra_tensors (rope_freqs for rope_type llama3)."""
    freqs = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old = rope["original_max_position_embeddings"]
    low_wl, high_wl = old / low, old / high
    out = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wl:
            out.append(1)
        elif wavelen > low_wl:
            out.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def write_gguf(ckpt: Path, out: Path, qtype: str = "TQ2_0", arch: str | None = None, scales: str = "blocks",
               embed: str = "F16", tokenizer: bool = True) -> Path:
    """ckpt (an HF checkpoint dir) -> GGUF at OUT. qtype: TQ1_0 | TQ2_0 | I2_S | F32 (ternary values as floats);
    scales: "blocks" (values w_t * gamma, so TQ blocks carry fp16 gamma) or "tensor" (w_t, plus F32 `.scale`
    tensors); embed: F16 | F32 | Q8_0 | Q6_K."""
    import gguf
    from safetensors.torch import load_file

    cfg = json.loads((ckpt / "config.json").read_text())
    family_llama = cfg["model_type"] == "llama" and "quantization_config" in cfg
    arch = arch or ("llama" if family_llama else "bitnet-25")
    n_layers, heads, kv_heads = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA if arch == "llama" else gguf.MODEL_ARCH.BITNET, n_layers)
    w = gguf.GGUFWriter(out, arch)
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(n_layers)
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_vocab_size(cfg["vocab_size"])
    w.add_rope_dimension_count(head_dim)
    rope = cfg.get("rope_parameters") or {"rope_theta": cfg.get("rope_theta", 10000.0)}
    w.add_rope_freq_base(rope["rope_theta"])
    if arch.startswith("bitnet"):
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)  # as BitnetModel.set_gguf_parameters writes
        w.add_rope_scaling_factor(1.0)
    if arch == "bitnet" and cfg.get("hidden_act") == "relu2":
        w.add_string(f"{arch}.hidden_activation", "relu2")  # llama.cpp's bitnet loader reads this key
    if tokenizer:
        _add_vocab(w, ckpt, cfg["vocab_size"])
    else:
        w.add_bos_token_id(cfg["bos_token_id"])
        w.add_eos_token_id(cfg["eos_token_id"])
    state = load_file(ckpt / "model.safetensors")
    ternary = hf_ternary(ckpt)
    for name, t in state.items():
        if name.endswith((".weight_scale", "_proj.weight")):
            continue
        gname = "output.weight" if name == "lm_head.weight" else names.get_name(name, try_suffixes=(".weight",))
        if gname is None:
            layer, kind = name.split(".")[2], name.split(".")[-2]
            gname = f"blk.{layer}.{SUB_NORMS[kind]}.weight"
        if name == "model.embed_tokens.weight" or name == "lm_head.weight":
            _add_table(w, gname, t.float().numpy(), embed)
        else:
            w.add_tensor(gname, t.float().numpy())
    for base, (w_t, gamma) in ternary.items():
        gname = names.get_name(base + ".weight", try_suffixes=(".weight",))
        if arch == "llama" and base.endswith(("q_proj", "k_proj")):
            w_t = permute(w_t, heads if base.endswith("q_proj") else kv_heads)
        in_values = scales == "blocks" or qtype == "I2_S"  # I2_S always carries its own fp32 scale
        values = w_t.astype(np.float32) * (np.float32(gamma) if in_values else np.float32(1))
        if qtype == "I2_S":
            w.add_tensor_info(gname, values.shape, np.dtype(np.float32), values.size // 4 + 32, raw_dtype=36)
            w.tensors[-1][gname].tensor = quantize_i2_s(values)
        elif qtype == "F32":
            w.add_tensor(gname, values)
        else:
            q = getattr(gguf.GGMLQuantizationType, qtype)
            w.add_tensor(gname, gguf.quants.quantize(values, q), raw_dtype=q)
        if not in_values:
            w.add_tensor(gname.removesuffix(".weight") + ".scale", np.array([gamma], dtype=np.float32))
    if arch == "llama" and rope.get("rope_type") == "llama3":
        w.add_tensor("rope_freqs.weight", llama3_rope_factors(rope, rope["rope_theta"], head_dim))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def _add_table(w, gname: str, table: np.ndarray, kind: str) -> None:
    import gguf

    if kind in ("F16", "F32"):
        w.add_tensor(gname, table.astype(np.float16 if kind == "F16" else np.float32))
    elif kind == "Q8_0":
        q = gguf.GGMLQuantizationType.Q8_0
        w.add_tensor(gname, gguf.quants.quantize(table, q), raw_dtype=q)
    else:  # Q6_K: the gguf package has no Q6_K quantizer; random blocks with a sane fp16 scale decode to a table
        q = gguf.GGMLQuantizationType.Q6_K
        block, size = gguf.GGML_QUANT_SIZES[q]
        rng = np.random.default_rng(0)
        raw = rng.integers(0, 256, size=(table.shape[0], table.shape[1] // block, size), dtype=np.uint8)
        raw[..., -2:] = np.array([0.002], dtype=np.float16).view(np.uint8)
        w.add_tensor(gname, raw.reshape(table.shape[0], -1), raw_dtype=q)


def _add_vocab(w, ckpt: Path, vocab_size: int) -> None:
    """convert_hf_to_gguf's _set_vocab_gpt2: tokens and types by id, then the gguf package's SpecialVocab
    (merges, special ids, add_bos, chat template)."""
    import gguf

    tok = json.loads((ckpt / "tokenizer.json").read_text())
    by_id = {i: t for t, i in tok["model"]["vocab"].items()}
    added = {a["id"]: a for a in tok.get("added_tokens", [])}
    tokens, types = [], []
    for i in range(vocab_size):
        if i in added:
            tokens.append(added[i]["content"])
            types.append(gguf.TokenType.CONTROL if added[i]["special"] else gguf.TokenType.USER_DEFINED)
        elif i in by_id:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    pre = tok["pre_tokenizer"]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("llama-bpe" if pre.get("type") == "Sequence" else "gpt-2")
    if pre.get("type") == "ByteLevel":
        w.add_add_space_prefix(pre.get("add_prefix_space", True))
    w.add_token_list(tokens)
    w.add_token_types(types)
    gguf.SpecialVocab(ckpt, load_merges=True, n_vocab=vocab_size).add_to_gguf(w, quiet=True)


CHAT_TEMPLATE = ("{% for m in messages %}{% if loop.first %}{{ bos_token }}{% endif %}{{ m['role'] | capitalize }}: "
                 "{{ m['content'] }}{{ eos_token }}{% endfor %}{% if add_generation_prompt %}Assistant: {% endif %}")


def bpe_tokenizer(kind: str, vocab_size: int):
    """A byte-level BPE tokenizer trained here (tokenizers' own trainer), with merges, BOS as id 0 and EOS as id 1
    added by a TemplateProcessing, as the two structures GGUF can name: "gpt2" (ByteLevel with GPT-2's regex and a
    prefix space, like edgebit train's) or "llama3" (Llama 3's Split regex, ignore_merges, as Llama 3 /
    BitNet 2B4T's tokenizer.json)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    from edgebit.model.gguf.vocab import LLAMA3_REGEX
    from edgebit.plausibility import TEXT

    tok = Tokenizer(models.BPE(ignore_merges=kind == "llama3"))
    if kind == "llama3":
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    tok.decoder = decoders.ByteLevel()
    specials = ["<s>", "</s>", "<|eot|>"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([TEXT] * 4 + [TEXT.upper(), "1234 56789 0x7f 'll 've  \n\n tabs\tand ünïcödé"], trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", 0)])
    return tok


def add_bpe_tokenizer(ckpt: Path, kind: str = "gpt2") -> Path:
    """Replace CKPT's tokenizer with a trained BPE one (plus tokenizer_config.json with a chat template); the
    config's bos/eos ids follow it."""
    cfg = json.loads((ckpt / "config.json").read_text())
    bpe_tokenizer(kind, cfg["vocab_size"]).save(str(ckpt / "tokenizer.json"))
    cfg.update(bos_token_id=0, eos_token_id=1)
    (ckpt / "config.json").write_text(json.dumps(cfg, indent=2))
    (ckpt / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True,
        "chat_template": CHAT_TEMPLATE}, indent=2))
    return ckpt
