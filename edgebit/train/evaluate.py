"""Held-out perplexity of a written checkpoint, computed by the reference model (the exact W1.58A8
arithmetic), on the same fixed held-out split and windows `edgebit train` reports at the end of training.
This is how the model card's numbers are reproduced from the shipped files alone."""

from __future__ import annotations

import math
from pathlib import Path

import torch.nn.functional as F

from edgebit.model.reference import ReferenceModel
from edgebit.model.weights import load_model_weights
from edgebit.tokenizer import load_tokenizer
from edgebit.train.bpe import BOS
from edgebit.train.corpus import load_corpus
from edgebit.train.data import encode_lines, heldout_batches

EVAL_BATCH = 16


def heldout_perplexity(model_dir: Path, corpus: str | None, paths: list[Path], seq_len: int,
                       kv_dtype: str = "float32") -> dict:
    """kv_dtype: the KV cache an artifact would hold (ReferenceModel's: "float16" or "int8" round the keys and values
    as those caches do), to measure what the cache costs."""
    tok = load_tokenizer(model_dir)
    model = ReferenceModel(load_model_weights(model_dir), kv_dtype=kv_dtype)
    bos = model.cfg.bos_token_id if model.cfg.bos_token_id is not None else tok.token_to_id(BOS)
    held = encode_lines(tok, load_corpus(corpus, paths).heldout)
    total, count = 0.0, 0
    for inputs, targets in heldout_batches(held, bos, EVAL_BATCH, seq_len):
        logits = model.forward(inputs)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum").item()
        count += targets.numel()
    loss = total / count
    return {"model": str(model_dir), "heldout_tokens": count, "seq_len": seq_len, "kv_cache": kv_dtype,
            "heldout_loss": loss, "heldout_perplexity": math.exp(loss)}

