"""kill -9 during `edgebit export onnx` at random moments: the destination is always either absent (a fresh
one) or a whole artifact whose every file matches manifest.json (an existing one: the old artifact or the new
one, never a mix); the only leftovers are `.<name>.partial-<pid>` / `.<name>.old-<pid>` next to it, and the next
export cleans them."""

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from edgebit.artifact import read_manifest

TRIALS = int(os.environ.get("EDGEBIT_KILL_TRIALS", "20"))


def export(ckpt, out, force=False):
    argv = [sys.executable, "-m", "edgebit", "export", "onnx", str(ckpt), "-o", str(out), "--max-seq-len", "32"]
    return subprocess.Popen(argv + (["--force"] if force else []), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=tempfile.gettempdir())


def whole(artifact) -> bool:
    read_manifest(artifact)  # every listed file present, every sha256 equal (raises otherwise)
    return True


def test_kill_9_export_at_random_moments(hf_checkpoint, tmp_path):
    ckpt = hf_checkpoint("bitnet", "packed")
    existing = tmp_path / "existing"
    t0 = time.monotonic()
    assert export(ckpt, existing).wait(timeout=300) == 0
    duration = time.monotonic() - t0
    rng = random.Random(11)
    outcomes = {"killed": 0, "finished": 0, "killed while writing": 0}
    for trial in range(TRIALS):
        # Odd trials replace an existing artifact (--force), even ones write a fresh destination.
        fresh = tmp_path / "fresh"
        dest, force = (existing, True) if trial % 2 else (fresh, False)
        proc = export(ckpt, dest, force)
        time.sleep(rng.uniform(0.05, duration * 1.1))  # anywhere from interpreter start to the final rename
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            outcomes["killed"] += 1
        else:
            outcomes["finished"] += 1
        proc.wait(timeout=60)
        partial = list(tmp_path.glob(f".{dest.name}.partial-{proc.pid}"))
        outcomes["killed while writing"] += bool(partial and any(partial[0].iterdir()))
        if force:
            assert whole(existing), f"trial {trial}: existing artifact damaged"
        else:
            assert not fresh.exists() or whole(fresh), f"trial {trial}: partial artifact at the destination"
            if fresh.exists():
                shutil.rmtree(fresh)  # so the next fresh trial starts from no destination again
        strays = [p.name for p in tmp_path.iterdir() if p.name != "existing"
                  and not p.name.startswith((".existing.partial-", ".existing.old-", ".fresh.partial-"))]
        assert not strays, strays
    print(f"{TRIALS} interrupted exports: {outcomes}, partial artifacts at a destination: 0")
    assert outcomes["killed"] >= TRIALS // 2  # the trials really interrupted exports
    # The next run at each destination cleans the leftovers of the killed ones.
    assert export(ckpt, existing, force=True).wait(timeout=300) == 0
    assert export(ckpt, tmp_path / "fresh").wait(timeout=300) == 0
    assert whole(existing) and whole(tmp_path / "fresh")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert not leftovers, leftovers
