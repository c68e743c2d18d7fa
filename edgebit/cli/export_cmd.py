from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgebit.cli.options import ForceOpt, OptionalModelArg, OutputOpt, RevisionOpt, resolve_model

app = typer.Typer(help="Turn a checkpoint into an artifact whose ternary linears run on edgebit's kernels.",
                  no_args_is_help=True)

HeadOpt = Annotated[str, typer.Option(help="Embedding and LM head precision: fp32 or int8 (per-row).")]
SeqOpt = Annotated[Optional[int], typer.Option(help="Longest sequence (prompt + generated) the artifact serves; "
                                                    "default: the model's, capped at 4096.", min=1)]


@app.command("onnx")
def onnx(
    model: OptionalModelArg = None,
    output: OutputOpt = ...,
    revision: RevisionOpt = None,
    max_seq_len: SeqOpt = None,
    head: HeadOpt = "fp32",
    ops: Annotated[str, typer.Option(help="edgebit (our BitLinear op + library) or standard (ONNX Runtime's "
                                          "MatMulNBits bits=2, no library needed).")] = "edgebit",
    force: ForceOpt = False,
) -> None:
    """Export to ONNX: model.onnx + libedgebit_ort.so + tokenizer + genai_config.json + manifest.json."""
    from edgebit.cli.console import err
    from edgebit.exporters import targets

    for name, value, allowed in (("--head", head, ("fp32", "int8")), ("--ops", ops, ("edgebit", "standard"))):
        if value not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint=name)
    checkpoint = resolve_model(model, revision)
    with err.status("exporting") as status:
        path = targets()["onnx"](checkpoint, output, max_seq_len, head, ops, force,
                                 on_step=lambda what: status.update(f"exporting: {what}"))
    err.print(f"wrote {path}", markup=False)


@app.command("executorch")
def executorch(
    model: OptionalModelArg = None,
    output: OutputOpt = ...,
    revision: RevisionOpt = None,
    max_seq_len: SeqOpt = None,
    head: HeadOpt = "fp32",
    xnnpack: Annotated[bool, typer.Option("--xnnpack/--no-xnnpack", help="Delegate the head and the attention "
                                          "products to XNNPACK; the ternary linears stay on edgebit's kernel "
                                          "either way.")] = True,
    ops: Annotated[str, typer.Option(help="edgebit (our bitlinear op + kernel library) or torchao-8da4w "
                                          "(ExecuTorch's stock low-bit path: torchao int8-activation x int4-weight "
                                          "linears on XNNPACK, no library; the baseline).")] = "edgebit",
    force: ForceOpt = False,
) -> None:
    """Export to ExecuTorch: program.pte + libedgebit_executorch.so + tokenizer + manifest.json."""
    from edgebit.cli.console import err
    from edgebit.exporters import targets

    if head not in ("fp32", "int8"):
        raise typer.BadParameter(f"{head!r} is not one of fp32, int8", param_hint="--head")
    if ops not in ("edgebit", "torchao-8da4w"):
        raise typer.BadParameter(f"{ops!r} is not one of edgebit, torchao-8da4w", param_hint="--ops")
    if ops != "edgebit" and not xnnpack:
        raise typer.BadParameter("torchao-8da4w runs on XNNPACK; drop --no-xnnpack", param_hint="--ops")
    checkpoint = resolve_model(model, revision)
    with err.status("exporting") as status:
        path = targets()["executorch"](checkpoint, output, max_seq_len, head, xnnpack, force,
                                       on_step=lambda what: status.update(f"exporting: {what}"), ops=ops)
    err.print(f"wrote {path}", markup=False)


@app.command("gguf")
def gguf(
    model: OptionalModelArg = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .gguf file (written to a temp name and "
                                         "renamed when complete).")] = ...,
    revision: RevisionOpt = None,
    qtype: Annotated[str, typer.Option("--type", help="Ternary block type: tq2_0 (2.06 bits a weight) "
                                                      "or tq1_0 (1.69 bits).")] = "tq2_0",
    force: ForceOpt = False,
) -> None:
    """Export to GGUF for llama.cpp: ternary linears bit-exact, tokenizer and chat template carried."""
    from edgebit.cli.console import err
    from edgebit.exporters import targets

    if qtype not in ("tq2_0", "tq1_0"):
        raise typer.BadParameter(f"{qtype!r} is not one of tq2_0, tq1_0", param_hint="--type")
    checkpoint = resolve_model(model, revision)
    with err.status("exporting") as status:
        path = targets()["gguf"](checkpoint, output, qtype, force,
                                 on_step=lambda what: status.update(f"exporting: {what}"))
    err.print(f"wrote {path}", markup=False)
