from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer


def _threads(values: list[str] | None) -> list[int]:
    out = []
    for v in values or ["0"]:
        for t in v.split(","):
            if not t.strip().isdigit() or int(t) > 256:
                raise typer.BadParameter(f"{v!r}: thread counts are integers 0..256 (0 = runtime default)",
                                         param_hint="--threads")
            out.append(int(t))
    return out


def profile(
    artifacts: Annotated[list[Path], typer.Argument(help="ONNX artifact directories made by `edgebit export` "
                                                         "(several: compared side by side).", show_default=False)],
    device: Annotated[str, typer.Option(help="local, qemu[:CPU], ssh://user@host[:port] or adb[:serial].")] = "local",
    threads: Annotated[Optional[list[str]], typer.Option(help="Thread count; repeat or comma-separate to compare "
                                                              "(0 = runtime default).")] = None,
    prompt_len: Annotated[int, typer.Option(min=1, help="Prompt tokens (random ids from --seed).")] = 32,
    prompt_ids: Annotated[Optional[str], typer.Option(help="Prompt as token ids (overrides --prompt-len).")] = None,
    gen_len: Annotated[int, typer.Option(min=1, help="Tokens to generate greedily.")] = 32,
    runs: Annotated[int, typer.Option(min=1, help="Timed repetitions.")] = 3,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed warm-up runs.")] = 1,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the random prompt.")] = 0,
    json_file: Annotated[Optional[Path], typer.Option("--json", help="Write the runner's JSON (a list when "
                                                                     "several runs are compared).")] = None,
    report: Annotated[Optional[Path], typer.Option(help="Write a self-contained HTML report.")] = None,
    ort_profile: Annotated[Optional[Path], typer.Option("--op-profile", "--ort-profile",
                                                        help="Directory for the runtime's per-op profile (ONNX "
                                                             "Runtime's JSON, ExecuTorch's ETDump).")] = None,
    max_memory: Annotated[Optional[int], typer.Option(min=1, help="MB (10^6 bytes): the runner refuses to open an "
                                                      "artifact whose estimated peak memory is above it, naming the "
                                                      "figure, instead of being killed.")] = None,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds one runner invocation may take.")] = 600,
    connect_timeout: Annotated[float, typer.Option(min=1, help="Seconds to reach an ssh/adb device.")] = 10,
    ssh_config: Annotated[Optional[Path], typer.Option(help="ssh_config file for ssh/scp (-F).")] = None,
    accept_new_host_key: Annotated[bool, typer.Option(help="Trust an ssh host seen for the first time "
                                                           "(StrictHostKeyChecking=accept-new).")] = False,
) -> None:
    """Latency and memory of an artifact on a device, measured there by edgebit-runner."""
    from edgebit.api import profile as run_profile
    from edgebit.atomic import atomic_output_file
    from edgebit.cli.console import err, out
    from edgebit.profile.report import html_report, print_table
    from edgebit.profile.run import ProfileSpec

    ids = None
    if prompt_ids:
        try:
            ids = [int(t) for t in prompt_ids.split(",") if t.strip()]
        except ValueError:
            raise typer.BadParameter(f"{prompt_ids!r} is not a comma-separated list of ids", param_hint="--prompt-ids")
    spec = ProfileSpec(threads=_threads(threads), prompt_len=prompt_len, gen_len=gen_len, runs=runs, warmup=warmup,
                       seed=seed, prompt_ids=ids, timeout=timeout, ort_profile_dir=ort_profile,
                       max_memory_mb=max_memory)
    from rich.markup import escape

    results = run_profile(artifacts, device, spec, log=lambda m: err.print(f"[dim]{escape(m)}[/]"),
                          connect_timeout=connect_timeout, ssh_config=ssh_config,
                          accept_new_host_key=accept_new_host_key)
    print_table(results, out)
    # Written to a temp name and renamed: a full disk or a kill mid-write leaves the previous file, never half of one.
    if json_file:
        with atomic_output_file(json_file, force=True, option="--json") as tmp:
            tmp.write_text(json.dumps(results[0] if len(results) == 1 else results, indent=2) + "\n")
        err.print(f"wrote {json_file}", markup=False)
    if report:
        with atomic_output_file(report, force=True, option="--report") as tmp:
            tmp.write_text(html_report(results))
        err.print(f"wrote {report}", markup=False)
