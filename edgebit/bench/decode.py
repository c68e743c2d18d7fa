"""`edgebit bench decode`: whole-model decode and prefill of every artifact kind, measured by the native runner
(edgebit-runner through edgebit.profile, so the figures are what a device would see), next
to the roofline of this machine measured in the same run.

    roofline tokens/s = streaming read bandwidth / bytes one decoded token must read (weights + KV cache)

Artifacts: ONNX with edgebit's op (its default fp16 KV cache; onnx-kv32 the fp32 one, onnx-kv8 the int8 one), ONNX
with `--ops standard` (ONNX Runtime's MatMulNBits bits=2: the stock baseline, the denominator of
speedup_vs_standard_ops), the ExecuTorch .pte (and pte-kv32, pte-kv8), and ExecuTorch's stock low-bit path (`--ops torchao-8da4w`), each with an fp32 and an int8 head
by default (`--heads`; q4 for edgebit's two; `--artifacts` picks a subset), at each prompt length of `--context` (the
decode steps then attend over that many cached positions and more; each context gets artifacts whose sequence limit
fits it). The generated checkpoint and its exports are cached under a key of their content, so a rerun only times."""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

# (artifact name, export target, export kwargs)
# edgebit's artifacts as exported by default (an fp16 KV cache), with the exact fp32 cache (-kv32) and with the int8
# one (-kv8: rows of codes and a float32 scale)
ARTIFACTS = (("onnx", "onnx", {"ops": "edgebit", "kv_dtype": "float16"}),
             ("onnx-kv32", "onnx", {"ops": "edgebit", "kv_dtype": "float32"}),
             ("onnx-kv8", "onnx", {"ops": "edgebit", "kv_dtype": "int8"}),
             ("onnx-standard", "onnx", {"ops": "standard"}),
             ("pte", "executorch", {"kv_dtype": "float16"}),
             ("pte-kv32", "executorch", {"kv_dtype": "float32"}),
             ("pte-kv8", "executorch", {"kv_dtype": "int8"}),
             # ExecuTorch's stock low-bit path on the same weights (torchao 8da4w on XNNPACK; issue 5's baseline)
             ("pte-torchao", "executorch", {"ops": "torchao-8da4w"}))
HEADS = ("int8", "fp32", "q4")
OWN_HEADS = ("onnx", "onnx-kv32", "onnx-kv8", "pte", "pte-kv32", "pte-kv8")  # edgebit's ops: edgebit's QLinear head
KV_FP32 = ("onnx-kv32", "onnx-standard", "pte-kv32", "pte-torchao")
KV_INT8 = ("onnx-kv8", "pte-kv8")  # the rest keep their cache in fp16 (the default)
DEFAULT_HEADS = ("int8", "fp32")
# The head the stock artifacts fall back to where they cannot compute the one asked for (q4 needs edgebit's QLinear):
# rows with a q4 head are compared with the standard artifact's int8 head, its smallest stock head.
STOCK_HEAD = {"q4": "int8"}
THREADS = (1, 2)
PROMPT_LEN, GEN_LEN = 128, 64
BASELINE = "onnx-standard"
# issue 22's memory target: peak RSS at most MEMORY_FACTOR x (weight bytes + KV cache at the context used +
# MEMORY_ALLOWANCE), where the weights are mapped from the artifact's files.
MEMORY_FACTOR, MEMORY_ALLOWANCE = 1.15, 100_000_000


@dataclass(frozen=True)
class Settings:
    prompt_len: int = PROMPT_LEN  # the context of one pass; run() makes one pass per entry of contexts
    contexts: tuple[int, ...] = (PROMPT_LEN,)
    gen_len: int = GEN_LEN
    threads: tuple[int, ...] = THREADS
    heads: tuple[str, ...] = DEFAULT_HEADS
    artifacts: tuple[str, ...] = tuple(name for name, _, _ in ARTIFACTS)
    runs: int = 3
    warmup: int = 1

    @property
    def max_seq_len(self) -> int:
        """The artifacts' sequence limit: the benchmark's context rounded up to 64. The .pte attends over its
        whole cache buffer each step, so a larger limit would charge it for cache it does not use."""
        return -(-(self.prompt_len + self.gen_len) // 64) * 64


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def _source_digest(target: str) -> str:
    """What an export to `target` is made by: that exporter's Python and the shared modules that load and pack
    weights (so changing one exporter does not re-export the other's artifacts). Not the op library: the model
    file does not depend on its build, and a cached artifact gets the current library copied in instead
    (refresh_op_library), so rebuilding the kernels does not re-export a 2B4T model."""
    import edgebit
    import edgebit.exporters

    exporters = Path(edgebit.exporters.__file__).parent
    roots = [exporters / target] + [Path(edgebit.__file__).parent / d for d in ("model", "quant", "ops")]
    files = sorted(p for r in roots for p in r.rglob("*.py")) + sorted(exporters.glob("*.py"))
    return _digest(*[p.read_bytes() for p in files])


def refresh_op_library(artifact: Path) -> bool:
    """Put this installation's op library into a cached artifact whose copy differs, and record its hash in the
    manifest (both written to a temp name, then renamed). True when something was replaced."""
    import os
    import shutil

    from edgebit.artifact import MANIFEST, sha256_file
    from edgebit.ops import executorch_library, ort_library

    manifest = json.loads((artifact / MANIFEST).read_text())
    name = manifest.get("op_library")
    if not name:
        return False  # the torchao baseline ships no library
    current = ort_library.library_path() if manifest.get("target") == "onnx" else executorch_library.library_path()
    digest = sha256_file(current)
    if manifest["files"].get(name) == digest:
        return False
    tmp = artifact / f".{name}.tmp-{os.getpid()}"
    shutil.copy2(current, tmp)
    os.replace(tmp, artifact / name)
    manifest["files"][name] = digest
    tmp = artifact / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, artifact / MANIFEST)
    return True


