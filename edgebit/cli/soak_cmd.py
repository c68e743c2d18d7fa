from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def soak(
    artifact: Annotated[Path, typer.Argument(help="An ONNX or .pte artifact directory made by `edgebit export`.",
                                             show_default=False)],
    minutes: Annotated[float, typer.Option(min=0.05, help="How long to chat (the first 10%, 5 to 60 s, is "
                                                          "warm-up and not judged).")] = 3.0,
    threads: Annotated[int, typer.Option(min=0, max=256, help="Runner threads (0 = runtime default).")] = 1,
    max_rss_growth: Annotated[float, typer.Option(min=0, help="MB (10^6 bytes) of RSS growth allowed per 10,000 "
                                                              "generated tokens after warm-up.")] = 1.0,
    max_slowdown: Annotated[float, typer.Option(min=0, max=1, help="Slowdown (tokens per CPU second) allowed from "
                                                                   "the first third of the soak to the last (0.05 = "
                                                                   "5%).")] = 0.05,
    json_file: Annotated[Optional[Path], typer.Option("--json", help="Write the verdict and every conversation's "
                                                                     "figures as JSON.")] = None,
) -> None:
    """Chat with the native runner for minutes (conversations until the context is full, sampled and greedy turns,
    cancels, resets) and fail on memory growth or a slowdown. Exit 1 when a limit is broken."""
    from edgebit.api import soak as run_soak
    from edgebit.cli.console import err, out
    from edgebit.atomic import atomic_output_file
    from edgebit.soak import SoakLimits
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    limits = SoakLimits(max_rss_growth, max_slowdown)
    total = minutes * 60.0

    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err,
                  transient=True) as progress:
        task = progress.add_task("soak: starting", total=total)

        def on_cycle(c: dict) -> None:
            progress.update(task, completed=min(total, c["elapsed_s"]),
                            description=f"soak: {c['cycle'] + 1} conversations, {c['tokens']:,} tokens, "
                                        f"RSS {c['rss_bytes'] / 1e6:.1f} MB")

        result = run_soak(artifact, minutes, threads=threads, limits=limits, on_cycle=on_cycle,
                          log=lambda m: progress.update(task, description=m))
    if json_file:
        with atomic_output_file(json_file, force=True, option="--json") as tmp:
            tmp.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    kernel = result.engine.get("kernel_variant", "?")
    out.print(f"soak of {artifact}: {result.mode} mode, {result.engine.get('runtime', '?')} ({kernel}), "
              f"{threads} thread(s), {result.seconds:g} s, {len(result.cycles)} conversations, "
              f"{result.tokens:,} tokens, {result.cancels} cancelled turns")
    out.print(f"RSS after warm-up {result.rss_first_mb:.1f} MB -> {result.rss_last_mb:.1f} MB (peak "
              f"{result.peak_rss_mb:.1f}); growth {result.rss_growth_bytes_per_10k_tokens / 1e6:+.3f} MB per 10,000 "
              f"tokens (anonymous {result.anonymous_growth_bytes_per_10k_tokens / 1e6:+.3f}; limit "
              f"{limits.rss_growth_mb_per_10k_tokens:g})")
    out.print(f"speed {result.cpu_tps_first:.1f} -> {result.cpu_tps_last:.1f} tokens per CPU second (first vs last "
              f"third after warm-up: {100 * result.speed_drift:+.1f}%, limit -{100 * limits.decode_slowdown:g}%); "
              f"wall-clock decode {result.decode_tps_first:.1f} -> {result.decode_tps_last:.1f} tok/s")
    for f in result.failures:
        out.print(f"[bold red]FAIL[/] {f}")
    if not result.passed:
        raise typer.Exit(1)
    out.print("[green]passed[/]")
