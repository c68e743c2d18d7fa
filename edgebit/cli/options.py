"""Arguments and options shared by several commands, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ModelArg = Annotated[
    Path,
    typer.Argument(help="Checkpoint directory: config.json, *.safetensors (single or sharded), tokenizer.json.",
                   show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object for machines instead of tables.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Replace the output if it already exists.")]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="Output directory (written atomically).")]
