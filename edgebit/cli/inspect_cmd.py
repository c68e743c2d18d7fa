from __future__ import annotations

import json
from typing import Annotated

import typer

from edgebit.cli.options import JsonOpt, OptionalModelArg, RevisionOpt, resolve_model


def inspect(
    model: OptionalModelArg = None,
    revision: RevisionOpt = None,
    check: Annotated[bool, typer.Option("--check", help="Also run the model on a short shipped text and say whether "
                                        "it predicts better than chance and better than with its weight scales "
                                        "inverted (exit 1 if not): catches a checkpoint read wrongly.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a checkpoint's family, shapes, parameter counts, zero fractions, sizes and decode traffic."""
    model = resolve_model(model, revision)
    from edgebit.api import check_plausibility, inspect as run_inspect
    from edgebit.cli.console import err, out, progress_bar

    with progress_bar("reading ternary weights") as tick:
        result = run_inspect(model, on_layer=tick)
    if check:
        with err.status("running the model on the check text"):
            result.plausibility = check_plausibility(model)
    data = result.summary.to_dict()
    if result.plausibility is not None:
        data["plausibility"] = result.plausibility.to_dict()
    if as_json:
        print(json.dumps(data, indent=2))
    else:
        out.print(_tables(result.summary))
        if result.plausibility is not None:
            from rich.markup import escape

            style = "bold green" if result.plausibility.plausible else "bold red"
            out.print(f"[{style}]{escape(result.plausibility.message())}[/]", soft_wrap=True)
    if result.plausibility is not None and not result.plausibility.plausible:
        raise typer.Exit(1)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return str(n)


def _tables(s):
    from rich.console import Group
    from rich.markup import escape
    from rich.table import Table

    c = s.config
    head = Table(title=escape(str(s.path)), show_header=False, title_justify="left")
    rows = [
        ("family", f"{s.family} ({s.weight_form} weights)"),
        ("layers / hidden / ffn", f"{c['num_layers']} / {c['hidden_size']} / {c['intermediate_size']}"),
        ("heads / kv heads / head dim", f"{c['num_heads']} / {c['num_kv_heads']} / {c['head_dim']}"),
        ("vocab / tied head", f"{c['vocab_size']} / {c['tie_word_embeddings']}"),
        ("activation / sub-norms", f"{c['activation']} / {c['sub_norms']}"),
        ("ternary linears", s.quantization),
        ("parameters", f"{s.total_params:,} ({s.ternary_params:,} ternary, {s.float_params:,} float)"),
        ("zero weights", f"{100 * s.zero_fraction:.1f}%"),
        ("size at bf16", _size(s.bytes_bf16)),
        (f"size packed (2-bit ternary, layout v{s.layout_version})", _size(s.bytes_packed)),
        ("bytes read per decoded token", _size(s.bytes_per_token)),
        ("KV cache per position (fp32)", _size(s.kv_cache_bytes_per_position)),
    ]
    for k, v in rows:
        head.add_row(k, v)
    shapes = Table(title="ternary linears per layer", title_justify="left")
    shapes.add_column("linear")
    shapes.add_column("\\[out, in]", justify="right")
    for name, (n, k) in s.linear_shapes.items():
        shapes.add_row(name, f"[{n}, {k}]")
    zeros = Table(title="zero weights per layer", title_justify="left")
    zeros.add_column("layer", justify="right")
    zeros.add_column("all", justify="right")
    names = list(s.linear_shapes)
    for name in names:
        zeros.add_column(name.removesuffix("_proj"), justify="right")
    for layer in s.layers:
        zeros.add_row(str(layer.index), f"{100 * layer.zero_fraction:.1f}%",
                      *(f"{100 * layer.linear_zero_fraction[n]:.1f}%" for n in names))
    return Group(head, shapes, zeros)
