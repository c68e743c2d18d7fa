from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgebit.cli.options import JsonOpt, RevisionOpt, resolve_model

app = typer.Typer(help="Benchmarks: figures and ratios against baselines measured in the same run.",
                  no_args_is_help=True)

CacheOpt = Annotated[Path, typer.Option(help="Where generated benchmark checkpoints are kept between runs.")]
BenchModelArg = Annotated[Optional[str], typer.Argument(
    help="Checkpoint dir or Hugging Face Hub id ORG/NAME; default: a generated 2B4T-shaped one.", show_default=False)]


def default_cache() -> Path:
    return Path.home() / ".cache" / "edgebit" / "bench"


@app.command("load")
def load(
    model: BenchModelArg = None,
    revision: RevisionOpt = None,
    cache_dir: CacheOpt = default_cache(),
    as_json: JsonOpt = False,
) -> None:
    """Peak memory and time of loading a checkpoint, against safetensors' load_file."""
    from edgebit.bench.load import measure
    from edgebit.cli.console import err, out, progress_bar

    if model is not None or revision is not None:
        model = resolve_model(model, revision)
    else:
        from edgebit.model.synthetic import tensor_count, write_random_checkpoint

        model = cache_dir / "2b4t-packed"
        if not (model / "model.safetensors").exists():
            cache_dir.mkdir(parents=True, exist_ok=True)
            with progress_bar("writing a 2B4T-shaped packed checkpoint", tensor_count("2b4t", "bitnet", "packed")) as tick:
                write_random_checkpoint(model, "2b4t", force=True, on_tensor=tick)
    rows = []
    for loader in ("edgebit", "safetensors"):
        with err.status(f"loading with {loader}"):
            rows.append(measure(model, loader))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"loading {model}"), title_justify="left")
    for col in ("loader", "seconds", "kept MB", "peak RSS added MB", "peak / kept"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["loader"], f"{r['seconds']:.2f}", f"{r['kept_bytes'] / 1e6:.0f}",
                      f"{r['peak_added_bytes'] / 1e6:.0f}", f"{r['peak_over_kept']:.2f}")
    out.print(table)
    ours, base = rows
    out.print(f"edgebit keeps {ours['kept_bytes'] / base['kept_bytes']:.2f}x the bytes of the stored checkpoint "
              f"(weights in kernel layout), at {ours['peak_added_bytes'] / base['peak_added_bytes']:.2f}x the peak "
              f"memory of reading it as stored; peak / kept = {ours['peak_over_kept']:.2f}")


SWEEP_NAMES = {"2b4t_all_ternary_matrices": "2B4T sweep", "2b4t_layer_from_cache": "2B4T layer, cache"}


