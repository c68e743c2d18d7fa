"""The `edgebit` command. Commands are thin: they parse options and call library functions, importing
the heavy libraries (torch, onnx, executorch) inside the command so `edgebit --help` stays instant."""

from __future__ import annotations

import os
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


def _print_error(message: str) -> None:
    # One line that names the file, tensor or option; exit code 2 like a usage error.
    from rich.markup import escape

    from edgebit.cli.console import err

    # escape: messages carry user paths and specs, and "[...]" in them is data, not rich markup.
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True, markup=True)


def main() -> None:
    from edgebit.cli.termination import EXIT_CODE, Terminated, unwind_on_sigterm
    from edgebit.disk_full import SPACE_ERRNOS
    from edgebit.errors import EdgebitError

    unwind_on_sigterm()
    try:
        app()
    except EdgebitError as e:
        _print_error(str(e))
        sys.exit(2)
    except OSError as e:
        if e.errno not in SPACE_ERRNOS:
            raise
        # A full disk outside the atomic writers (which name their output themselves): still one line.
        _print_error(f"{e.filename or 'writing a file'}: {SPACE_ERRNOS[e.errno][0]}; free space and rerun")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Terminated:
        # Everything was unwound (temp outputs removed, subprocesses killed); skipping the interpreter's teardown
        # (seconds with torch loaded) keeps the stop prompt, as SIGTERM's default action would be.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_CODE)
