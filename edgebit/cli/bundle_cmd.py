from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgebit.cli.options import ForceOpt, OutputOpt


def bundle(
    output: OutputOpt,
    target: Annotated[str, typer.Option(help="host, aarch64-linux-gnu or android-arm64 (needs ANDROID_NDK and "
                                             "EDGEBIT_ORT_ANDROID_DIR).")] = "host",
    force: ForceOpt = False,
) -> None:
    """Build a device bundle: edgebit-runner, libedgebit_ort.so and the target's libonnxruntime.so (RPATH $ORIGIN)."""
    from edgebit.cli.console import err, out
    from edgebit.profile.bundle import write_bundle

    b = write_bundle(target, Path(output), force=force, log=lambda m: err.print(m))
    out.print(f"{b.path}: {b.target} bundle ({', '.join(sorted(p.name for p in b.path.iterdir()))})")
