"""Training text and its fixed train / held-out split.

The split is by blocks of lines, not a tail: every HELDOUT_EVERY-th block of BLOCK_LINES lines is held out,
so the held-out text samples every part of the corpus (a tail of the KJV would be Revelation alone) while
whole passages stay on one side, and the same input always gives the same split.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgebit.errors import EdgebitError

BLOCK_LINES = 100
HELDOUT_EVERY = 20  # 1 block in 20 (5%) is held out
KJV_RANGE = "Gen1:1-Rev22:21"
KJV_APT = "bible-kjv bible-kjv-text"
_VERSE_REF = re.compile(r"^[1-3]?[A-Za-z]+\d+:\d+\s+")  # "Ge1:1 ", "1Co13:4 "


@dataclass(frozen=True)
class Corpus:
    name: str
    train: list[str]  # lines
    heldout: list[str]


def kjv_lines() -> list[str]:
    """The King James Bible (public domain), a verse a line, from Debian's bible-kjv, verse references removed."""
    if shutil.which("bible") is None:
        raise EdgebitError(f"--corpus kjv needs the `bible` program: apt-get install {KJV_APT}")
    proc = subprocess.run(["bible", "-f", KJV_RANGE], capture_output=True, text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise EdgebitError(f"`bible -f {KJV_RANGE}` failed ({proc.stderr.strip() or 'no output'}); "
                           f"reinstall with: apt-get install --reinstall {KJV_APT}")
    return [_VERSE_REF.sub("", line).strip() for line in proc.stdout.splitlines() if line.strip()]


def file_lines(paths: list[Path]) -> list[str]:
    lines: list[str] = []
    for p in paths:
        try:
            text = Path(p).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise EdgebitError(f"{p}: corpus file not found") from None
        except UnicodeDecodeError:
            raise EdgebitError(f"{p}: corpus file is not UTF-8 text") from None
        lines += [line.strip() for line in text.splitlines() if line.strip()]
    return lines


def split(name: str, lines: list[str]) -> Corpus:
    if len(lines) < 2:
        raise EdgebitError(f"corpus {name}: needs at least 2 non-empty lines, got {len(lines)}")
    block = min(BLOCK_LINES, max(1, len(lines) // (2 * HELDOUT_EVERY)))  # small texts still get a held-out part
    train, heldout = [], []
    for start in range(0, len(lines), block):
        chunk = lines[start : start + block]
        (heldout if (start // block) % HELDOUT_EVERY == HELDOUT_EVERY - 1 else train).extend(chunk)
    if not heldout:  # fewer than HELDOUT_EVERY blocks: hold out the last block
        heldout = train[-block:]
        train = train[:-block]
    return Corpus(name, train, heldout)


def load_corpus(kind: str | None, paths: list[Path]) -> Corpus:
    if kind == "kjv":
        return split("kjv", kjv_lines())
    if kind is not None:
        raise EdgebitError(f"--corpus {kind!r}: the built-in corpus is 'kjv'; pass text files as arguments instead")
    if not paths:
        raise EdgebitError("no corpus: pass text files or --corpus kjv")
    return split(",".join(Path(p).name for p in paths), file_lines(paths))
