"""Writing output directories so that a crash or a Ctrl-C never leaves a half-written one behind.

Everything is written into a sibling temp dir named `.<name>.partial-<pid>`; only a complete result is
renamed onto the destination. Replacing an existing destination is one atomic exchange of the two directories
(Linux renameat2 RENAME_EXCHANGE), so at every instant the destination is either the old result or the new one,
whole; where the exchange is unavailable, the old one is first renamed to `.<name>.old-<pid>`, and a run that
finds the destination missing next to such a leftover of a dead run puts it back instead of deleting it.
Leftovers of killed runs carry those names and are removed by the next run.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
from pathlib import Path

from edgebit.disk_full import is_out_of_space, out_of_space_error
from edgebit.errors import EdgebitError


def _dead_leftovers(dest: Path, kind: str) -> list[Path]:
    out = []
    for stale in dest.parent.glob(f".{dest.name}.{kind}-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and _alive(int(pid)) and int(pid) != os.getpid():
            continue  # another live run is writing it
        out.append(stale)
    return out


def _clean_leftovers(dest: Path) -> None:
    old = _dead_leftovers(dest, "old")
    if old and not dest.exists() and not dest.is_symlink():
        # Killed between moving the old result aside and moving the new one in: the old one is the result.
        os.replace(max(old, key=lambda p: p.stat().st_mtime), dest)
    for stale in [*_dead_leftovers(dest, "partial"), *_dead_leftovers(dest, "old")]:
        shutil.rmtree(stale, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (renameat2 RENAME_EXCHANGE); False where the OS or libc lacks it."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (38, 22, 95):  # ENOSYS, EINVAL, EOPNOTSUPP: no exchange on this kernel or filesystem
        return False
    raise OSError(errno, os.strerror(errno), str(b))


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
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_out_of_space(e):  # a full disk: one line naming this output, not a serializer's traceback
            raise out_of_space_error(e, dest, option) from None
        raise
    if dest.exists():
        if _exchange(tmp, dest):  # tmp now holds the old result
            shutil.rmtree(tmp, ignore_errors=True)
            return
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        os.replace(dest, old)
        os.replace(tmp, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, dest)


@contextlib.contextmanager
def atomic_output_file(dest: str | Path, force: bool = False, option: str = "--output"):
    """Yields a temp path beside DEST (`.<name>.partial-<pid>`); on success it is renamed onto DEST in one atomic
    rename (replacing an existing file only with `force`), so DEST is never a half-written file."""
    dest = Path(dest)
    if dest.is_dir():
        raise EdgebitError(f"{dest}: is a directory; {option} names the file to write")
    if dest.exists() and not force:
        raise EdgebitError(f"{dest}: already exists; pass --force to replace it ({option})")
    if not dest.parent.is_dir():
        raise EdgebitError(f"{dest.parent}: parent directory of {option} does not exist")
    for stale in _dead_leftovers(dest, "partial"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)
    tmp = dest.parent / f".{dest.name}.partial-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if is_out_of_space(e):
            raise out_of_space_error(e, dest, option) from None
        raise
    os.replace(tmp, dest)
