"""The C++ kernel test program, run as runtime_ops/tests/run_kernel_tests.sh runs it: natively for every x86
variant, with UBSan, and cross-built for aarch64 under qemu-aarch64 on cortex-a53 (NEON), neoverse-n1
(dot-product) and max (i8mm). Every variant is held bit-exact to the scalar reference there."""

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_kernel_tests_pass_natively_and_under_qemu():
    build = Path(os.environ.get("EDGEBIT_KERNEL_TEST_BUILD", REPO / "build" / "kernel-tests"))
    result = subprocess.run(["bash", str(REPO / "runtime_ops" / "tests" / "run_kernel_tests.sh"), str(build)],
                            capture_output=True, text=True, timeout=1800)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    match = re.fullmatch(r"(\d+) passed, (\d+) failed", summary)
    assert match and int(match[1]) > 0 and match[2] == "0", summary
    if os.environ.get("CI") == "true":  # CI installs the cross tools: the ARM runs must have happened
        for cpu in ("cortex-a53", "neoverse-n1", "max"):
            assert cpu in result.stdout, f"no qemu run on {cpu}"
