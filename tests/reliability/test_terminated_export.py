"""SIGTERM during `edgebit export onnx` (a CI timeout, `kill`, a stop button), sent once the export is writing
its `.<name>.partial-<pid>` dir: edgebit unwinds and exits 143 within seconds, and, unlike after kill -9
(test_interrupted_export.py), nothing at all is left: no partial dir for the next run to clean, the destination
absent (a fresh one) or the previous artifact untouched (--force), nothing in TMPDIR."""

import signal
import time

import pytest
from edgebit_proc import finish, start, temp_leftovers


@pytest.mark.parametrize("force", [False, True], ids=["fresh", "force"])
def test_sigterm_mid_export_leaves_nothing(force, hf_checkpoint, tmp_path):
    ckpt = hf_checkpoint("bitnet", "packed")
    tmpdir, out = tmp_path / "tmpdir", tmp_path / "out"
    tmpdir.mkdir()
    out.mkdir()
    dest = out / "art"
    if force:
        dest.mkdir()
        (dest / "manifest.json").write_text('{"previous": true}\n')
    proc = start(["export", "onnx", ckpt, "-o", dest, "--max-seq-len", "64", *(["--force"] if force else [])],
                 env={"TMPDIR": str(tmpdir)})
    while proc.poll() is None and not list(out.glob(".art.partial-*")):
        time.sleep(0.002)
    assert proc.poll() is None, "the export ended before it was seen writing"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    r = finish(proc, timeout=60)
    elapsed = time.monotonic() - t0
    assert sorted(p.name for p in out.iterdir()) == (["art"] if force else []), list(out.iterdir())
    if force:
        assert [p.name for p in dest.iterdir()] == ["manifest.json"]
        assert (dest / "manifest.json").read_text() == '{"previous": true}\n'
    assert not temp_leftovers(tmpdir), temp_leftovers(tmpdir)
    assert r.returncode == 143, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    assert elapsed < 10
