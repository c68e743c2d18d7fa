from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgebit.cli.options import ArtifactArg, JsonOpt, RepetitionPenaltyOpt, ThreadsOpt, TopKOpt, positive


def _parse_ids(text: str) -> list[int]:
    try:
        ids = [int(t) for t in text.replace(" ", "").split(",") if t]
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of token ids", param_hint="--prompt-ids")
    if not ids or min(ids) < 0:
        raise typer.BadParameter("expected at least one non-negative token id", param_hint="--prompt-ids")
    return ids


def run(
    artifact: ArtifactArg,
    prompt: Annotated[Optional[str], typer.Option(help="Prompt text (needs the artifact's tokenizer.json).")] = None,
    prompt_ids: Annotated[Optional[str], typer.Option(help="Prompt as token ids, e.g. 5,17,923.")] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens to generate at most.")] = 64,
    temperature: Annotated[float, typer.Option(min=0.0, help="0 = greedy (default, reproducible).")] = 0.0,
    top_p: Annotated[float, typer.Option(max=1.0, callback=positive,
                                         help="Nucleus sampling mass in (0, 1] (with temperature > 0).")] = 1.0,
    top_k: TopKOpt = 0,
    repetition_penalty: RepetitionPenaltyOpt = 1.0,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    threads: ThreadsOpt = None,
    profile: Annotated[bool, typer.Option("--profile", help="ExecuTorch (.pte) artifacts: record an ETDump and "
                                          "print the per-operator time table from ExecuTorch's Inspector.")] = False,
    etdump: Annotated[Optional[Path], typer.Option(help="Where --profile writes the ETDump (default: "
                                                        "edgebit-run.etdp in the current directory).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate text from an artifact, streaming it, then print prefill and decode speed."""
    from edgebit.api import run as run_artifact
    from edgebit.cli.console import err
    from edgebit.generate import Sampling

    if (prompt is None) == (prompt_ids is None):
        raise typer.BadParameter("give exactly one of --prompt and --prompt-ids", param_hint="--prompt")
    ids = _parse_ids(prompt_ids) if prompt_ids is not None else None
    streamed = []

    def show(text: str) -> None:
        streamed.append(text)
        sys.stdout.write(text)
        sys.stdout.flush()

    result = run_artifact(artifact, prompt, prompt_ids=ids, max_new_tokens=max_new_tokens,
                          sampling=Sampling(temperature, top_p, seed, top_k, repetition_penalty), threads=threads,
                          on_text=None if as_json else show,
                          etdump=(etdump or Path("edgebit-run.etdp")) if profile else None)
    if as_json:
        print(json.dumps({"prompt_ids": result.prompt_ids, "generated_ids": result.generated_ids, "text": result.text,
                          "prefill_tokens_per_s": result.prefill_tokens_per_s,
                          "decode_tokens_per_s": result.decode_tokens_per_s, "backend": result.backend,
                          **({"etdump": str(result.etdump), "ops": result.ops} if profile else {})}, indent=2))
        return
    print("" if streamed else ",".join(map(str, result.generated_ids)))
    err.print(f"prefill {len(result.prompt_ids)} tokens: {result.prefill_tokens_per_s:.1f} tok/s; decode "
              f"{len(result.generated_ids)} tokens: {result.decode_tokens_per_s:.1f} tok/s ({result.backend})")
    if result.ops is not None:
        _print_ops(result.ops, result.etdump)


def _print_ops(ops: list[dict], etdump: Path) -> None:
    from rich.table import Table

    from edgebit.cli.console import err

    table = Table(title=f"operators over the whole run (ETDump: {etdump})")
    for column in ("op", "calls", "total ms", "share"):
        table.add_column(column, justify="left" if column == "op" else "right")
    for row in ops:
        table.add_row(row["op"], str(row["calls"]), f"{row['total_ms']:.2f}", f"{100 * row['share']:.1f}%")
    err.print(table)

