from __future__ import annotations

from typing import Annotated, Optional

import typer

from edgebit.cli.options import ForceOpt, OutputOpt


def random_checkpoint(
    output: OutputOpt,
    preset: Annotated[str, typer.Option(help="Shape: 'tiny' (a few hundred KB) or '2b4t' (BitNet b1.58 2B4T, ~1.2 GB).")] = "tiny",
    family: Annotated[str, typer.Option(help="'bitnet' (ReLU^2, sub-norms) or 'llama-bitnet' (SiLU).")] = "bitnet",
    form: Annotated[str, typer.Option(help="'packed' (uint8 + weight_scale), 'unpacked' (ternary values as floats + "
                                           "weight_scale) or 'master' (bf16 weights, ternarized at load).")] = "packed",
    linear_class: Annotated[Optional[str], typer.Option(help="quantization_config.linear_class: 'bitlinear' (divides by "
                                                        "weight_scale) or 'autobitlinear' (multiplies; default, as "
                                                        "microsoft/bitnet-b1.58-2B-4T).")] = None,
    mode: Annotated[Optional[str], typer.Option(help="quantization_config.quantization_mode: 'offline' (default for "
                                                "packed/unpacked) or 'online' (default for master).")] = None,
    use_rms_norm: Annotated[bool, typer.Option("--use-rms-norm", help="quantization_config.use_rms_norm: a norm "
                                               "inside every ternary linear.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    force: ForceOpt = False,
) -> None:
    """Write an HF-format BitNet checkpoint with random weights (no download; its text is noise)."""
    from edgebit.cli.console import err, progress_bar
    from edgebit.model.synthetic import (FAMILIES, FORMS, LINEAR_CLASSES, MODES, PRESETS, tensor_count,
                                         write_random_checkpoint)

    for name, value, allowed in (("--preset", preset, PRESETS), ("--family", family, FAMILIES), ("--form", form, FORMS),
                                 ("--linear-class", linear_class, LINEAR_CLASSES), ("--mode", mode, MODES)):
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint=name)
    quant = dict(linear_class=linear_class, mode=mode, use_rms_norm=use_rms_norm)
    with progress_bar(f"writing {preset} checkpoint", tensor_count(preset, family, form, **quant)) as tick:
        path = write_random_checkpoint(output, preset, family, form, seed=seed, force=force, on_tensor=tick, **quant)
    err.print(f"wrote {path}", markup=False)
