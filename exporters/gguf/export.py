"""`edgebit export gguf`: a checkpoint (any form edgebit reads, GGUF included) -> one GGUF file for llama.cpp,
written through llama.cpp's own gguf package (GGUFWriter, its TQ quantizers, SpecialVocab) tensor by tensor, to a
temp name renamed into place only when complete.

The architecture follows the model's arithmetic (docs/weight-layout.md, "GGUF"):
- families with sub-norms (bitnet, 1bitllm) -> "bitnet" (llama.cpp src/models/bitnet.cpp). That graph reuses
  token_embd as the head and sizes wq and attn_sub_norm by n_embd, so an untied head or heads that do not cover
  the hidden size are refused. Linears are TQ blocks with scale 1 plus the exact fp32 gamma in the optional
  per-tensor `blk.N.<linear>.scale` the graph multiplies by: the ternary weights and scales round-trip bit for bit.
  ReLU^2 is recorded in `bitnet.hidden_activation` (llama.cpp builds that predate the key run SiLU).
- llama-bitnet -> "llama": q/k rows interleaved as convert_hf_to_gguf's LlamaModel.permute does. llama.cpp's
  llama graph has no per-tensor scale on every linear, so gamma goes into the TQ block scales, which are fp16: the
  one rounding this export makes (relative error <= 2^-11). Llama 3 RoPE goes in as llama.cpp's rope_freqs tensor,
  plus edgebit.rope.* keys that let edgebit read the parameters back exactly.
Embedding and head keep their stored precision (BF16, F16 or F32); norms are F32, as llama.cpp wants them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from edgebit.errors import EdgebitError
from .. import register

TYPES = {"tq2_0": "TQ2_0", "tq1_0": "TQ1_0"}
CHUNK_ROWS = 512  # rows quantized at a time: the float copy in flight stays small


@dataclass
class Item:
    name: str
    shape: tuple[int, ...]  # numpy order
    ggml_type: object  # gguf.GGMLQuantizationType
    nbytes: int
    produce: Callable


def _arch(cfg, model: Path) -> str:
    where = f"{model}: cannot be written as GGUF for llama.cpp"
    if cfg.quant.use_rms_norm:
        raise EdgebitError(f"{where}: quantization_config.use_rms_norm puts a norm inside every linear, which no "
                           "llama.cpp graph has")
    if cfg.quant.weights == "binary":
        raise EdgebitError(f"{where}: its binary weights (codes -1/+1 with a LayerNorm inside every linear) have no "
                           "llama.cpp type or graph")
    if cfg.quant.inner_norm:
        raise EdgebitError(f"{where}: its {cfg.quant.inner_norm} norm inside every linear (the family "
                           f"{cfg.family}) is in no llama.cpp graph")
    if cfg.norm != "rms":
        raise EdgebitError(f"{where}: its block norms are {cfg.norm} norms; llama.cpp's llama and bitnet graphs use "
                           "RMSNorm")
    if not cfg.sub_norms:
        if cfg.activation != "silu":
            raise EdgebitError(f"{where}: llama.cpp's llama graph runs SiLU, the model {cfg.activation}")
        return "llama"
    if not cfg.tie_word_embeddings:
        raise EdgebitError(f"{where}: its head is untied, and llama.cpp's bitnet graph multiplies by token_embd")
    if cfg.q_size != cfg.hidden_size:
        raise EdgebitError(f"{where}: llama.cpp's bitnet graph needs heads x head_dim = hidden size "
                           f"({cfg.num_heads} x {cfg.head_dim} != {cfg.hidden_size})")
    return "bitnet"


def _vocab(model: Path, cfg) -> Callable:
    """Checks the tokenizer before anything is written; returns what writes it into the GGUF metadata."""
    from edgebit.model.gguf.vocab import gguf_pre_tokenizer, gguf_tokens

    path = Path(model) / "tokenizer.json"
    if not path.is_file():
        raise EdgebitError(f"{path}: not found; a GGUF file carries its tokenizer (llama.cpp needs one)")
    try:
        tok = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EdgebitError(f"{path}: not valid JSON ({e})") from None
    pre, add_prefix = gguf_pre_tokenizer(tok, path)
    if not (tok.get("model") or {}).get("merges"):
        raise EdgebitError(f"{path}: model.merges is empty; llama.cpp loads a BPE vocabulary only with its merges "
                           "(tokenizer.ggml.merges), and GGUF has no empty arrays")
    tokens, types = gguf_tokens(tok, cfg.vocab_size, path)

    def write(w) -> None:
        import gguf

        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre(pre)
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_add_space_prefix(add_prefix)
        special = gguf.SpecialVocab(model, load_merges=True, n_vocab=cfg.vocab_size)
        special.add_to_gguf(w, quiet=True)  # merges, bos/eos ids, add_bos, chat template: as convert_hf_to_gguf
        ids = special.special_token_ids
        if "bos" not in ids and cfg.bos_token_id is not None:
            w.add_bos_token_id(cfg.bos_token_id)
        eos = list(cfg.eos_token_ids)
        if "eos" not in ids and eos:
            w.add_eos_token_id(eos[0])
        extra = [e for e in eos if e != ids.get("eos", eos[0])]
        if extra and "eot" not in ids:
            w.add_eot_token_id(extra[0])  # llama.cpp stops on end-of-turn too

    return write


def _metadata(w, cfg, arch: str, q, model: Path) -> None:
    import gguf

    w.add_name(Path(model).resolve().name)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_heads)
    w.add_head_count_kv(cfg.num_kv_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_freq_base(cfg.rope.theta)
    w.add_rope_dimension_count(cfg.head_dim)
    if cfg.q_size != cfg.hidden_size:
        w.add_key_length(cfg.head_dim)
        w.add_value_length(cfg.head_dim)
    w.add_vocab_size(cfg.vocab_size)
    w.add_file_type(getattr(gguf.LlamaFileType, "MOSTLY_" + q.name))
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    if arch == "bitnet" and cfg.activation != "silu":
        w.add_string("bitnet.hidden_activation", cfg.activation)
    if cfg.rope.kind == "llama3":
        from edgebit.model.gguf.arch import LLAMA3_KEYS

        for key in LLAMA3_KEYS:
            value = getattr(cfg.rope, key)
            (w.add_uint32 if isinstance(value, int) else w.add_float32)(f"edgebit.rope.{key}", value)


def _plan(ckpt, cfg, arch: str, q) -> list[Item]:
    import gguf
    import numpy as np

    from edgebit.model.checkpoint import LINEARS, layer_prefix, linear_shape
    from edgebit.model.layout import layout_of
    from edgebit.model.gguf import arch as A

    names = A.hf_to_gguf_names(cfg)
    block, type_size = gguf.GGML_QUANT_SIZES[q]
    G = gguf.GGMLQuantizationType
    items: list[Item] = []

    def read_bits(hf: str):
        import torch

        t = ckpt.read(hf)
        if t.dtype in (torch.bfloat16, torch.float16):
            return t.contiguous().view(-1).view(torch.uint8).numpy()  # the stored bits, unconverted
        return t.float().contiguous().numpy().reshape(-1)

    def add_table(hf: str, gname: str) -> None:  # embedding or head, in its stored precision
        kind = _stored_type(ckpt, hf)
        items.append(Item(gname, (cfg.vocab_size, cfg.hidden_size), getattr(G, kind),
                          cfg.vocab_size * cfg.hidden_size * (4 if kind == "F32" else 2), lambda: read_bits(hf)))

    def add_norm(hf: str, gname: str) -> None:  # F32, as llama.cpp wants every 1-D tensor
        n = cfg.q_size if "attn_sub_norm" in gname else (
            cfg.intermediate_size if "ffn_sub_norm" in gname else cfg.hidden_size)
        items.append(Item(gname, (n,), G.F32, 4 * n, lambda: ckpt.read(hf).float().contiguous().numpy()))

    def add_linear(hf: str, n: int, k: int) -> None:
        gname = names[hf] + ".weight"
        if k % block:
            raise EdgebitError(f"{ckpt.file_of(hf + '.weight')}: tensor '{hf}.weight': {k} inputs are not a whole "
                               f"number of {q.name}'s {block}-weight blocks")
        heads = A.qk_heads(cfg, hf) if arch == "llama" else None
        gamma_box = {}

        def produce():
            from edgebit.model.weights import release_free_memory, ternary_codes

            codes, gamma = ternary_codes(ckpt, hf)
            codes = codes.numpy()
            if heads is not None:
                codes = np.ascontiguousarray(A.permute_rows(codes, heads, undo=False))
            gamma_box["gamma"] = float(gamma)
            scale = np.float32(1.0 if arch == "bitnet" else float(gamma))
            out = np.empty(n * k // block * type_size, dtype=np.uint8)
            row_bytes = k // block * type_size
            for r in range(0, n, CHUNK_ROWS):
                values = (codes[r:r + CHUNK_ROWS].astype(np.float32) - 1) * scale
                out[r * row_bytes:(r + len(values)) * row_bytes] = gguf.quants.quantize(values, q).reshape(-1)
            del codes
            release_free_memory()
            return out

        items.append(Item(gname, (n, k), q, n * k // block * type_size, produce))
        if arch == "bitnet":  # written right after its linear, whose produce() has set the gamma
            items.append(Item(names[hf] + ".scale", (1,), G.F32, 4,
                              lambda: np.array([gamma_box["gamma"]], dtype=np.float32)))

    add_table("model.embed_tokens.weight", "token_embd.weight")
    add_norm("model.norm.weight", "output_norm.weight")
    if not cfg.tie_word_embeddings:
        add_table("lm_head.weight", "output.weight")
    if cfg.rope.kind == "llama3":
        factors = A.llama3_factors(cfg.rope, cfg.head_dim)
        items.append(Item(A.ROPE_FREQS, factors.shape, G.F32, factors.nbytes, lambda: factors))
    for i in range(cfg.num_layers):
        p = layer_prefix(i)
        for norm in ("input_layernorm", "post_attention_layernorm"):
            add_norm(p + norm + ".weight", names[p + norm + ".weight"])
        if cfg.sub_norms:
            layer = layout_of(cfg).layers[i]  # the family's sub-norm names (_arch refused other layouts)
            for hf in (layer.attn_sub_norm, layer.ffn_sub_norm):
                add_norm(hf, names[hf])
        for linear in LINEARS:
            add_linear(p + linear, *linear_shape(cfg, linear))
    return items


def _stored_type(ckpt, hf: str) -> str:
    """The GGUF type that keeps a table's stored precision, found without reading it."""
    if ckpt.weight_form == "gguf":
        info = ckpt.file.tensors[ckpt.gguf_name(hf)]
        return info.type_name if info.type_name in ("BF16", "F16", "F32") else "F32"
    dtype = ckpt.info(hf).dtype
    return dtype if dtype in ("BF16", "F16") else "F32"


