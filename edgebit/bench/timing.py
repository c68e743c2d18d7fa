"""Timing for benchmarks: repeat a call until a round lasts long enough, report the median round."""

from __future__ import annotations

import statistics
import time
from typing import Callable


def seconds_per_call(fn: Callable[[], object], min_round_s: float = 0.05, rounds: int = 5) -> float:
    fn()  # warm-up: first-touch page faults, lazy initialization
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= min_round_s:
            break
        calls = max(calls * 2, int(calls * min_round_s / max(elapsed, 1e-9)))
    samples = [elapsed / calls]
    for _ in range(rounds - 1):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        samples.append((time.perf_counter() - t0) / calls)
    return statistics.median(samples)


def streaming_read_gbps(nbytes: int = 1 << 30, threads: int = 1) -> float:
    """A plain streaming read of a buffer far beyond cache (torch's max-reduction over uint8: one pass,
    no upcast), as the memory-bandwidth yardstick for kernels measured in the same run."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        buf = torch.ones(nbytes, dtype=torch.uint8)
        return nbytes / seconds_per_call(lambda: buf.max(), min_round_s=0.2, rounds=5) / 1e9
    finally:
        torch.set_num_threads(previous)
