"""android_demo/test-on-jvm.sh: the Android app's EdgebitEngine and its JNI bridge, compiled for this machine and for
aarch64 and run on the host JVM and on Debian's arm64 JVM under qemu-aarch64 against the real engine (greedy text
equal to `edgebit run`, streaming, chat, cancellation, errors)."""

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "android_demo" / "test-on-jvm.sh"
# Checks the harness runs, on the host JVM and on the arm64 JVM under qemu: 2 bad-artifact checks, then per artifact
# (ONNX and .pte) load, 3 per prompt (2 prompts), 3 cancellation, 3 error, 1 chat and 1 close check; the same with one
# prompt for the ONNX artifact with a chat template.
MIN_CHECKS = 2 * (2 + 2 * (1 + 3 * 2 + 3 + 3 + 1 + 1) + (1 + 3 + 3 + 3 + 1 + 1))


def test_engine_on_the_jvm(tmp_path, require):
    for tool in ("javac", "java"):
        require(tool, "apt install default-jdk-headless")
    require("g++", "compiles the JNI bridge")
    require("aarch64-linux-gnu-g++", "cross-compiles the JNI bridge (apt install g++-aarch64-linux-gnu)")
    require("qemu-aarch64", "runs the arm64 JVM (apt install qemu-user)")
    # The `edgebit` command and python3 of this interpreter's environment.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "EDGEBIT_JVM_TEST_DIR": str(tmp_path / "jvm")}
    proc = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=1800)
    out = proc.stdout + proc.stderr
    summary = re.findall(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.M)
    assert proc.returncode == 0, f"test-on-jvm.sh exited {proc.returncode}:\n{out[-6000:]}"
    assert summary, f"no `N passed, N failed` line:\n{out[-6000:]}"
    passed, failed = map(int, summary[-1])
    assert failed == 0 and passed >= MIN_CHECKS, f"{passed} passed, {failed} failed (want >= {MIN_CHECKS}):\n{out[-6000:]}"
