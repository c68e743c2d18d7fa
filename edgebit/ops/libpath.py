"""Where edgebit's compiled libraries are: installed next to the package by `pip install .` (edgebit/lib/),
or in $EDGEBIT_LIB_DIR for a developer's own CMake build of runtime_ops/."""

from __future__ import annotations

import os
from pathlib import Path

from edgebit.errors import EdgebitError


def find_library(name: str, how_to_build: str) -> Path:
    candidates = [Path(os.environ["EDGEBIT_LIB_DIR"]) / name] if os.environ.get("EDGEBIT_LIB_DIR") else []
    candidates.append(Path(__file__).resolve().parent.parent / "lib" / name)
    for path in candidates:
        if path.is_file():
            return path
    raise EdgebitError(f"{candidates[-1]}: missing; {how_to_build}")
