from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgebit.cli.options import ArtifactArg, JsonOpt, RevisionOpt, ThreadsOpt


def verify(
    artifact: ArtifactArg,
    model: Annotated[Optional[str], typer.Option(help="Source checkpoint dir or Hugging Face Hub id ORG/NAME "
                                                      "(default: the one in manifest.json; a Hub source is found "
                                                      "again at its commit through the HF cache).")] = None,
    revision: RevisionOpt = None,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Hold an artifact to the reference model: logit difference, top-1 agreement, perplexity. Exit 1 on failure."""
    from edgebit.api import verify as run_verify
    from edgebit.cli.console import download_progress, err, out
    from edgebit.verify import EXACT_BOUND, source_checkpoint

    with download_progress("downloading the source checkpoint") as on_progress:
        checkpoint = source_checkpoint(artifact, model, revision, on_progress)
    with err.status("verifying"):
        report = run_verify(artifact, model=checkpoint, threads=threads)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        t = report.thresholds
        same = f" computing the artifact's {report.head} head" if report.head_top1_agreement is not None else ""
        out.print(f"artifact   {report.artifact} ({report.backend})\nreference  {report.reference}{same}")
        out.print(f"max |logit diff|   {report.max_abs_diff:.3g}" + (f"  (limit {t['max_abs_diff']:g})" if t[
            "max_abs_diff"] else "") + f"; {100 * report.exact_fraction:.1f}% of positions exact to {EXACT_BOUND:g} "
            f"({report.flipped_sequences} of {report.prompts + 1} sequences with an int8 rounding flip)")
        out.print(f"top-1 agreement    {100 * report.top1_agreement:.2f}% over {report.positions_compared} positions"
                  f"  (limit {100 * t['top1_agreement']:g}%)")
        out.print(f"perplexity         reference {report.perplexity_reference:.4g}, artifact "
                  f"{report.perplexity_artifact:.4g} ({100 * report.perplexity_rel_diff:.3f}% apart, limit "
                  f"{100 * t['perplexity_rel_diff']:g}%)")
        if report.head_top1_agreement is not None:
            out.print(f"{report.head} head cost  against the fp32 head: top-1 agreement "
                      f"{100 * report.head_top1_agreement:.2f}%, perplexity {report.head_perplexity_fp32:.4g} -> "
                      f"{report.perplexity_reference:.4g} ({100 * report.head_perplexity_rel_diff:+.3f}%"
                      + (f", limit {100 * t['head_perplexity_rel_diff']:g}%)" if "head_perplexity_rel_diff" in t
                         else "; not judged: the model does not predict the text)"))
        out.print("[bold green]PASS[/]" if report.passed else "[bold red]FAIL[/]")
    _say_plausibility(report.plausibility, err)
    if not report.passed:
        raise typer.Exit(1)


def _say_plausibility(p: dict | None, err) -> None:
    """The checkpoint itself, not the artifact: a warning on stderr when it predicts no better than chance."""
    from rich.markup import escape

    from edgebit.plausibility import Plausibility

    if p is not None and not p["plausible"]:
        err.print(f"[bold yellow]warning:[/] {escape(Plausibility(**p).message())}", soft_wrap=True)
