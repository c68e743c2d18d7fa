"""Run one export in a child process, so its peak memory goes back to the system when it ends.

A Python process keeps the heap an export grew (torch.export, ExecuTorch's lowering and torchao's quantization of
a 2B4T-shaped model each peak at several GB): exporting eight artifacts in the benchmark's own process piled those
peaks up until the runners it then starts were killed for memory. The child reports its steps and a one-line error
back through a queue."""

from __future__ import annotations

import multiprocessing
import queue as queue_lib
from pathlib import Path
from typing import Callable

from edgebit.errors import EdgebitError


def _child(q, target: str, checkpoint: str, output: str, kwargs: dict) -> None:
    import warnings

    from edgebit.exporters import targets

    warnings.simplefilter("ignore")  # torch.export / ExecuTorch deprecation chatter would tear the progress bar
    try:
        targets()[target](Path(checkpoint), Path(output), force=True, on_step=lambda what: q.put(("step", what)),
                          **kwargs)
    except EdgebitError as e:
        q.put(("error", str(e)))
        raise SystemExit(2)
    except BaseException as e:  # anything else: still one line back to the parent, which names the artifact
        q.put(("error", f"{type(e).__name__}: {e}"))
        raise SystemExit(1)
    q.put(("done", None))


def export_in_child(target: str, checkpoint: Path, output: Path, on_step: Callable[[str], None], **kwargs) -> None:
    """targets()[target](checkpoint, output, force=True, **kwargs) in a spawned process; raises EdgebitError with
    the child's message, or naming the signal that ended it."""
    ctx = multiprocessing.get_context("spawn")  # not fork: the parent may hold threads and a large heap
    q = ctx.Queue()
    proc = ctx.Process(target=_child, args=(q, target, str(checkpoint), str(output), kwargs), daemon=True)
    proc.start()
    error, dead_polls = None, 0
    while dead_polls < 2:  # a message sent just before the child ended is read on the poll after its death
        try:
            kind, value = q.get(timeout=0.5)
        except queue_lib.Empty:
            dead_polls += not proc.is_alive()
            continue
        if kind == "step":
            on_step(value)
        elif kind == "error":
            error = value
        else:
            break
    proc.join()
    if error is not None:
        raise EdgebitError(f"export to {output}: {error}")
    if proc.exitcode != 0:
        how = f"killed by signal {-proc.exitcode}" if proc.exitcode < 0 else f"exit code {proc.exitcode}"
        hint = " (out of memory? the kernel's OOM killer sends signal 9)" if proc.exitcode == -9 else ""
        raise EdgebitError(f"export to {output}: the export process ended with {how}{hint}")
