from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from edgebit.api import Target
from edgebit.cli.options import ForceOpt, OutputOpt


def bundle(
    output: OutputOpt,
    target: Annotated[Target, typer.Option(help="What the bundle runs on (android-arm64 needs ANDROID_NDK and "
                                                "EDGEBIT_ORT_ANDROID_DIR).")] = Target.HOST,
    runtime: Annotated[list[str], typer.Option(help="onnxruntime and/or executorch (repeat or comma-separate).")] = [
        "onnxruntime,executorch"],
    force: ForceOpt = False,
) -> None:
    """Build a device bundle: bin/edgebit-runner and lib/ with the engine (libedgebit_engine.so), the op libraries
    and the target's ONNX Runtime and ExecuTorch libraries. Copy it to a device and run bin/edgebit-runner."""
    from edgebit.api import bundle as write_bundle
    from edgebit.cli.console import err, out

    names = [r.strip() for v in runtime for r in v.split(",") if r.strip()]
    b = write_bundle(Path(output), target, runtimes=names, force=force, log=lambda m: err.print(m))
    out.print(f"{b.path}: {b.target} bundle; on the device: {b.path.name}/bin/edgebit-runner ARTIFACT --prompt TEXT",
              markup=False)
    req = json.loads((b.path / "bundle.json").read_text()).get("requires")
    if req:
        packages = sorted({pkg for pkg, _ in req["libraries"].values() if pkg})
        out.print(f"the device needs glibc {req['glibc']} or newer and {', '.join(packages)} "
                  "(Raspberry Pi OS / Debian package names)", markup=False)
