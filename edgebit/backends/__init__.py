"""Runtimes that execute an artifact behind one small interface (edgebit.backends.base.Backend), so `verify`
and `run` never depend on which runtime an artifact targets."""

from __future__ import annotations

from pathlib import Path

from edgebit.artifact import ArtifactError, read_manifest


def open_backend(artifact_dir: str | Path, threads: int | None = None, profile: bool = False):
    manifest = read_manifest(artifact_dir)
    target = manifest.get("target")
    if target == "onnx":
        from edgebit.backends.onnxruntime import OnnxRuntimeBackend

        return OnnxRuntimeBackend(Path(artifact_dir), manifest, threads)
    if target == "executorch":
        from edgebit.backends.executorch import ExecutorchBackend

        return ExecutorchBackend(Path(artifact_dir), manifest, threads, profile)
    raise ArtifactError(f"{Path(artifact_dir) / 'manifest.json'}: target {target!r} has no backend here "
                        "(known: onnx, executorch)")
