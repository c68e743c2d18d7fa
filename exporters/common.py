"""What every export target does the same way: check the shared options, load the checkpoint, settle the
sequence limit, and copy the tokenizer files into the artifact."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgebit.errors import EdgebitError

HEADS = ("fp32", "int8", "q4")
KV_DTYPES = ("float32", "float16", "int8")  # the KV cache's element type (float16, int8: edgebit's in-place cache)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json")
DEFAULT_MAX_SEQ_LEN = 4096


def check_head(head: str, ops: str = "edgebit") -> None:
    if head not in HEADS:
        raise EdgebitError(f"--head: {head!r} is not one of {', '.join(HEADS)}")
    if head == "q4" and ops != "edgebit":
        raise EdgebitError(f"--head q4 needs --ops edgebit (edgebit's own QLinear op computes it), not --ops {ops}")


def check_kv_dtype(kv_dtype: str, own_cache: bool, why_not: str) -> None:
    """float16 and int8 need the cache edgebit's ops write (their attention reads it); WHY_NOT says why it is not."""
    if kv_dtype not in KV_DTYPES:
        raise EdgebitError(f"--kv-cache: {kv_dtype!r} is not one of {', '.join(KV_DTYPES)}")
    if kv_dtype != "float32" and not own_cache:
        raise EdgebitError(f"--kv-cache {kv_dtype}: {why_not}")


def kv_cache_entry(update: str, kv_dtype: str) -> dict:
    """The manifest's "kv_cache": how the cache is taken ("in-place" or "concat") and its element type; an fp16 cache
    rounds the keys and values only ("rounds": "kv"), an int8 one holds rows of D codes and a float32 scale
    ("row": "int8-codes+f32-scale", edgebit/quant/kv_int8.py)."""
    extra = {"float16": {"rounds": "kv"}, "int8": {"row": "int8-codes+f32-scale"}}.get(kv_dtype, {})
    return {"update": update, "dtype": kv_dtype, **extra}


def load_for_export(model: Path, max_seq_len: int | None):
    """(ModelWeights, the artifact's max sequence length): the model's own limit, capped at 4096 by default."""
    from edgebit.model.weights import load_model_weights

    weights = load_model_weights(model)
    limit = weights.config.max_position_embeddings
    seq = max_seq_len or min(limit, DEFAULT_MAX_SEQ_LEN)
    if not 1 <= seq <= limit:
        raise EdgebitError(f"--max-seq-len: {seq} is outside 1..{limit} (the model's limit)")
    return weights, seq


def copy_tokenizer_files(model: Path, dest: Path) -> None:
    for name in TOKENIZER_FILES:
        if (Path(model) / name).is_file():
            shutil.copy2(Path(model) / name, dest / name)
