"""`edgebit perplexity`: held-out perplexity of a checkpoint by the reference model (reproduces the model card)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgebit.api import KvCache
from edgebit.cli.options import JsonOpt, OptionalModelArg, RevisionOpt, resolve_model


def perplexity(
    model: OptionalModelArg = None,
    revision: RevisionOpt = None,
    texts: Annotated[Optional[list[Path]], typer.Option("--text", help="Text files, split as `edgebit train` "
                                                        "splits them (repeatable).", show_default=False)] = None,
    corpus: Annotated[Optional[str], typer.Option(help="Built-in corpus 'kjv' [default when no --text].",
                                                  show_default=False)] = None,
    seq_len: Annotated[int, typer.Option(help="Window length, as in training.")] = 128,
    kv_cache: Annotated[KvCache, typer.Option(help="The KV cache to compute with: float32 (the checkpoint's "
                                                   "arithmetic), or float16 / int8 as an artifact exported with that "
                                                   "--kv-cache holds it (what the cache costs).")] = KvCache.FLOAT32,
    as_json: JsonOpt = False,
) -> None:
    """Held-out loss and perplexity on the fixed held-out split of the training corpus."""
    from edgebit.cli.console import out
    from edgebit.train.evaluate import heldout_perplexity

    kind = corpus if corpus or texts else "kjv"
    r = heldout_perplexity(resolve_model(model, revision), kind, list(texts or []), seq_len, kv_cache.value)
    if as_json:
        print(json.dumps(r, indent=2))
        return
    out.print(f"{r['model']}: held-out loss {r['heldout_loss']:.4f}, perplexity {r['heldout_perplexity']:.2f} "
              f"({r['heldout_tokens']:,} tokens, windows of {seq_len}, {r['kv_cache']} KV cache)")
