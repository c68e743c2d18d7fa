"""A GGUF file as a checkpoint directory, so every command that takes MODEL (inspect, export, verify, bench) and
every helper that looks for tokenizer.json or a chat template beside the weights works on it unchanged.

The view is a small directory in edgebit's cache (EDGEBIT_CACHE_DIR, default ~/.cache/edgebit, under gguf/): a
symlink `model.gguf` to the file (the weights are never copied), and the tokenizer.json / tokenizer_config.json
(chat template, BOS/EOS) converted from the file's metadata. When the tokenizer cannot be converted, the reason is
kept in TOKENIZER_ERROR and reported by the commands that need text (edgebit/tokenizer.py). The directory is named
by the file's path, size, mtime and inode, so a changed file gets a fresh view; it is written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

VIEW_VERSION = 1
WEIGHTS = "model.gguf"
TOKENIZER_ERROR = "tokenizer.error"
SOURCE = "gguf_source.json"


def cache_root() -> Path:
    return Path(os.environ.get("EDGEBIT_CACHE_DIR") or Path.home() / ".cache" / "edgebit")


def gguf_view(path: Path) -> Path:
    """The checkpoint directory standing for GGUF file PATH (made on first use)."""
    from edgebit.atomic import atomic_output_dir
    from edgebit.errors import CheckpointError
    from edgebit.model.gguf.reader import GGUFFile

    real = Path(path).resolve()
    st = real.stat()
    key = hashlib.sha256(f"{VIEW_VERSION}\0{real}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}".encode()).hexdigest()
    dest = cache_root() / "gguf" / f"{real.stem[:48]}-{key[:16]}"
    if (dest / SOURCE).is_file() and (dest / WEIGHTS).resolve() == real:
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"{dest.parent}: cannot create the GGUF view of {real} ({e.strerror}); set "
                              "EDGEBIT_CACHE_DIR to a writable directory") from None
    with GGUFFile(real) as g, atomic_output_dir(dest, force=True) as tmp:
        (tmp / WEIGHTS).symlink_to(real)
        from edgebit.model.gguf.vocab import tokenizer_from_gguf

        try:
            text, config = tokenizer_from_gguf(g)
        except CheckpointError as e:
            (tmp / TOKENIZER_ERROR).write_text(str(e) + "\n", encoding="utf-8")
        else:
            (tmp / "tokenizer.json").write_text(text, encoding="utf-8")
            (tmp / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        (tmp / SOURCE).write_text(json.dumps({"path": str(real), "size": st.st_size}) + "\n", encoding="utf-8")
    return dest


def view_source(checkpoint_dir: Path) -> Path | None:
    """The GGUF file behind a view directory, None for any other directory."""
    try:
        return Path(json.loads((Path(checkpoint_dir) / SOURCE).read_text(encoding="utf-8"))["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
