"""Writing output directories so that a crash or a Ctrl-C never leaves a half-written one behind.

Everything is written into a sibling temp dir named `.<name>.partial-<pid>`; only a complete result is
renamed onto the destination. Leftovers of killed runs carry that name and are removed by the next run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from edgebit.errors import EdgebitError


def _clean_leftovers(dest: Path) -> None:
    stale_dirs = [*dest.parent.glob(f".{dest.name}.partial-*"), *dest.parent.glob(f".{dest.name}.old-*")]
    for stale in stale_dirs:
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
            continue  # another live run is writing it
        shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def atomic_output_dir(dest: str | Path, force: bool = False, option: str = "--output"):
    """Yields a fresh temp dir; on success it replaces `dest` in one rename (the old one, if `force`)."""
    dest = Path(dest)
    if dest.exists() and not force:
        raise EdgebitError(f"{dest}: already exists; pass --force to replace it ({option})")
    if not dest.parent.is_dir():
        raise EdgebitError(f"{dest.parent}: parent directory of {option} does not exist")
    _clean_leftovers(dest)
    tmp = dest.parent / f".{dest.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if dest.exists():
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)