@register("gguf")
def export_gguf(model: Path, output: Path, qtype: str = "tq2_0", force: bool = False,
                on_step: Callable[[str], None] | None = None) -> Path:
    import gguf
    import numpy as np

    from edgebit.atomic import atomic_output_file
    from edgebit.model.checkpoint import open_checkpoint

    _F32 = np.dtype(np.float32)
    step = on_step or (lambda what: None)
    # gguf logs its converter chatter (e.g. TemplateProcessing pairs it does not parse) as warnings; what edgebit
    # could not carry is checked and refused above it, so only errors are worth a user's screen.
    logging.getLogger("gguf").setLevel(logging.ERROR)
    if qtype not in TYPES:
        raise EdgebitError(f"--type: {qtype!r} is not one of {', '.join(TYPES)}")
    q = getattr(gguf.GGMLQuantizationType, TYPES[qtype])
    output = Path(output)
    with open_checkpoint(model) as ckpt:
        cfg = ckpt.config
        arch = _arch(cfg, Path(model))
        write_vocab = _vocab(Path(model), cfg)
        items = _plan(ckpt, cfg, arch, q)
        with atomic_output_file(output, force=force) as tmp:
            w = gguf.GGUFWriter(tmp, arch)
            _metadata(w, cfg, arch, q, Path(model))
            write_vocab(w)
            for it in items:
                # a non-uint8 dtype keeps the writer from reading `shape` as a byte shape
                w.add_tensor_info(it.name, it.shape, _F32, it.nbytes, raw_dtype=it.ggml_type)
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_ti_data_to_file()
            for it in items:
                step(it.name)
                w.write_tensor_data(it.produce())
            w.close()
    return output
