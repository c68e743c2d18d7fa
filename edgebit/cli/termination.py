"""SIGTERM (what `kill`, systemd, a CI timeout or an IDE's stop button send) unwinds the command like Ctrl-C instead
of ending the interpreter on the spot: `finally` and `except` blocks run, so a half-written output's temp dir is
removed (edgebit.atomic), and a subprocess being waited for (the runner, ssh, scp) is killed by subprocess.run's
own cleanup rather than left running. The CLI then exits 143 (128 + SIGTERM), the shell's code for it."""

from __future__ import annotations

import signal

EXIT_CODE = 128 + signal.SIGTERM


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM. A BaseException, like KeyboardInterrupt: `except Exception` handlers
    that turn errors into messages must not swallow it."""


def _raise_terminated(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM during the cleanup ends the process at once
    raise Terminated()


def unwind_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, _raise_terminated)
