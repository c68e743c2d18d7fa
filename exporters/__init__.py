"""Export targets (onnx, executorch), installed as `edgebit.exporters`. Each target is one subpackage that
registers itself by name; the CLI's choices come from this registry."""

from __future__ import annotations

from typing import Callable

_TARGETS: dict[str, Callable] = {}


def register(name: str):
    def wrap(fn: Callable) -> Callable:
        _TARGETS[name] = fn
        return fn

    return wrap


def targets() -> dict[str, Callable]:
    """Every export target: each subpackage of this package registers itself when imported."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.ispkg:
            importlib.import_module(f"{__name__}.{info.name}")
    return dict(_TARGETS)
