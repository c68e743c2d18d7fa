"""A full disk for a test: a small tmpfs mounted on a directory where this process may mount (root; CI runs as
root), else a file-size limit (RLIMIT_FSIZE) on the process under test, which ends its writes the same way (EFBIG
instead of ENOSPC, with SIGXFSZ ignored so the write fails rather than the signal killing the process)."""

import contextlib
import os
import resource
import signal
import subprocess
from pathlib import Path

# What the one-line error says for each: edgebit.disk_full's words for ENOSPC and EFBIG.
NO_SPACE = "no space left on the device"
SIZE_LIMIT = "file too large"


def mount_small(path: Path, size: str) -> bool:
    """Mounts a tmpfs of `size` (mount's units: "256k", "4m") on `path`, made here; False where not allowed."""
    path.mkdir(parents=True, exist_ok=True)
    return os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                                                capture_output=True).returncode == 0


def unmount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True)


def file_size_limit(nbytes: int):
    """A preexec_fn: files the child writes stop growing at `nbytes` (its writes fail with EFBIG)."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return apply


def fill(directory: Path) -> None:
    """Writes a filler file into `directory` until its filesystem refuses more: the next write there fails."""
    with open(directory / "filler", "wb", buffering=0) as f:  # unbuffered: nothing left to fail at close
        with contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 4096)


@contextlib.contextmanager
def full_disk(path: Path, size: str, limit_bytes: int):
    """Yields (preexec_fn or None, the words the error line uses): a small tmpfs at `path` (unmounted after), or,
    where mounting is not allowed, a plain directory and a file-size limit of `limit_bytes` for the child."""
    mounted = mount_small(path, size)
    try:
        yield (None, NO_SPACE) if mounted else (file_size_limit(limit_bytes), SIZE_LIMIT)
    finally:
        if mounted:
            unmount(path)
