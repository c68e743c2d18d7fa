from __future__ import annotations

from typing import Annotated

import typer

from edgebit.cli.options import ForceOpt, OutputOpt


def random_checkpoint(
    output: OutputOpt,
    preset: Annotated[str, typer.Option(help="Shape: 'tiny' (a few hundred KB) or '2b4t' (BitNet b1.58 2B4T, ~1.2 GB).")] = "tiny",
    family: Annotated[str, typer.Option(help="'bitnet' (ReLU^2, sub-norms) or 'llama-bitnet' (SiLU).")] = "bitnet",
    form: Annotated[str, typer.Option(help="'packed' (HF offline uint8 + weight_scale) or 'master' (bf16 weights).")] = "packed",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    force: ForceOpt = False,
) -> None:
    """Write an HF-format BitNet checkpoint with random weights (no download; its text is noise)."""
    from edgebit.cli.console import err, progress_bar
    from edgebit.model.synthetic import FAMILIES, FORMS, PRESETS, tensor_count, write_random_checkpoint

    for name, value, allowed in (("--preset", preset, PRESETS), ("--family", family, FAMILIES), ("--form", form, FORMS)):
        if value not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint=name)
    with progress_bar(f"writing {preset} checkpoint", tensor_count(preset, family, form)) as tick:
        path = write_random_checkpoint(output, preset, family, form, seed=seed, force=force, on_tensor=tick)
    err.print(f"wrote {path}", markup=False)
