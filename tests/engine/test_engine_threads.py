"""Many sessions in one process (issue 22): bin/edgebit-engine-stress runs four engines, each generating on its own
thread, while another thread cancels them at random moments and now and then closes one and opens it again (the
Android JNI bridge's locking); every generation must equal one engine's alone for the same prompt and seed (or be a
prefix of it when cancelled). Under ThreadSanitizer (no report) and AddressSanitizer/LeakSanitizer (no leak)."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from sanitizer_env import LSAN_ENV, TSAN_ENV


@pytest.fixture(scope="module")
def tiny_pte(chat_checkpoint, tmp_path_factory):
    from edgebit.exporters.executorch.export import export_executorch

    return export_executorch(chat_checkpoint, tmp_path_factory.mktemp("threads") / "pte", 64)


def stress(bundle: Path, art: Path, generations: int, env: dict) -> dict:
    proc = subprocess.run([str(bundle / "bin" / "edgebit-engine-stress"), str(art), "--engines", "4",
                           "--generations", str(generations)], capture_output=True, text=True, timeout=1800,
                          env={**os.environ, **env})
    reports = [l for l in proc.stderr.splitlines() if "Sanitizer" in l or "error" in l]
    assert proc.returncode == 0, f"exit {proc.returncode}: {reports[:5]}\n{proc.stderr[-4000:]}"
    return json.loads(proc.stdout)


def check(res: dict, generations: int) -> None:
    assert res["generations"] == generations and res["mismatches"] == 0, res
    # the chaos thread really interrupted work: cancels landed mid-generation and engines were reopened
    assert res["cancelled"] > generations // 50 and res["reopened"] >= 1, res


def test_four_engines_under_thread_sanitizer(thread_bundle, chat_artifact, tiny_pte):
    env = TSAN_ENV
    check(stress(thread_bundle, chat_artifact, 2000, env), 2000)
    check(stress(thread_bundle, tiny_pte, 300, env), 300)


def test_four_engines_under_leak_sanitizer(address_bundle, chat_artifact, tiny_pte):
    env = LSAN_ENV
    for art in (chat_artifact, tiny_pte):
        check(stress(address_bundle, art, 300, env), 300)
