from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from edgebit.cli.options import JsonOpt

app = typer.Typer(help="Benchmarks: figures and ratios against baselines measured in the same run.",
                  no_args_is_help=True)

CacheOpt = Annotated[Path, typer.Option(help="Where generated benchmark checkpoints are kept between runs.")]


def default_cache() -> Path:
    return Path.home() / ".cache" / "edgebit" / "bench"


@app.command("load")
def load(
    model: Annotated[Optional[Path], typer.Argument(help="Checkpoint dir; default: a generated 2B4T-shaped one.",
                                                    show_default=False)] = None,
    cache_dir: CacheOpt = default_cache(),
    as_json: JsonOpt = False,
) -> None:
    """Peak memory and time of loading a checkpoint, against safetensors' load_file."""
    from edgebit.bench.load import measure
    from edgebit.cli.console import err, out, progress_bar

    if model is None:
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
    from rich.table import Table

    table = Table(title=f"loading {model}", title_justify="left")
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
