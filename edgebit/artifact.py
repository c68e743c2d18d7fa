"""Artifact directories (what `edgebit export` writes) and their manifest.json: what made the artifact, from
which checkpoint, with which weight layout and op library, and a hash of every file in it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from edgebit import __version__
from edgebit.errors import EdgebitError
from edgebit.quant.packing import LAYOUT_VERSION

MANIFEST = "manifest.json"
FORMAT = "edgebit-artifact"
FORMAT_VERSION = 1


class ArtifactError(EdgebitError):
    pass


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def checkpoint_fingerprint(checkpoint_dir: Path) -> dict:
    """The manifest's "source": path and file hashes, plus "hub" {repo_id, commit} when the checkpoint is a Hugging
    Face cache snapshot, so `edgebit verify` finds that commit again through the cache (edgebit.model.hub)."""
    from edgebit.model.hub import hub_origin

    from edgebit.model.gguf.view import view_source

    files = sorted(p for p in checkpoint_dir.iterdir()
                   if p.suffix in (".json", ".safetensors", ".gguf") and p.is_file())
    source = {"path": str(checkpoint_dir.resolve()), "sha256": {p.name: sha256_file(p) for p in files}}
    gguf = view_source(checkpoint_dir)
    if gguf is not None:  # the view lives in a cache; the GGUF file is what `verify` must find again
        source["gguf"] = str(gguf)
    hub = hub_origin(checkpoint_dir)
    return {**source, "hub": hub} if hub else source


def write_manifest(directory: Path, fields: dict) -> dict:
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "edgebit_version": __version__,
                "layout_version": LAYOUT_VERSION, **fields,
                "files": {p.name: sha256_file(p) for p in sorted(directory.iterdir()) if p.is_file()}}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def kv_cache(manifest: dict) -> dict:
    """The manifest's "kv_cache" with its defaults (an artifact from before it was recorded: the fp32 Concat form)."""
    return {"update": "concat", "dtype": "float32", **manifest.get("kv_cache", {})}


def reference_kv_dtype(manifest: dict) -> str:
    """What the artifact's cache rounds, as ReferenceModel's kv_dtype: an fp16 cache written by edgebit.Attention
    rounds its keys and values ("rounds": "kv"); one from before (GroupQueryAttention in fp16, no "rounds") also q
    and the attention output."""
    kv = kv_cache(manifest)
    if kv["dtype"] != "float16":
        return kv["dtype"]  # float32, or int8 (rows of codes and a scale: edgebit/quant/kv_int8.py)
    return "float16" if kv.get("rounds") == "kv" else "float16-qkvo"


def read_manifest(artifact_dir: str | Path, check_files: bool = True) -> dict:
    """The manifest, checked for format and layout versions and (CHECK_FILES) that every file it lists is there
    with its recorded hash; without CHECK_FILES it costs no read of the artifact's files."""
    path = Path(artifact_dir) / MANIFEST
    if not Path(artifact_dir).is_dir():
        raise ArtifactError(f"{artifact_dir}: not an edgebit artifact directory (made by `edgebit export`)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: missing; is {artifact_dir} an artifact made by `edgebit export`?") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ArtifactError(f"{path}: not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path}: not an edgebit artifact manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: artifact format v{manifest.get('format_version')}, this edgebit reads "
                            f"v{FORMAT_VERSION}; re-export the model with this version")
    if manifest.get("layout_version") != LAYOUT_VERSION:
        # v1 artifacts (K a multiple of 128, unpadded rows) come from an edgebit before layout v2 (docs/weight-layout.md).
        raise ArtifactError(f"{path}: packed weight layout v{manifest.get('layout_version')}, but this edgebit reads "
                            f"layout v{LAYOUT_VERSION} only; re-export the model with this version")
    if not isinstance(manifest.get("kv_cache", {}), dict) or kv_cache(manifest)["update"] not in ("in-place", "concat"):
        raise ArtifactError(f"{path}: 'kv_cache' 'update' must be \"in-place\" or \"concat\"")
    kv = kv_cache(manifest)
    if kv["dtype"] not in ("float32", "float16", "int8") or (kv["dtype"] != "float32" and kv["update"] != "in-place"):
        raise ArtifactError(f"{path}: 'kv_cache' 'dtype' must be \"float32\", or \"float16\" or \"int8\" with "
                            f"\"update\": \"in-place\"")
    if kv["dtype"] == "int8" and kv.get("row") != "int8-codes+f32-scale":
        raise ArtifactError(f"{path}: 'kv_cache' 'row' must be \"int8-codes+f32-scale\" for an int8 cache (the row "
                            f"format this edgebit reads), got {kv.get('row')!r}")
    if kv.get("rounds", "kv") != "kv":
        raise ArtifactError(f"{path}: 'kv_cache' 'rounds' must be \"kv\" (the keys and values rounded to fp16)")
    if not check_files:
        return manifest
    for name in manifest.get("files", {}):
        path = Path(artifact_dir) / name
        if path.is_file():
            continue
        if name == manifest.get("op_library"):
            how = ("executorch: ctypes.CDLL(path, os.RTLD_GLOBAL) before load_method"
                   if manifest.get("target") == "executorch" else
                   f"onnxruntime: SessionOptions.register_custom_ops_library('{path}')")
            raise ArtifactError(
                f"{path}: missing; the model needs this op library for its edgebit ops: re-export (manifest.json "
                f"records the library's sha256, so only the exported copy is accepted here; from your own code: {how})")
        raise ArtifactError(f"{path}: listed in {MANIFEST} but missing; re-export")
    check_hashes(Path(artifact_dir), manifest)
    return manifest


def check_hashes(artifact_dir: Path, manifest: dict) -> None:
    """Every file manifest.json lists must still hash as it did at export: a truncated copy, a half-finished
    transfer or a swapped model or library is refused here with its name instead of failing somewhere inside
    a runtime (or worse, running). Costs one read of the artifact (~1 s per GB)."""
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ArtifactError(f"{Path(artifact_dir) / MANIFEST}: 'files' must map file names to sha256 hashes")
    for name, digest in files.items():
        path = artifact_dir / name
        if Path(name).name != name or name == MANIFEST:
            raise ArtifactError(f"{artifact_dir / MANIFEST}: file entry {name!r} is not a plain file name")
        if sha256_file(path) != digest:
            raise ArtifactError(
                f"{path}: contents differ from the sha256 in {MANIFEST} ({path.stat().st_size} bytes; changed, "
                f"truncated or replaced after export): re-export the model, or copy the artifact again")
