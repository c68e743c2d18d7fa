"""The `edgebit` command. Commands are thin: they parse options and call library functions, importing
the heavy libraries (torch, onnx, executorch) inside the command so `edgebit --help` stays instant."""

from __future__ import annotations

import sys

import typer

from edgebit.cli import (bench_cmd, bundle_cmd, checkpoint_cmd, doctor_cmd, export_cmd, generate_cmd, inspect_cmd, perplexity_cmd,
                         profile_cmd, quickstart_cmd, run_cmd, soak_cmd, train_cmd, verify_cmd)

app = typer.Typer(
    name="edgebit",
    help="BitNet b1.58 (ternary) LLMs on phones and boards: inspect, export, verify, run and profile.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("quickstart")(quickstart_cmd.quickstart)
app.command("inspect")(inspect_cmd.inspect)
app.command("random-checkpoint")(checkpoint_cmd.random_checkpoint)
app.command("train")(train_cmd.train)
app.command("generate")(generate_cmd.generate)
app.command("perplexity")(perplexity_cmd.perplexity)
app.add_typer(export_cmd.app, name="export")
app.command("verify")(verify_cmd.verify)
app.command("run")(run_cmd.run)
app.add_typer(bench_cmd.app, name="bench")
app.command("soak")(soak_cmd.soak)
app.command("bundle")(bundle_cmd.bundle)
app.command("profile")(profile_cmd.profile)
app.command("doctor")(doctor_cmd.doctor)


def main() -> None:
    from edgebit.errors import EdgebitError

    try:
        app()
    except EdgebitError as e:
        # One line that names the file, tensor or option; exit code 2 like a usage error.
        from rich.markup import escape

        from edgebit.cli.console import err

        # escape: messages carry user paths and specs, and "[...]" in them is data, not rich markup.
        err.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True, markup=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
