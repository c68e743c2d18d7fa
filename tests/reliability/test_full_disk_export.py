"""A full disk in the middle of `edgebit export` (the serializers' writes fail): exit 2 and one line naming the
output and the full disk, not a serializer's traceback; the destination absent (a fresh one) or the previous
artifact untouched (--force), no `.partial` dir beside it, nothing left in TMPDIR."""

import pytest
from edgebit_proc import finish, start, temp_leftovers
from error_lines import one_error_line
from full_disk import full_disk

# (target, replace an existing artifact with --force). The ONNX export takes seconds and runs both ways; the
# ExecuTorch one takes half a minute and runs the --force way, which also checks what it must not damage.
CASES = [("onnx", False), ("onnx", True), ("executorch", True)]


@pytest.mark.parametrize("target,force", CASES, ids=[f"{t}-{'force' if f else 'fresh'}" for t, f in CASES])
def test_full_disk_during_export(target, force, hf_checkpoint, tmp_path):
    ckpt = hf_checkpoint("bitnet", "packed")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    disk = tmp_path / "disk"
    # 256 KiB: room for the previous artifact below, not for a new one (the tiny ONNX artifact is ~0.4 MB, the
    # .pte ~0.75 MB). Without mounting: a 64 KiB file-size limit, which the weights (0.25 MB, 0.67 MB) pass.
    with full_disk(disk, "256k", 64 << 10) as (preexec_fn, words):
        dest = disk / "art"
        if force:
            dest.mkdir()
            (dest / "manifest.json").write_text('{"previous": true}\n')
        args = ["export", target, ckpt, "-o", dest, "--max-seq-len", "64", *(["--force"] if force else [])]
        r = finish(start(args, env={"TMPDIR": str(tmpdir)}, preexec_fn=preexec_fn), timeout=600)
        one_error_line(r, f"{dest}: {words}", "--output")
        if force:
            assert [p.name for p in dest.iterdir()] == ["manifest.json"], list(dest.iterdir())
            assert (dest / "manifest.json").read_text() == '{"previous": true}\n'
        else:
            assert not dest.exists()
        assert sorted(p.name for p in disk.iterdir()) == (["art"] if force else []), list(disk.iterdir())
    assert not temp_leftovers(tmpdir), temp_leftovers(tmpdir)
