"""Arguments and options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

# MODEL is a str, not a Path: a Hugging Face Hub id (ORG/NAME) is no path, and Path would normalise "a/b/" to it.
_MODEL_HELP = ("Checkpoint directory (config.json, *.safetensors, tokenizer.json), a GGUF file (TQ1_0, TQ2_0, I2_S), "
               "Hugging Face Hub id ORG/NAME (downloaded into the HF cache), or the name of a model edgebit ships "
               "(bitnet-kjv-small, bitnet-kjv-small-binary); an existing path wins")
ModelArg = Annotated[str, typer.Argument(help=_MODEL_HELP + ".", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for machines instead of tables.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace the output if it already exists.")]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Output directory (written atomically).")]
OptionalModelArg = Annotated[
    Optional[str], typer.Argument(help=_MODEL_HELP + "; default: the model edgebit ships.", show_default=False)]
RevisionOpt = Annotated[Optional[str], typer.Option(help="Branch, tag or commit hash of a Hub id MODEL "
                                                         "(default: main).", show_default=False)]
ArtifactArg = Annotated[Path, typer.Argument(help="Artifact directory made by `edgebit export`.", show_default=False)]
ThreadsOpt = Annotated[Optional[int], typer.Option(help="Threads for the runtime (default: the runtime's choice).",
                                                   min=1, max=256)]


def resolve_model(model: str | None, revision: str | None = None) -> Path:
    """MODEL's checkpoint directory (edgebit.api.resolve_model), with a download progress bar."""
    from edgebit.api import resolve_model as resolve
    from edgebit.cli.console import download_progress

    if model is None:
        return resolve(None, revision)
    with download_progress(f"downloading {model}") as on_progress:
        return resolve(model, revision, on_progress)

# Sampling options shared by `edgebit run` and `edgebit generate` (and spelled the same by edgebit-runner).
TopKOpt = Annotated[int, typer.Option(min=0, help="Sample among the k likeliest tokens (0 = off).")]
def positive(value: float) -> float:
    if not value > 0:
        raise typer.BadParameter(f"{value} is not > 0")
    return value


RepetitionPenaltyOpt = Annotated[float, typer.Option(callback=positive, help="Penalise ids already in the "
                                                     "prompt or output (1 = off; > 1 penalises; BitNet samples with 1.1).")]
