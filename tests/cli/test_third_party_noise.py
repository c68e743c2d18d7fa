"""What edgebit silences of ExecuTorch's, torch's and torchao's messages, and what it must not: ExecuTorch's native
probe lines are dropped while every other line written to file descriptor 2 still arrives (in order, a last line
without a newline too); the known Python warnings and log records are hidden only inside the block, other warnings
still show, and the loggers' levels come back. Run in a child process: the filter replaces fd 2 itself."""

import subprocess
import sys

CHILD = r"""
import logging, os, sys, warnings
from edgebit.third_party_noise import native_probe_lines_dropped, python_noise_silenced
with native_probe_lines_dropped():
    os.write(2, b"[cpuinfo_utils.cpp:71] Reading file /sys/devices/soc0/image_version\n")
    os.write(2, b"[threadpool.cpp:66] Failed to create the threadpool\n")
    os.write(2, b"[threadpool.cpp:66] Resetting threadpool to 2 threads.\n")
    print("python line", file=sys.stderr)
    os.write(2, b"last line, no newline")
os.write(2, b"|after\n")
logging.basicConfig(format="LOG %(name)s %(message)s")
torchao = logging.getLogger("torchao")
with python_noise_silenced(mutated_buffers_ok=True):
    torchao.warning("Failed to load _C_mxfp8.so")
    torchao.error("a real torchao error")
    warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning)
    warnings.warn("Mutation on a buffer in the model is detected. ExecuTorch assumes ...", UserWarning)
    warnings.warn("some other deprecation", FutureWarning)
with python_noise_silenced():
    warnings.warn("Mutation on a buffer in the model is detected (baseline)", UserWarning)
torchao.warning("outside the block")
print("level", torchao.level, file=sys.stderr)
"""


def test_noise_filters_drop_only_the_known_lines():
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    err = r.stderr
    assert "cpuinfo_utils" not in err and "Resetting threadpool" not in err, err
    kept = ["[threadpool.cpp:66] Failed to create the threadpool", "python line", "last line, no newline|after",
            "LOG torchao a real torchao error", "some other deprecation", "(baseline)", "LOG torchao outside the block",
            "level 0"]
    positions = [err.find(k) for k in kept]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), err
    assert "Failed to load" not in err and "LeafSpec" not in err and "ExecuTorch assumes" not in err, err
