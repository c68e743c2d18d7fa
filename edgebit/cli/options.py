"""Arguments and options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

ModelArg = Annotated[
    Path,
    typer.Argument(help="Checkpoint directory: config.json, *.safetensors (single or sharded), tokenizer.json.",
                   show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for machines instead of tables.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace the output if it already exists.")]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Output directory (written atomically).")]
OptionalModelArg = Annotated[
    Optional[Path],
    typer.Argument(help="Checkpoint directory (config.json, *.safetensors, tokenizer.json); default: the model "
                        "edgebit ships.", show_default=False),
]
ArtifactArg = Annotated[Path, typer.Argument(help="Artifact directory made by `edgebit export`.", show_default=False)]
ThreadsOpt = Annotated[Optional[int], typer.Option(help="Threads for the runtime (default: the runtime's choice).",
                                                   min=1, max=256)]


def resolve_model(model: Path | None) -> Path:
    """MODEL as given, or the model this edgebit ships when none is given."""
    if model is not None:
        return model
    from edgebit.errors import EdgebitError

    try:
        from edgebit.model.shipped import default_model_path
    except ImportError:
        raise EdgebitError("MODEL: no checkpoint given and this edgebit ships no default model") from None
    return default_model_path()

# Sampling options shared by `edgebit run` and `edgebit generate` (and spelled the same by edgebit-runner).
TopKOpt = Annotated[int, typer.Option(min=0, help="Sample among the k likeliest tokens (0 = off).")]
def positive(value: float) -> float:
    if not value > 0:
        raise typer.BadParameter(f"{value} is not > 0")
    return value


RepetitionPenaltyOpt = Annotated[float, typer.Option(callback=positive, help="Penalise ids already in the "
                                                     "prompt or output (1 = off; > 1 penalises; BitNet samples with 1.1).")]
