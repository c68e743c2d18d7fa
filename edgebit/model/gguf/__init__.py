"""GGUF files (llama.cpp's and bitnet.cpp's model format) as edgebit checkpoints, and the export back to GGUF.

reader.py    the container: header, metadata and tensor directory, every field checked before anything is allocated
ternary.py   TQ1_0 / TQ2_0 / I2_S (and ternary float) tensors -> edgebit's ternary codes [N, K] + one gamma
arch.py      GGUF metadata -> ModelConfig, GGUF tensor names <-> the HF names the loader uses
checkpoint.py  GgufCheckpoint: the Checkpoint interface over one GGUF file
vocab.py     the embedded tokenizer <-> tokenizer.json
view.py      a GGUF file as a checkpoint directory (tokenizer files beside it) for every command that takes MODEL
docs/weight-layout.md cites the upstream sources each rule comes from.
"""

from __future__ import annotations

from pathlib import Path

from edgebit.errors import CheckpointError


def gguf_source(root: Path) -> Path | None:
    """The GGUF file ROOT stands for: ROOT itself if it is a .gguf file, or the one .gguf file of a directory that
    has no config.json (a GGUF repo snapshot, or edgebit's view of a GGUF file: view.py); None otherwise.
    Imports nothing heavy: every MODEL path goes through it."""
    root = Path(root)
    if root.is_file() and root.suffix.lower() == ".gguf":
        return root
    if not root.is_dir() or (root / "config.json").exists():
        return None
    found = sorted(root.glob("*.gguf"))
    if len(found) > 1:
        names = ", ".join(p.name for p in found[:3])
        raise CheckpointError(f"{root}: {len(found)} GGUF files ({names}); give the one to read (split GGUF files "
                              "are not read: merge them with llama-gguf-split --merge)")
    return found[0] if found else None
