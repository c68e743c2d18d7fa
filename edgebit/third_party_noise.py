"""Third-party messages that ExecuTorch work printed on the user's terminal, silenced where edgebit calls it.

`edgebit quickstart` (the README's first command) showed ~30 lines of them around its progress lines, each checked
here to be harmless for what edgebit does:
- torchao, which `executorch.exir` and ExecuTorch's pybindings import, logs "Failed to load ..." for its CUDA
  extensions (`_C_cutlass_90a`, `_C_mxfp8`) on a CPU build of torch, and torch's pytree module logs that torchao
  registers an Enum the old way;
- torch.export's tree specs warn, once per copied spec, that `isinstance(treespec, LeafSpec)` is deprecated
  (raised inside torch, not by anything edgebit calls);
- ExecuTorch's emitter warns that mutated buffers (the KV cache) are serialized without their initial contents.
  edgebit's program relies on exactly that: `edgebit::attention` reads only the positions up to each query's own,
  all written by `edgebit::cache_write` first (exporters/executorch/decoder.py). The torchao baseline, which reads
  its whole cache buffer masked, keeps the warning;
- ExecuTorch's threadpool, created when a method is loaded or its size reset, prints from C++ that it found no ARM
  MIDR registers on an x86 host or VM (`[cpuinfo_utils.cpp:...]`) and the size it was reset to.
Everything else (other warnings, log records at ERROR, errors, any other native output) still shows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
import warnings

NOISY_LOGGERS = ("torchao", "torch.utils._pytree")
NATIVE_PROBE_LINE = re.compile(r"^\[cpuinfo_utils\.cpp:\d+\] "
                               r"|^\[threadpool\.cpp:\d+\] Resetting threadpool to \d+ threads\.$")


@contextlib.contextmanager
def python_noise_silenced(mutated_buffers_ok: bool = False):
    """The Python-level messages above, for the duration of the block (loggers restored after)."""
    loggers = [logging.getLogger(name) for name in NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                                category=FutureWarning)
        if mutated_buffers_ok:
            warnings.filterwarnings("ignore", message=r"Mutation on a buffer in the model is detected",
                                    category=UserWarning)
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


@contextlib.contextmanager
def native_probe_lines_dropped():
    """File descriptor 2 routed through a pipe for the block: a thread forwards every line to the real stderr as it
    arrives, except ExecuTorch's cpuinfo probe lines and its threadpool-size notice (so a crash inside still shows
    what was printed before it)."""
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()

    def forward() -> None:
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not NATIVE_PROBE_LINE.match(line.decode("utf-8", errors="replace")):
                    os.write(saved, line)

    forwarder = threading.Thread(target=forward, name="edgebit-stderr-filter", daemon=True)
    forwarder.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end: the forwarder sees EOF
        forwarder.join()
        os.close(saved)
