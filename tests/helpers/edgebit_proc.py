"""The `edgebit` command started as a user starts it (from outside the source tree, so the installed package runs)
but as a process a test can signal, limit or watch, and what it leaves behind on this machine."""

import os
import subprocess
import sys
import tempfile
from pathlib import Path


def start(args, env: dict | None = None, preexec_fn=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgebit", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tempfile.gettempdir(),
                            env={**os.environ, "COLUMNS": "200", **(env or {})}, preexec_fn=preexec_fn)


def finish(proc: subprocess.Popen, timeout: float) -> subprocess.CompletedProcess:
    stdout, stderr = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def processes_mentioning(text: str) -> list[str]:
    """Command lines of every live process (zombies aside) whose command line contains `text`: a path unique to
    the test finds the runner, its watchdog shell, ssh and scp, even once they are orphans of a killed edgebit."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and text.encode() in cmdline and int(proc.name) != os.getpid():
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace").strip())
    return found


# onnxruntime writes $TMPDIR/.ses when imported (its telemetry session id) and keeps it: a finished run leaves it too.
RUNTIME_FILES = {".ses"}


def temp_leftovers(tmpdir: Path) -> list[str]:
    """What a run left in the TMPDIR it was given, beyond what any finished run leaves there."""
    return sorted(p.name for p in tmpdir.iterdir() if p.name not in RUNTIME_FILES)
