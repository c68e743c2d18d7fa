"""The bounded CI fuzz pass: each libFuzzer target (kernel C API, ONNX Runtime op in a real session, ExecuTorch
kernel through ExecuTorch's registry) runs for EDGEBIT_FUZZ_SECONDS (default 40) under ASan+UBSan and must end
with no crash, no mismatch against the reference and a non-trivial number of executions. Without clang-14 this
skips locally and fails under CI; so does fuzz_et_op without the executorch wheel (build_fuzzers.sh fails under CI)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_fuzz_targets_bounded_pass(tmp_path_factory):
    build = Path(os.environ.get("EDGEBIT_FUZZ_BUILD", tmp_path_factory.mktemp("fuzz")))
    seconds = os.environ.get("EDGEBIT_FUZZ_SECONDS", "40")
    result = subprocess.run(["bash", str(REPO / "runtime_ops" / "fuzz" / "run_fuzzers.sh"), str(build), seconds, "",
                             sys.executable], capture_output=True, text=True, timeout=1200)
    if result.returncode == 3:
        if os.environ.get("CI") == "true":
            pytest.fail("clang-14 / libclang-rt-14-dev missing: CI must install them (scripts/setup.sh)\n" + result.stderr)
        pytest.skip("clang-14 / libclang-rt-14-dev not installed: " + result.stderr.strip())
    assert result.returncode == 0, result.stdout + result.stderr[-6000:]
    lines = dict(re.findall(r"^(\w+): (\d+) executions, 0 crashes$", result.stdout, re.M))
    skipped = re.findall(r"^(\w+): skipped \((.*)\)$", result.stdout, re.M)
    assert set(lines) | {target for target, _ in skipped} == {"fuzz_kernels", "fuzz_ort_op", "fuzz_et_op"}, result.stdout
    for target, runs in lines.items():
        assert int(runs) >= 500, (target, runs)  # it really ran (a few hundred per second even on a busy machine)
    if skipped:  # only fuzz_et_op, only without the executorch wheel, never under CI (the build fails there)
        assert [target for target, _ in skipped] == ["fuzz_et_op"] and os.environ.get("CI") != "true", result.stdout
        pytest.skip(f"fuzz_et_op: {skipped[0][1]}")
