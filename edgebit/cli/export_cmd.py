from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from edgebit.api import GgufType, Head, KvCache, OnnxOps, PteOps
from edgebit.cli.options import ForceOpt, OptionalModelArg, OutputOpt, RevisionOpt, resolve_model

app = typer.Typer(help="Turn a checkpoint into an artifact whose ternary linears run on edgebit's kernels.",
                  no_args_is_help=True)

HeadOpt = Annotated[Head, typer.Option(help="Embedding and LM head precision (int8: per row; q4: 4 bits in groups of 32, edgebit ops only).")]
SeqOpt = Annotated[Optional[int], typer.Option(help="Longest sequence (prompt + generated) the artifact serves; "
                                                    "default: the model's, capped at 4096.", min=1)]
KvCacheOpt = Annotated[Optional[KvCache], typer.Option(
    help="KV cache element type; default float16 with edgebit's ops (keys and values rounded to fp16 as written, "
         "attention in fp32: half the cache's bytes); int8 (edgebit's ops: each row int8 codes and a float32 scale, "
         "about a quarter of fp32's bytes, for long contexts); float32 with stock ops (which only allow float32).",
    show_default=False)]


@app.command("onnx")
def onnx(
    model: OptionalModelArg = None,
    output: OutputOpt = ...,
    revision: RevisionOpt = None,
    max_seq_len: SeqOpt = None,
    head: HeadOpt = Head.FP32,
    ops: Annotated[OnnxOps, typer.Option(help="edgebit (our BitLinear op + library) or standard (ONNX Runtime's "
                                              "MatMulNBits bits=2, no library needed).")] = OnnxOps.EDGEBIT,
    kv_cache: KvCacheOpt = None,
    force: ForceOpt = False,
) -> None:
    """Export to ONNX: model.onnx + libedgebit_ort.so + tokenizer + genai_config.json + manifest.json."""
    from edgebit.api import export_onnx
    from edgebit.cli.console import err

    checkpoint = resolve_model(model, revision)
    with err.status("exporting") as status:
        path = export_onnx(checkpoint, output, max_seq_len=max_seq_len, head=head, ops=ops, force=force,
                           on_step=lambda what: status.update(f"exporting: {what}"), kv_cache=kv_cache)
    _report(path)


@app.command("executorch")
def executorch(
    model: OptionalModelArg = None,
    output: OutputOpt = ...,
    revision: RevisionOpt = None,
    max_seq_len: SeqOpt = None,
    head: HeadOpt = Head.FP32,
    xnnpack: Annotated[bool, typer.Option("--xnnpack/--no-xnnpack", help="Delegate the head and the attention "
                                          "products to XNNPACK; the ternary linears stay on edgebit's kernel "
                                          "either way.")] = True,
    ops: Annotated[PteOps, typer.Option(help="edgebit (our bitlinear op + kernel library) or torchao-8da4w "
                                             "(ExecuTorch's stock low-bit path: torchao int8-activation x "
                                             "int4-weight linears on XNNPACK, no library; the baseline).")]
    = PteOps.EDGEBIT,
    kv_cache: KvCacheOpt = None,
    force: ForceOpt = False,
) -> None:
    """Export to ExecuTorch: program.pte + libedgebit_executorch.so + tokenizer + manifest.json."""
    from edgebit.api import export_executorch
    from edgebit.cli.console import err

    if ops is not PteOps.EDGEBIT and not xnnpack:
        raise typer.BadParameter("torchao-8da4w runs on XNNPACK; drop --no-xnnpack", param_hint="--ops")
    checkpoint = resolve_model(model, revision)
    with err.status("exporting") as status:
        path = export_executorch(checkpoint, output, max_seq_len=max_seq_len, head=head, xnnpack=xnnpack, ops=ops,
                                 force=force, on_step=lambda what: status.update(f"exporting: {what}"),
                                 kv_cache=kv_cache)
    _report(path)


def _report(path) -> None:
    """The artifact written, and each way a runner would read its tokenizer differently (exporters/tokenizer_compat)."""
    import json

    from rich.markup import escape

    from edgebit.cli.console import err

    err.print(f"wrote {path}", markup=False)
    for line in json.loads((path / "manifest.json").read_text()).get("tokenizer_warnings", []):
        err.print(f"[bold yellow]warning:[/] {escape(line)}", soft_wrap=True)


@app.command("gguf")
def gguf(
    model: OptionalModelArg = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .gguf file (written to a temp name and "
                                         "renamed when complete).")] = ...,
    revision: RevisionOpt = None,
    qtype: Annotated[GgufType, typer.Option("--type", help="Ternary block type: tq2_0 (2.06 bits a weight) or "
                                                           "tq1_0 (1.69 bits).")] = GgufType.TQ2_0,
    force: ForceOpt = False,
) -> None:
    """Export to GGUF for llama.cpp: ternary linears bit-exact, tokenizer and chat template carried."""
    from edgebit.api import export_gguf
    from edgebit.cli.console import err

    checkpoint = resolve_model(model, revision)
    with err.status("exporting") as status:
        path = export_gguf(checkpoint, output, qtype=qtype, force=force,
                           on_step=lambda what: status.update(f"exporting: {what}"))
    err.print(f"wrote {path}", markup=False)
