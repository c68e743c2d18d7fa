"""The ExecuTorch kernel library libedgebit_executorch.so (edgebit::bitlinear.out and the rest; schemas in docs/ops.md),
built from runtime_ops/executorch/ by `pip install` next to libedgebit_kernels.so.

ExecuTorch's Python runtime and its LLM runner share ONE kernel registry, in the wheel's libexecutorch.so.
Loading our library (ctypes, RTLD_GLOBAL) registers the op there; do it before `load_method`. A second,
different copy registering the same op would abort the process, so this module loads at most one per
process and refuses a different file afterwards.
"""

from __future__ import annotations

import ctypes
import filecmp
import os
import threading
from pathlib import Path

from edgebit.errors import EdgebitError

LIB_NAME = "libedgebit_executorch.so"
OP_NAME = "edgebit::bitlinear.out"

_lock = threading.Lock()
_loaded: tuple[Path, ctypes.CDLL] | None = None


class ExecutorchLibraryError(EdgebitError):
    pass


def library_path() -> Path:
    """The installed library, or the one in $EDGEBIT_LIB_DIR (a developer's own CMake build)."""
    candidates = [Path(os.environ["EDGEBIT_LIB_DIR"]) / LIB_NAME] if os.environ.get("EDGEBIT_LIB_DIR") else []
    candidates.append(Path(__file__).resolve().parent.parent / "lib" / LIB_NAME)
    for path in candidates:
        if path.is_file():
            return path
    raise ExecutorchLibraryError(
        f"{candidates[-1]}: the ExecuTorch kernel library is missing; it is built by `pip install .` only when the "
        "executorch wheel is found (set EDGEBIT_EXECUTORCH_DIR to its package root and reinstall), or point "
        "EDGEBIT_LIB_DIR at a build of runtime_ops/ that has it")


def loaded_path() -> Path | None:
    return _loaded[0] if _loaded else None


def load(path: str | Path | None = None) -> Path:
    """Registers edgebit::bitlinear.out with ExecuTorch's runtime in this process; returns the file loaded.
    Loading the same file again, or an identical copy of it, is a no-op; a different one is an error."""
    global _loaded
    path = Path(path) if path is not None else library_path()
    if not path.is_file():
        raise ExecutorchLibraryError(f"{path}: missing; programs with edgebit::bitlinear need this ExecuTorch "
                                     "kernel library loaded before load_method")
    with _lock:
        if _loaded is not None:
            first = _loaded[0]
            if path.resolve() == first.resolve() or filecmp.cmp(path, first, shallow=False):
                return first
            raise ExecutorchLibraryError(
                f"{path}: a different {LIB_NAME} ({first}) is already loaded in this process; two copies would "
                f"register {OP_NAME} twice (ExecuTorch aborts on that). Use one build per process.")
        # The runtime first, so our library binds to the libexecutorch.so the Python runtime uses.
        import executorch.extension.pybindings.portable_lib  # noqa: F401

        from edgebit.ops.libpath import check_loadable

        check_loadable(path, "the ExecuTorch kernel library")
        try:
            handle = ctypes.CDLL(str(path.resolve()), mode=ctypes.RTLD_GLOBAL)
        except OSError as e:
            raise ExecutorchLibraryError(f"{path}: cannot be loaded: {e}") from None
        _loaded = (path, handle)
        return path
