"""Timing for benchmarks: repeat a call until a round lasts long enough, report the median round."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
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


HUGE_PAGE = 2 << 20


def transparent_hugepages() -> bool:
    """The kernel gives 2 MB pages to a mapping that asks (its THP setting is "always" or "madvise"), as the
    engine's hugepages_wanted() reads it (runtime_ops/engine/weight_map.cpp)."""
    try:
        mode = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return False
    return "[always]" in mode or "[madvise]" in mode


def huge_page_tensor(nbytes: int):
    """(uint8 tensor of nbytes, the mapping that holds it: keep it alive as long as the tensor) on 2 MB pages where
    the kernel has transparent huge pages, as the runner maps an edgebit artifact's weights
    (runtime_ops/engine/weight_map.h): with 4 KB pages these VMs read memory 10-20% slower (TLB misses), so figures
    meant to match the runner's, and the bandwidth yardstick, are taken on such pages too."""
    import ctypes
    import mmap

    import torch

    region = mmap.mmap(-1, nbytes + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if transparent_hugepages():  # else 4 KB pages, as the runner's weights get too
        region.madvise(mmap.MADV_HUGEPAGE)
    start = -ctypes.addressof(ctypes.c_char.from_buffer(region)) % HUGE_PAGE
    return torch.frombuffer(region, dtype=torch.uint8, offset=start, count=nbytes), region


def _read_buffer(nbytes: int):
    buf, region = huge_page_tensor(nbytes)
    buf.fill_(1)
    return buf, region


def streaming_read_gbps(nbytes: int = 1 << 30, threads: int = 1) -> float:
    """A plain streaming read of a buffer far beyond cache (torch's max-reduction over uint8: one pass,
    no upcast), as the memory-bandwidth yardstick for kernels measured in the same run."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        buf, region = _read_buffer(nbytes)
        try:
            return nbytes / seconds_per_call(lambda: buf.max(), min_round_s=0.2, rounds=5) / 1e9
        finally:
            del buf
            region.close()
    finally:
        torch.set_num_threads(previous)