@app.command("kernels")
def kernels(
    variant: Annotated[str, typer.Option(help="Kernel variant to force ('auto' = what this CPU gets).")] = "auto",
    sweep: Annotated[bool, typer.Option(help="Also run the decode sweep over a whole 2B4T-shaped model.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """edgebit's ternary kernels vs PyTorch fp32, ONNX Runtime MatMulInteger and MatMulNBits (2/4-bit)."""
    from edgebit.bench import kernels as kb
    from edgebit.cli.console import err, out
    from edgebit.ops import native

    if variant != "auto":
        if variant not in native.compiled_variants():
            raise typer.BadParameter(f"{variant!r} is not one of {', '.join(native.compiled_variants())}",
                                     param_hint="--variant")
        native.force_variant(variant)
    with err.status("measuring streaming read bandwidth"):
        bandwidth = kb.measure_bandwidth()
    rows = []
    with err.status("timing kernels and baselines") as status:
        def progress(row):
            rows.append(row)
            status.update(f"timing kernels and baselines ({len(rows)} rows done)")

        kb.bench_shapes(bandwidth_gbps=bandwidth, on_row=progress)
        if sweep:
            status.update("decode sweep over a 2B4T-shaped model's ternary matrices")
            kb.bench_decode_sweep(bandwidth_gbps=bandwidth, on_row=progress)
            status.update("the sweep's products from cache")
            kb.bench_from_cache(bandwidth_gbps=bandwidth, on_row=progress)
    if as_json:
        print(json.dumps([{**r.to_dict(), "stream_read_gbps": bandwidth} for r in rows], indent=2))
        return
    from rich.table import Table

    table = Table(title=f"ternary kernels ({native.variant()}), streaming read {bandwidth:.1f} GB/s (1 thread)",
                  title_justify="left")
    for col in ("[N, K]", "M", "thr", "ms", "GB/s", "of bw", "x fp32", "x int8", "x nbits2", "x nbits4"):
        table.add_column(col.replace("[", "\\["), justify="right")
    for r in rows:
        s = r.speedup_vs
        shape = SWEEP_NAMES.get(r.shape, r.shape) if isinstance(r.shape, str) else f"[{r.shape[0]}, {r.shape[1]}]"
        table.add_row(shape.replace("[", "\\["), str(r.m), str(r.threads), f"{r.seconds * 1e3:.3f}",
                      f"{r.weight_gbps:.1f}", f"{100 * r.bandwidth_fraction:.0f}%",
                      *(f"{s[b]:.2f}" if b in s else "-" for b in kb.BASELINES))
    out.print(table)
    out.print("x <baseline> = baseline time / edgebit time (above 1: edgebit is faster). Sweep baselines: "
              f"torch fp32 timed on {kb.FP32_SWEEP_LAYERS} of {kb.NUM_LAYERS} layers and scaled. '2B4T layer, "
              "cache': the sweep's calls on one layer's weights (in L3), 1 thread; about the sweep's GB/s means "
              "decode is bound by the kernel's operations, not by DRAM.")


@app.command("tokenizer")
def tokenizer(
    model: Annotated[Optional[str], typer.Argument(help="Checkpoint or artifact dir with a tokenizer.json, or "
                                                   "Hugging Face Hub id ORG/NAME; default: the shipped model.",
                                                   show_default=False)] = None,
    revision: RevisionOpt = None,
    megabytes: Annotated[float, typer.Option(min=0.01, max=100.0, help="Text to encode.")] = 2.0,
    as_json: JsonOpt = False,
) -> None:
    """Encode speed of the engine's C++ tokenizer against `tokenizers` on the same text (ids checked equal)."""
    from edgebit.bench.tokenizer import measure
    from edgebit.cli.console import err, out
    from edgebit.errors import EdgebitError

    path = resolve_model(model, revision) / "tokenizer.json"
    if not path.is_file():
        raise EdgebitError(f"{path}: not found (give a checkpoint or artifact dir with a tokenizer.json)")
    with err.status("encoding"):
        r = measure(path, megabytes)
    if as_json:
        print(json.dumps(r, indent=2))
        return
    out.print(f"{r['megabytes']:.1f} MB, {r['lines']} lines, {r['tokens']} tokens, line by line on one thread "
              f"({r['mismatched_lines']} lines with different ids)")
    out.print(f"edgebit C++   {r['edgebit_mb_per_s']:7.2f} MB/s  {r['edgebit_tokens_per_s'] / 1e6:6.2f} M tokens/s")
    out.print(f"tokenizers    {r['tokenizers_mb_per_s']:7.2f} MB/s  {r['tokenizers_tokens_per_s'] / 1e6:6.2f} M tokens/s")
    out.print(f"edgebit / tokenizers: {r['speedup_vs_tokenizers']:.2f}x line by line; "
              f"{r['whole_text_speedup_vs_tokenizers']:.2f}x as one text ({r['whole_text_edgebit_mb_per_s']:.2f} vs "
              f"{r['whole_text_tokenizers_mb_per_s']:.2f} MB/s)")


def _hidden(help_text: str):
    return typer.Option(help=help_text, hidden=True)


@app.command("decode")
def decode(
    model: BenchModelArg = None,
    revision: RevisionOpt = None,
    cache_dir: CacheOpt = default_cache(),
    runs: Annotated[int, typer.Option(min=1, help="Rounds: each round times every artifact and thread count "
                                                  "once (after a warm-up); rows are the medians.")] = 3,
    as_json: JsonOpt = False,
    preset: Annotated[str, _hidden("Shape of the generated checkpoint (tiny: for tests).")] = "2b4t",
    context: Annotated[str, typer.Option(help="Comma-separated prompt lengths, e.g. 128,1024,2048: each is "
                                              "prefilled, then decoded from (artifacts exported to fit each).")
                       ] = "128",
    gen_len: Annotated[int, _hidden("Generated tokens.")] = 64,
    threads: Annotated[str, _hidden("Comma-separated thread counts.")] = "1,2",
    heads: Annotated[str, typer.Option(help="Comma-separated heads: int8, fp32, q4 (q4: edgebit's artifacts only; "
                                            "they are then compared with the standard artifact's int8 head).")
                     ] = "int8,fp32",
    artifacts: Annotated[str, typer.Option(help="Comma-separated artifacts: onnx, pte (edgebit's, fp16 KV cache as "
                                                "exported by default), onnx-kv32, pte-kv32 (the same with the fp32 "
                                                "cache), onnx-kv8, pte-kv8 (the int8 cache), onnx-standard, "
                                                "pte-torchao (ratios need onnx-standard).")
                         ] = "onnx,onnx-standard,pte,pte-torchao",
) -> None:
    """Whole-model decode and prefill of the ONNX (edgebit op), ONNX standard-ops, .pte and torchao .pte
    artifacts by the native runner, against the memory roofline measured in the same run."""
    from edgebit.bench import decode as db
    from edgebit.cli.console import err, out, print_wide
    from edgebit.model.synthetic import PRESETS

    if preset not in PRESETS:
        raise typer.BadParameter(f"{preset!r} is not one of {', '.join(PRESETS)}", param_hint="--preset")
    thread_list, contexts = _int_list(threads, "--threads"), _int_list(context, "--context")
    if min(contexts) < 1:
        raise typer.BadParameter(f"{context!r}: prompt lengths must be >= 1", param_hint="--context")
    head_list = tuple(h for h in heads.split(","))
    if not thread_list or min(thread_list) < 1 or any(h not in db.HEADS for h in head_list):
        raise typer.BadParameter(f"thread counts >= 1, heads from {', '.join(db.HEADS)}", param_hint="--threads/--heads")
    names = tuple(a for a in artifacts.split(","))
    known = [name for name, _, _ in db.ARTIFACTS]
    if not names or any(a not in known for a in names):
        raise typer.BadParameter(f"{artifacts!r}: expected comma-separated names from {', '.join(known)}",
                                 param_hint="--artifacts")
    settings = db.Settings(prompt_len=contexts[0], contexts=contexts, gen_len=gen_len, threads=thread_list,
                           heads=head_list, runs=runs, artifacts=names)
    if model is not None or revision is not None:
        model = resolve_model(model, revision)
    rows = _run_decode_bench(db, model, cache_dir, settings, preset, err)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    print_wide(decode_table(rows, settings))
    out.print("roofline = streaming read bandwidth (same run, same thread count) / bytes a decoded token reads "
              "(weights as the artifact stores them + KV cache); x std = this artifact's tokens/s over the "
              "--ops standard (MatMulNBits bits=2) artifact's with the same head (int8 for a q4 row), context (ctx: prompt tokens) and threads; tok/s "
              "per GB/s = decode tokens/s over the 1-thread streaming bandwidth. model MB = the "
              "artifact's weight files; peak MB = the runner's peak RSS (VmHWM); peak/target = peak / (1.15 x (model "
              "+ KV cache at prompt + generated + 100 MB)), at most 1 is the target (docs/performance.md, memory).")


def _int_list(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected comma-separated integers", param_hint=option) from None
    if len(set(values)) != len(values):
        raise typer.BadParameter(f"{text!r}: a value is repeated", param_hint=option)
    return values


def _run_decode_bench(db, model, cache_dir, settings, preset, err) -> list[dict]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        overall = bar.add_task("bench decode", total=db.total_units(settings))

        def tensors(n: int):
            task = bar.add_task("  tensors", total=n)
            return lambda *_: bar.advance(task)

        progress = db.Progress(step=lambda what: bar.update(overall, description=what),
                               advance=lambda: bar.advance(overall), tensors=tensors)
        return db.run(model, cache_dir, settings, preset, progress)


def decode_table(rows: list[dict], settings):
    from rich.table import Table

    bw = {r["threads"]: r["stream_read_gbps"] for r in rows}
    prompts = ", ".join(str(c) for c in settings.contexts)
    title = (f"decode at prompt {prompts} + {settings.gen_len} generated; streaming read "
             + ", ".join(f"{g:.1f} GB/s ({t} thr)" for t, g in sorted(bw.items())))
    table = Table(title=title, title_justify="left")
    for col in ("artifact", "head", "ctx", "thr", "decode tok/s", "prefill tok/s", "MB/tok", "roofline tok/s",
                "of roofline", "tok/s per GB/s", "x std dec", "x std pre", "load ms", "model MB", "peak MB",
                "peak/target"):
        table.add_column(col, justify="left" if col in ("artifact", "head") else "right")

    def ratio(x):
        return "-" if x is None else f"{x:.2f}"

    for r in rows:
        table.add_row(r["artifact"], r["head"], str(r["prompt_tokens"]), str(r["threads"]), f"{r['decode_tokens_per_s']:.2f}",
                      f"{r['prefill_tokens_per_s']:.1f}", f"{r['bytes_per_token'] / 1e6:.1f}",
                      f"{r['roofline_tokens_per_s']:.1f}", f"{100 * r['roofline_fraction']:.0f}%",
                      f"{r['tokens_per_gbps']:.2f}", ratio(r["speedup_vs_standard_ops"]), ratio(r["prefill_speedup_vs_standard_ops"]),
                      "-" if r.get("load_ms") is None else f"{r['load_ms']:.0f}",
                      "-" if not r.get("model_bytes") else f"{r['model_bytes'] / 1e6:.0f}",
                      f"{r['peak_rss_bytes'] / 1e6:.0f}", ratio(r.get("peak_over_target")))
    return table
