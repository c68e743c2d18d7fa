"""Checkpoint loading cost: peak resident memory and time, each measured in a fresh process so the
figures are not polluted by what the parent holds. Baseline in the same run: safetensors' own
load_file (memory-mapped) with every byte read once, i.e. the checkpoint as stored, made resident.

Run as `python -m edgebit.bench.load {edgebit|safetensors} CHECKPOINT` to measure one loader."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path


def _status_bytes(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _probe(loader: str, path: str) -> dict:
    import torch  # imported before the baseline so its own memory is not counted

    from edgebit.model.weights import load_model_weights

    rss_before = _status_bytes("VmRSS")
    t0 = time.perf_counter()
    if loader == "edgebit":
        weights = load_model_weights(path)
        kept = weights.kept_bytes()
    else:
        from safetensors.torch import load_file

        tensors = {}
        for f in sorted(Path(path).glob("*.safetensors")):
            tensors.update(load_file(f))
        # load_file maps the file lazily; reading every byte is what makes the weights usable.
        for t in tensors.values():
            t.view(-1).view(torch.uint8).max()  # no upcast, unlike sum()
        kept = sum(t.numel() * t.element_size() for t in tensors.values())
    seconds = time.perf_counter() - t0
    return {"loader": loader, "seconds": seconds, "kept_bytes": kept, "rss_before_bytes": rss_before,
            "peak_rss_bytes": _status_bytes("VmHWM"), "rss_after_bytes": _status_bytes("VmRSS")}


def measure(path: Path, loader: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "edgebit.bench.load", loader, str(path)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        from edgebit.errors import EdgebitError

        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise EdgebitError(f"{path}: {loader} load failed in the probe process: {last}")
    row = json.loads(proc.stdout)
    # What loading added on top of the interpreter + torch, against what the loaded weights occupy.
    row["peak_added_bytes"] = row["peak_rss_bytes"] - row["rss_before_bytes"]
    row["peak_over_kept"] = row["peak_added_bytes"] / max(row["kept_bytes"], 1)
    return row


if __name__ == "__main__":
    print(json.dumps(_probe(sys.argv[1], sys.argv[2])))
