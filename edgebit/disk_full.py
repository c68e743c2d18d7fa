"""A full disk met while writing an output, as one line the user can act on. The writers underneath (ONNX's and
ExecuTorch's serializers, numpy, open().write) raise a bare OSError ENOSPC with no file name; the code that knows
which output it was writing (edgebit.atomic) turns it into an EdgebitError naming that output and its option."""

from __future__ import annotations

import errno
from pathlib import Path

from edgebit.errors import EdgebitError

# errno -> (what the user reads, what to do). EFBIG: a file-size limit (ulimit -f, RLIMIT_FSIZE), which ends a write
# the same way.
SPACE_ERRNOS = {errno.ENOSPC: ("no space left on the device", "free space, or choose another {option}"),
                errno.EDQUOT: ("disk quota exceeded", "free space, or choose another {option}"),
                errno.EFBIG: ("file too large for this process's file-size limit",
                              "raise the limit (ulimit -f unlimited)")}


def is_out_of_space(e: BaseException) -> bool:
    return isinstance(e, OSError) and e.errno in SPACE_ERRNOS


def out_of_space_error(e: OSError, dest: Path, option: str) -> EdgebitError:
    """The one line for `e` met while writing `dest` (given by `option`); nothing of it was kept."""
    what, remedy = SPACE_ERRNOS[e.errno]
    return EdgebitError(f"{dest}: {what} while writing it ({option}); nothing was written there and any previous "
                        f"{dest.name} is unchanged: {remedy.format(option=option)}")
