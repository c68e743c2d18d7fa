"""`edgebit soak`: the native runner chats for minutes on end (edgebit-runner --soak: conversations until the context
is full, sampled and greedy turns, cancels from another thread, resets), and the per-conversation figures it prints
are judged for drift after a warm-up: RSS growth per 10,000 generated tokens (a leak) and the speed of the last third
of the conversations against the first third (a slowdown). Every conversation does the same work (the same messages,
seeds and lengths), so their speeds compare. Speed is judged in tokens per CPU second of the runner's process: on a
shared machine a conversation's wall time also measures the neighbours (a soak beside a test suite read as 70%
"slower"), its CPU time does not; the wall-clock decode speed is reported beside it."""

from __future__ import annotations

import json
import statistics
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from edgebit.errors import EdgebitError

MB = 1_000_000  # MB are 10^6 bytes throughout edgebit


@dataclass(frozen=True)
class SoakLimits:
    rss_growth_mb_per_10k_tokens: float = 1.0  # issue 22: under 1 MB per 10,000 tokens after warm-up
    decode_slowdown: float = 0.05              # and decode tokens/s within 5%


@dataclass
class SoakResult:
    artifact: str
    seconds: float
    threads: int
    mode: str                       # "chat" (the artifact's template) or "completion" (history as the prompt)
    engine: dict
    cycles: list[dict]              # the runner's lines, one per conversation
    warmup_cycles: int
    tokens: int                     # generated in all
    rss_growth_bytes_per_10k_tokens: float
    anonymous_growth_bytes_per_10k_tokens: float
    rss_first_mb: float             # after warm-up
    rss_last_mb: float
    peak_rss_mb: float
    cpu_tps_first: float            # tokens per CPU second: upper decile of the first third of the conversations after warm-up
    cpu_tps_last: float             # ... of the last third
    speed_drift: float              # last / first - 1 (negative: slower); judged
    decode_tps_first: float         # wall-clock decode tokens/s, the same deciles (reported, not judged)
    decode_tps_last: float
    cancels: int
    limits: SoakLimits = field(default_factory=SoakLimits)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        return d


def warmup_seconds(seconds: float) -> float:
    """The start of a soak that is not judged: caches, arenas and the allocator settle (10%, 5 s to 60 s)."""
    return min(60.0, max(5.0, 0.1 * seconds))


def _slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys over xs (0 when xs do not vary)."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return 0.0 if sxx == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


def _upper_decile(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


def judge(artifact: str, seconds: float, threads: int, cycles: list[dict],
          limits: SoakLimits = SoakLimits()) -> SoakResult:
    """The verdict on a soak's conversation lines (the runner's JSON, in order)."""
    if not cycles:
        raise EdgebitError(f"{artifact}: the soak finished no conversation in {seconds:g} s")
    start = warmup_seconds(seconds)
    judged = [c for c in cycles if c["elapsed_s"] > start]
    if len(judged) < 6:
        raise EdgebitError(f"{artifact}: the soak finished {len(judged)} conversations after its {start:g} s warm-up; "
                           "drift needs at least 6 (soak longer: --minutes)")
    tokens = [float(c["tokens"]) for c in judged]
    rss_slope = _slope(tokens, [float(c["rss_bytes"]) for c in judged]) * 10_000
    anon_slope = _slope(tokens, [float(c["anonymous_bytes"]) for c in judged]) * 10_000
    third = len(judged) // 3

    # The upper decile, not the median: on a shared machine neighbours only ever slow a conversation down (their
    # cache and memory traffic costs CPU time too), in bursts, and a burst in the last third read as an 8.6% median
    # "slowdown" of a flat run in CI. A slowdown of the engine moves every conversation, the fastest ones included.
    def thirds(values: list[float]) -> tuple[float, float]:
        return _upper_decile(values[:third]), _upper_decile(values[-third:])

    first, last = thirds([c["generated"] / (c["cpu_ms"] / 1000.0) for c in judged])
    wall_first, wall_last = thirds([c["decode_tokens"] / (c["decode_ms"] / 1000.0) if c["decode_ms"] > 0 else 0.0
                                    for c in judged])
    drift = last / first - 1.0
    failures = []
    if rss_slope > limits.rss_growth_mb_per_10k_tokens * MB:
        failures.append(f"RSS grows {rss_slope / MB:.2f} MB per 10,000 tokens after warm-up "
                        f"(limit {limits.rss_growth_mb_per_10k_tokens:g})")
    if drift < -limits.decode_slowdown:
        failures.append(f"generation slowed {-100 * drift:.1f}% (tokens per CPU second) from the first third of the "
                        f"soak to the last (limit {100 * limits.decode_slowdown:g}%)")
    first_line = cycles[0]
    return SoakResult(
        artifact=artifact, seconds=seconds, threads=threads, mode=first_line.get("mode", "?"),
        engine=first_line.get("engine", {}), cycles=cycles, warmup_cycles=len(cycles) - len(judged),
        tokens=int(cycles[-1]["tokens"]), rss_growth_bytes_per_10k_tokens=rss_slope,
        anonymous_growth_bytes_per_10k_tokens=anon_slope, rss_first_mb=judged[0]["rss_bytes"] / MB,
        rss_last_mb=judged[-1]["rss_bytes"] / MB, peak_rss_mb=max(c["rss_bytes"] for c in cycles) / MB,
        cpu_tps_first=first, cpu_tps_last=last, speed_drift=drift, decode_tps_first=wall_first,
        decode_tps_last=wall_last,
        cancels=sum(int(c["cancels"]) for c in cycles), limits=limits, failures=failures)


def run_runner(runner: Path, artifact: Path, seconds: float, threads: int,
               on_cycle: Callable[[dict], None] = lambda line: None, extra_env: dict | None = None) -> list[dict]:
    """Runs `runner ARTIFACT --soak SECONDS` and returns its lines; on_cycle sees each as it arrives. A runner
    that fails (or a sanitizer report: any exit but 0) is an EdgebitError naming it and its last stderr line."""
    import os
    import tempfile

    cmd = [str(runner), str(artifact), "--soak", f"{seconds:g}", "--threads", str(threads)]
    lines: list[dict] = []
    # stderr to a file, not a pipe: a sanitizer's report can be long and must not block the runner.
    with tempfile.TemporaryFile("w+") as errf:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, text=True,
                                env={**os.environ, **(extra_env or {})})
        try:
            for raw in proc.stdout:
                lines.append(json.loads(raw))
                on_cycle(lines[-1])
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        errf.seek(0)
        stderr = errf.read()
    if rc != 0:
        detail = [l for l in stderr.splitlines() if l.strip()]
        pick = next((l for l in detail if "Sanitizer" in l), detail[-1] if detail else f"exit {rc}")
        raise EdgebitError(f"{runner}: soak of {artifact} failed (exit {rc}): {pick.strip()}")
    return lines


def soak(artifact: str | Path, minutes: float, threads: int = 1, limits: SoakLimits = SoakLimits(),
         on_cycle: Callable[[dict], None] = lambda line: None, log=None) -> SoakResult:
    """Soak an ONNX or .pte artifact with this machine's native runner (built into the bundle cache once)."""
    from edgebit.profile.bundle import build_bundle

    art = Path(artifact)
    if not (art / "manifest.json").is_file():
        raise EdgebitError(f"{art}: not an edgebit artifact directory (no manifest.json; make one with "
                           "`edgebit export onnx|executorch`)")
    runner = build_bundle("host", log=log).runner
    seconds = minutes * 60.0
    return judge(str(art), seconds, threads, run_runner(runner, art, seconds, threads, on_cycle), limits)
