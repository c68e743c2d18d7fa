from __future__ import annotations

from typing import Annotated

import typer

from edgebit.cli.options import ForceOpt, OptionalModelArg, RevisionOpt, resolve_model


def quickstart(
    model: OptionalModelArg = None,
    output: Annotated[str, typer.Option("--output", "-o", help="Directory for the artifacts, bundle and report.")]
    = "edgebit-quickstart",
    revision: RevisionOpt = None,
    force: ForceOpt = False,
) -> None:
    """The mission end to end on one model: export ONNX and .pte, verify both against the reference, generate
    text with the native runner, profile locally and on emulated aarch64, write the report."""
    from rich.markup import escape

    from edgebit.api import quickstart as run
    from edgebit.cli.console import err, out

    checkpoint = resolve_model(model, revision)
    with err.status("quickstart") as status:
        def on_step(step) -> None:
            out.print(f"[bold green]ok[/] {step.name:<21} {escape(step.summary)} [dim]({step.seconds:.1f} s)[/]",
                      soft_wrap=True)

        result = run(output, checkpoint, force=force, on_step=on_step,
                     on_progress=lambda what: status.update(f"quickstart: {escape(what)}"))
    out.print(f"report: {result.report}", markup=False)
