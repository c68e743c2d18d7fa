"""The ONNX Runtime custom-op library libedgebit_ort.so (domain "edgebit", op BitLinear; schema in
docs/ops.md), built from runtime_ops/ort/ by `pip install` next to libedgebit_kernels.so."""

from __future__ import annotations

from pathlib import Path

from edgebit.errors import EdgebitError
from edgebit.ops.libpath import find_library

LIB_NAME = "libedgebit_ort.so"
DOMAIN = "edgebit"


class OrtLibraryError(EdgebitError):
    pass


def library_path() -> Path:
    """The installed library, or the one in $EDGEBIT_LIB_DIR (a developer's own CMake build)."""
    return find_library(LIB_NAME, (
        "the ONNX Runtime op library is built by `pip install .` only when the ONNX Runtime headers are found: "
        "run scripts/fetch_ort_headers.sh and reinstall (scripts/setup.sh does both), or point EDGEBIT_LIB_DIR "
        "at a build of runtime_ops/ that has it"))


def session_options(threads: int | None = None):
    """onnxruntime.SessionOptions with libedgebit_ort.so registered; threads sets intra_op_num_threads
    (the pool the edgebit kernels run on); None keeps ONNX Runtime's default."""
    import onnxruntime as ort

    path = library_path()
    options = ort.SessionOptions()
    if threads is not None:
        if threads < 1:
            raise OrtLibraryError(f"threads must be >= 1, got {threads}")
        options.intra_op_num_threads = threads
    options.register_custom_ops_library(str(path))
    return options
