"""Fixtures for the profiling tests: a tiny exported ONNX artifact and its greedy tokens by the Python backend
(`require(tool)` is in tests/conftest.py)."""

import json
import os
import shutil
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prompt():
    return PROMPT


@pytest.fixture(scope="package")
def tiny_artifact(hf_checkpoint, tmp_path_factory) -> Path:
    from edgebit.exporters.onnx.export import export_onnx

    return export_onnx(hf_checkpoint("bitnet", "packed"), tmp_path_factory.mktemp("profile") / "tiny", 64, "fp32",
                       "edgebit")


PROMPT = [256, 10, 11, 12, 40, 41]


@pytest.fixture(scope="package")
def python_greedy(tiny_artifact):
    """greedy(n) -> the first n tokens the Python ONNX Runtime backend generates greedily after PROMPT."""
    from edgebit.backends.onnxruntime import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(tiny_artifact, json.loads((tiny_artifact / "manifest.json").read_text()), threads=1)
    token, out = int(backend.forward(PROMPT)[-1].argmax()), []
    for _ in range(16):
        out.append(token)
        token = int(backend.forward([token])[-1].argmax())
    return lambda n: out[:n]


@pytest.fixture(scope="package")
def tiny_pte(hf_checkpoint, tmp_path_factory) -> Path:
    """The same tiny checkpoint exported to ExecuTorch (XNNPACK for the float parts, as by default)."""
    from edgebit.exporters.executorch.export import export_executorch

    return export_executorch(hf_checkpoint("bitnet", "packed"), tmp_path_factory.mktemp("profile") / "tiny-pte", 64)


@pytest.fixture(scope="package")
def pte_greedy(tiny_pte):
    """greedy(n) -> the first n tokens the Python ExecuTorch backend generates greedily after PROMPT."""
    from edgebit.backends.executorch import ExecutorchBackend

    backend = ExecutorchBackend(tiny_pte, json.loads((tiny_pte / "manifest.json").read_text()), threads=1)
    token, out = int(backend.forward(PROMPT)[-1].argmax()), []
    for _ in range(16):
        out.append(token)
        token = int(backend.forward([token])[-1].argmax())
    return lambda n: out[:n]
