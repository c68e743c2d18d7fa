"""`edgebit quickstart`: the whole mission on one model, start to finish, each step one line.

export to ONNX and to a .pte (edgebit's ternary op, int8 activations) -> verify both against the reference model ->
a line of text from the native runner (no Python in the loop) -> latency and memory measured locally and on an
emulated aarch64 CPU -> a JSON and a self-contained HTML report. A failing step stops the run with an error that
names it (QuickstartError, exit 2); the steps done so far stay in the output directory.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edgebit.errors import EdgebitError

PROMPT = "And God said"
TEXT_TOKENS = 24
STEPS = ("export onnx", "export executorch", "verify onnx", "verify executorch", "native runner", "profile local",
         "profile qemu-aarch64", "report")


class QuickstartError(EdgebitError):
    """A quickstart step failed; the message names the step."""


@dataclass
class StepResult:
    name: str
    summary: str  # the one line shown for it
    seconds: float


@dataclass
class QuickstartResult:
    output: Path
    steps: list[StepResult] = field(default_factory=list)
    text: str = ""  # what the native runner generated
    report: Path | None = None  # the HTML report
    profile_json: Path | None = None


def _step(result: QuickstartResult, name: str, on_step: Callable[[StepResult], None], fn: Callable[[], str]):
    start = time.perf_counter()
    try:
        summary = fn()
    except EdgebitError as e:
        raise QuickstartError(f"quickstart step '{name}' failed: {e}") from None
    step = StepResult(name, summary, time.perf_counter() - start)
    result.steps.append(step)
    on_step(step)


def _native_text(bundle_runner: Path, artifact: Path) -> dict:
    r = subprocess.run([str(bundle_runner), str(artifact), "--prompt", PROMPT, "--max-new-tokens", str(TEXT_TOKENS),
                        "--json"], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        raise EdgebitError(f"{bundle_runner}: {last}")
    return json.loads(r.stdout)


def quickstart(output: str | Path, model: str | Path | None = None, *, force: bool = False,
               on_step: Callable[[StepResult], None] = lambda step: None,
               on_progress: Callable[[str], None] = lambda what: None) -> QuickstartResult:
    """Run every step on MODEL (default: the shipped model) into OUTPUT: onnx/, pte/, bundle/, profile.json,
    report.html. on_step gets each finished step, on_progress what is being done now."""
    from edgebit import api
    from edgebit.profile.report import html_report
    from edgebit.profile.run import ProfileSpec

    out = Path(output)
    if out.exists() and any(out.iterdir()) and not force:
        raise QuickstartError(f"{out}: exists and is not empty (use --force to replace what quickstart writes)")
    out.mkdir(parents=True, exist_ok=True)
    result = QuickstartResult(out)
    arts: dict[str, Path] = {}

    def export(kind: str) -> str:
        fn = api.export_onnx if kind == "onnx" else api.export_executorch
        arts[kind] = fn(model, out / kind, force=True, on_step=lambda what: on_progress(f"export {kind}: {what}"))
        size = sum(f.stat().st_size for f in arts[kind].iterdir() if f.is_file())
        return f"{arts[kind]} ({size / 1e6:.1f} MB, every ternary linear one edgebit op)"

    def verify(kind: str) -> str:
        report = api.verify(arts[kind])
        line = (f"top-1 {100 * report.top1_agreement:.1f}%, max |logit diff| {report.max_abs_diff:.2g}, perplexity "
                f"{report.perplexity_artifact:.2f} vs {report.perplexity_reference:.2f} (reference)")
        if not report.passed:
            raise EdgebitError(f"{arts[kind]} does not match the reference: {line} (docs/verify.md)")
        return "PASS: " + line

    def native() -> str:
        b = api.bundle(out / "bundle", force=True, log=on_progress)
        got = _native_text(b.runner, arts["onnx"])
        result.text = got.get("text", "")
        line = " ".join((PROMPT + result.text).split())
        return f'"{line[:100]}" ({got["decode_tokens_per_s"]:.0f} tok/s, {b.runner})'

    # Emulation is 10-100x slower than the host: a shorter run there checks the ARM path end to end all the same.
    specs = {"local": ProfileSpec(threads=[1], prompt_len=32, gen_len=32, runs=2, warmup=1),
             "qemu": ProfileSpec(threads=[1], prompt_len=16, gen_len=8, runs=1, warmup=0)}
    measured: list[dict] = []

    def profile(device: str) -> str:
        rows = api.profile([arts["onnx"], arts["pte"]], device, specs[device], log=on_progress)
        measured.extend(rows)
        return "; ".join(f"{Path(r['artifact']).name}: TTFT {r['ttft_ms']:.1f} ms, decode {r['decode_tokens_per_s']:.0f} "
                         f"tok/s, peak RSS {r['peak_rss_bytes'] / 1e6:.0f} MB" for r in rows) + (
            " (emulated: correctness, not speed)" if any(r.get("emulated") for r in rows) else "")

    def report() -> str:
        result.profile_json = out / "profile.json"
        result.profile_json.write_text(json.dumps(measured, indent=2) + "\n")
        result.report = out / "report.html"
        result.report.write_text(html_report(measured))
        return f"{result.report} (and {result.profile_json})"

    for name, fn in zip(STEPS, (lambda: export("onnx"), lambda: export("pte"), lambda: verify("onnx"),
                                lambda: verify("pte"), native, lambda: profile("local"), lambda: profile("qemu"),
                                report)):
        _step(result, name, on_step, fn)
    return result
