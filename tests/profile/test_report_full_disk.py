"""A full disk when `edgebit profile` writes --json or --report, after the measurement: exit 2 and one line naming
the file and the full disk (not a traceback), the previous file untouched (never a truncated one), no temp file
left beside it."""

import os

import pytest
from edgebit_proc import finish, start
from error_lines import one_error_line
from full_disk import NO_SPACE, fill, mount_small, unmount

PREVIOUS = "the previous report\n"


@pytest.mark.parametrize("option,name", [("--json", "profile.json"), ("--report", "report.html")])
def test_full_disk_writing_the_report(option, name, tiny_artifact, tmp_path):
    disk = tmp_path / "disk"
    # A small tmpfs filled to its last block once the previous file is in. No file-size-limit fallback here: the
    # limit would reach the runner too (ONNX Runtime writes its own files), which would fail before the report.
    if not mount_small(disk, "64k"):
        if os.environ.get("CI") == "true":
            pytest.fail("mounting a tmpfs failed; CI runs as root")
        pytest.skip("needs root to mount a small tmpfs")
    try:
        out = disk / name
        out.write_text(PREVIOUS)
        fill(disk)
        r = finish(start(["profile", tiny_artifact, "--prompt-len", "4", "--gen-len", "4", "--runs", "1",
                          "--warmup", "0", "--threads", "1", option, out]), timeout=300)
        one_error_line(r, f"{out}: {NO_SPACE}", option)
        assert out.read_text() == PREVIOUS
        assert sorted(p.name for p in disk.iterdir()) == sorted([name, "filler"])
    finally:
        unmount(disk)