def generated_checkpoint(cache_dir: Path, preset: str, on_tensor: Callable[[str], None] | None = None,
                         on_start: Callable[[int], None] | None = None) -> Path:
    """A random packed checkpoint of the preset's shapes, kept under a key of everything that decides its bytes
    (the preset, the seed and the generator's source)."""
    from edgebit.model import synthetic

    key = _digest(preset, synthetic.PRESETS[preset].__dict__, Path(synthetic.__file__).read_bytes())
    path = cache_dir / "checkpoints" / f"{preset}-packed-{key}"
    if not (path / "model.safetensors").is_file():
        if on_start:
            on_start(synthetic.tensor_count(preset, "bitnet", "packed"))
        path.parent.mkdir(parents=True, exist_ok=True)
        synthetic.write_random_checkpoint(path, preset, force=True, on_tensor=on_tensor)
    return path


def cached_export(cache_dir: Path, checkpoint: Path, checkpoint_key: str, source_key: str, name: str, target: str,
                  head: str, opts: dict, max_seq_len: int, on_step: Callable[[str], None]) -> tuple[Path, float | None]:
    """(artifact dir, export seconds or None when it came from the cache)."""
    from edgebit.bench.isolated_export import export_in_child

    key = _digest(checkpoint_key, source_key, target, head, opts, max_seq_len)
    path = cache_dir / "artifacts" / f"{name}-{head}-{key}"
    if (path / "manifest.json").is_file():
        refresh_op_library(path)
        return path, None
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    export_in_child(target, checkpoint, path, on_step, max_seq_len=max_seq_len, head=head, **opts)
    return path, time.perf_counter() - t0


def _blocks(k: int) -> int:
    """128-weight blocks a row of k weights takes: edgebit's packed rows and MatMulNBits both pad K to them."""
    return -(-k // 128)


def bytes_per_token(cfg, name: str, head: str, context: float) -> dict:
    """Bytes one decoded token reads at a context of `context` cached positions, as each artifact stores its
    weights: ternary linears at 2 bits a weight plus their scales (edgebit: one fp32 per output channel;
    MatMulNBits: one per 128-weight block; torchao 8da4w: 4 bits a weight), the head (tied: the embedding table) at 4 bytes or 1 byte a weight
    plus scales (edgebit's QLinear int8 or q4 rows and a scale per row; the standard artifact's MatMulNBits bits=8: per
    128-block; torchao's XNNPACK int8: per row), and the fp32 KV
    cache. Norms, RoPE rows and the embedding row gathered are under 0.1% and left out."""
    from edgebit.quant.packing import packed_row_bytes

    h, v = cfg.hidden_size, cfg.vocab_size
    shapes = [(cfg.q_size + 2 * cfg.kv_size, h), (h, cfg.q_size), (2 * cfg.intermediate_size, h),
              (h, cfg.intermediate_size)]  # (N, K) per layer: qkv, o, gate_up, down
    body = 0
    for n, k in shapes:
        if name == "pte-torchao":  # XNNPACK's blockwise int4: half a byte a weight + a bf16 scale per 32
            body += n * k // 2 + 2 * (n * k // 32)
        else:
            body += n * packed_row_bytes(k) + 4 * (n * _blocks(k) if name == BASELINE else n)
    body *= cfg.num_layers
    if head == "fp32":
        head_bytes = 4 * v * h
    elif name in OWN_HEADS:  # edgebit's QLinear rows (edgebit/quant/qhead.py) and an fp32 scale per row
        from edgebit.quant.qhead import HEAD_BITS, row_bytes

        head_bytes = v * (row_bytes(h, HEAD_BITS[head]) + 4)
    else:  # ONNX standard: MatMulNBits bits=8, an fp32 scale per 128; torchao's .pte: XNNPACK int8, one per row
        head_bytes = v * h + 4 * v if name.startswith("pte") else v * _blocks(h) * (128 + 4)
    row = cfg.head_dim + 4 if name in KV_INT8 else cfg.head_dim * (4 if name in KV_FP32 else 2)  # bytes
    kv = 2 * cfg.num_layers * cfg.num_kv_heads * row * context
    return {"weights": body + head_bytes, "ternary": body, "head": head_bytes, "kv_cache": int(kv)}


def measure(artifact: Path, settings: Settings, log: Callable[[str], None]) -> list[dict]:
    from edgebit.profile.run import ProfileSpec, profile

    spec = ProfileSpec(threads=list(settings.threads), prompt_len=settings.prompt_len, gen_len=settings.gen_len,
                       runs=settings.runs, warmup=settings.warmup, timeout=3600)
    return profile([artifact], "local", spec, log=log)


def memory_target(weight_bytes: int, kv_bytes: int) -> int:
    return int(MEMORY_FACTOR * (weight_bytes + kv_bytes + MEMORY_ALLOWANCE))


def bench_rows(runs: list[dict], bandwidth: dict[int, float], cfg, settings: Settings) -> list[dict]:
    """One row per (artifact, head, threads), with ratios against the standard-ops artifact of the same head (or its
    STOCK_HEAD) and thread count (None when that was not measured), and decode tokens/s per GB/s of the one-thread
    streaming bandwidth (the issue's yardstick: a second thread adds compute, not DRAM bandwidth, on these VMs)."""
    # The step that decodes token i (i = 1 .. G-1) attends over P + i positions.
    context = settings.prompt_len + settings.gen_len / 2
    rows = []
    for r in runs:
        b = bytes_per_token(cfg, r["name"], r["head"], context)
        total = b["weights"] + b["kv_cache"]
        gbps = bandwidth[r["threads"]]
        roofline = gbps * 1e9 / total
        mem = r.get("memory") or {}
        model_bytes = mem.get("weights_file") or r.get("artifact_bytes")
        kv_used = bytes_per_token(cfg, r["name"], r["head"], settings.prompt_len + settings.gen_len)["kv_cache"]
        target = memory_target(model_bytes, kv_used) if model_bytes else None
        rows.append({
            "artifact": r["name"], "threads": r["threads"], "head": r["head"],
            "decode_tokens_per_s": r["decode_tokens_per_s"], "prefill_tokens_per_s": r["prefill_tokens_per_s"],
            "bytes_per_token": total, "weight_bytes_per_token": b["weights"], "kv_bytes_per_token": b["kv_cache"],
            "stream_read_gbps": gbps, "roofline_tokens_per_s": roofline,
            "roofline_fraction": r["decode_tokens_per_s"] / roofline,
            "tokens_per_gbps": r["decode_tokens_per_s"] / bandwidth.get(1, gbps),
            "speedup_vs_standard_ops": None, "prefill_speedup_vs_standard_ops": None, "standard_head": None,
            "prompt_tokens": settings.prompt_len, "gen_tokens": settings.gen_len, "rounds": r["rounds"],
            "peak_rss_bytes": r["peak_rss_bytes"], "model_bytes": model_bytes, "kv_cache_bytes_at_context": kv_used,
            "memory_target_bytes": target, "peak_over_target": r["peak_rss_bytes"] / target if target else None,
            "memory": mem, "load_ms": r.get("load_ms"), "kernel_variant": r["kernel_variant"],
            "runtime": r["runtime"], "export_seconds": r["export_seconds"], "artifact_dir": r["artifact"],
        })
    base = {(r["head"], r["threads"]): r for r in rows if r["artifact"] == BASELINE}
    for r in rows:
        b = base.get((r["head"], r["threads"])) or base.get((STOCK_HEAD.get(r["head"]), r["threads"]))
        if b:
            r["standard_head"] = b["head"]
            r["speedup_vs_standard_ops"] = r["decode_tokens_per_s"] / b["decode_tokens_per_s"]
            r["prefill_speedup_vs_standard_ops"] = r["prefill_tokens_per_s"] / b["prefill_tokens_per_s"]
    return rows


@dataclass
class Progress:
    """Callbacks the CLI draws with: a step label, one unit of the run done, and the checkpoint writer's bar."""
    step: Callable[[str], None] = lambda what: None
    advance: Callable[[], None] = lambda: None
    tensors: Callable[[int], Callable[[str], None]] | None = None


def total_units(settings: Settings) -> int:
    """Progress units of a run: one per export, one per runner invocation, two bandwidth measurements."""
    combos = len(selected(settings)) * len(settings.contexts)
    return combos + settings.runs * combos * len(settings.threads) + 2


def run(model: Path | None, cache_dir: Path, settings: Settings, preset: str = "2b4t",
        progress: Progress = Progress()) -> list[dict]:
    """Export (or take from the cache) every artifact, time each with the native runner, and return the rows.
    Streaming bandwidth is measured before and after the runs; the higher figure is the yardstick (the
    stricter roofline on a machine other jobs share)."""
    from edgebit.artifact import checkpoint_fingerprint
    from edgebit.bench.timing import streaming_read_gbps
    from edgebit.model.checkpoint import open_checkpoint

    if model is None:
        tick = {}

        def start(n):
            tick["fn"] = progress.tensors(n) if progress.tensors else None

        progress.step(f"writing a {preset}-shaped random checkpoint")
        model = generated_checkpoint(cache_dir, preset, on_tensor=lambda name: tick.get("fn") and tick["fn"](name),
                                     on_start=start)
    with open_checkpoint(model) as ckpt:  # checks the checkpoint (one-line errors) before any export
        cfg = ckpt.config
    progress.step("fingerprinting the checkpoint and the exporters")
    checkpoint_key = _digest(checkpoint_fingerprint(model)["sha256"])
    source_keys = {target: _source_digest(target) for _, target, _ in ARTIFACTS}

    def bandwidth() -> dict[int, float]:
        progress.step("measuring streaming read bandwidth")
        bw = {t: streaming_read_gbps(threads=t) for t in settings.threads}
        progress.advance()
        return bw

    artifacts = []
    for context in settings.contexts:
        # Each context its own exports: the .pte attends over its whole cache buffer (Settings.max_seq_len).
        at = replace(settings, prompt_len=context)
        for name, target, opts, head in selected(settings):
            label = f"{name} ({head} head, context {context})"
            artifact, seconds = cached_export(cache_dir, model, checkpoint_key, source_keys[target], name, target,
                                              head, opts, at.max_seq_len,
                                              lambda what: progress.step(f"export {label}: {what}"))
            artifacts.append((at, name, head, artifact, seconds))
            progress.advance()
    before = bandwidth()
    # Rounds: every artifact, context and thread count once per round (one warm-up and one timed generation each),
    # so a burst of load from other jobs hits all of them alike; each row is the median over the rounds.
    runs = []
    for round_ in range(settings.runs):
        for at, name, head, artifact, seconds in artifacts:
            for threads in settings.threads:
                progress.step(f"round {round_ + 1}/{settings.runs}: {name} ({head} head), context {at.prompt_len}, "
                              f"{threads} threads")
                for r in measure(artifact, replace(at, runs=1, threads=(threads,)), lambda msg: None):
                    runs.append({**r, "name": name, "head": head, "export_seconds": seconds, "context": at.prompt_len})
                progress.advance()
    after = bandwidth()
    best = {t: max(before[t], after[t]) for t in settings.threads}
    rows = []
    for context in settings.contexts:
        at = replace(settings, prompt_len=context)
        rows += bench_rows(median_runs([r for r in runs if r["context"] == context]), best, cfg, at)
    return rows


def selected(settings: Settings) -> list[tuple[str, str, dict, str]]:
    """(name, target, export options, head) of every artifact the run exports and times: the chosen artifacts with
    each chosen head they can compute. The stock ones have no q4 head: their int8 row is the yardstick then, timed
    even when int8 is not among the chosen heads (`--heads q4` alone used to drop the standard artifact silently)."""
    chosen = []
    for head in settings.heads:
        for name, target, opts in ARTIFACTS:
            if name not in settings.artifacts:
                continue
            own = head if head not in STOCK_HEAD or name in OWN_HEADS else STOCK_HEAD[head]
            if (name, target, opts, own) not in chosen:
                chosen.append((name, target, opts, own))
    return chosen


def median_runs(runs: list[dict]) -> list[dict]:
    """One run per (artifact, head, threads), in first-seen order: tokens/s are the medians over the rounds."""
    groups: dict[tuple, list[dict]] = {}
    for r in runs:
        groups.setdefault((r["name"], r["head"], r["threads"]), []).append(r)
    out = []
    for group in groups.values():
        row = dict(group[0])
        for key in ("decode_tokens_per_s", "prefill_tokens_per_s", "load_ms", "peak_rss_bytes"):
            if all(g.get(key) is not None for g in group):
                row[key] = statistics.median(g[key] for g in group)
        row["rounds"] = len(group)
        out.append(row)
    return out
