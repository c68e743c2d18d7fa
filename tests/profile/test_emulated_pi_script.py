"""scripts/emulated-pi.sh itself: starting and stopping are idempotent, the instance's mounts never show in this
machine's mount table, stopping leaves binfmt_misc and the processes as they were before the start, and what is
missing (root, debootstrap, qemu-user-static) is one line naming the package, exit 2. A cache dir of the test's own
borrows the cached rootfs, so nothing is built twice."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "emulated-pi.sh"


def script(*args, env=None, **kw):
    return subprocess.run([shutil.which("bash"), str(SCRIPT), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, **kw)


def host_mounts() -> list[str]:
    """This machine's mount table, but binfmt_misc, which the start mounts if it must."""
    return [l for l in Path("/proc/self/mountinfo").read_text().splitlines() if "binfmt_misc" not in l]


def binfmt_state() -> tuple:
    d = Path("/proc/sys/fs/binfmt_misc")
    return tuple(sorted((p.name, p.read_text()) for p in d.iterdir() if p.name != "register")) if d.is_dir() else ()


@pytest.fixture
def cache(pi_rootfs, tmp_path):
    """A cache dir whose bookworm rootfs is the cached one (a symlink)."""
    (tmp_path / "emulated-pi").mkdir()
    (tmp_path / "emulated-pi" / "rootfs-bookworm-arm64").symlink_to(pi_rootfs)
    return tmp_path


def test_start_stop_are_idempotent_and_leave_nothing(cache):
    env = {"EDGEBIT_CACHE_DIR": str(cache)}
    binfmt, mounts = binfmt_state(), host_mounts()
    first = script("start", "--name", "lifecycle", env=env)
    info = dict(l.split("=", 1) for l in first.stdout.split())
    try:
        assert first.returncode == 0, first.stderr
        assert any("qemu-aarch64" in text and "flags: " in text and "F" in text.split("flags: ")[1].split()[0]
                   for _, text in binfmt_state())  # what runs the Pi's programs
        ssh = ["ssh", "-F", info["EDGEBIT_PI_SSH_CONFIG"], "127.0.0.1"]
        r = subprocess.run([*ssh, "uname -m; cat /proc/sys/kernel/arch; grep -c 'CPU part.*0xd0b' /proc/cpuinfo; "
                            "cat /sys/devices/system/cpu/possible; echo $QEMU_CPU"], capture_output=True, text=True,
                           timeout=60)
        assert r.stdout.split() == ["aarch64", "x86_64", "4", "0-3", "cortex-a76"], r.stderr
        assert host_mounts() == mounts  # its mounts live in its own namespace
        again = script("start", "--name", "lifecycle", env=env)
        assert again.returncode == 0 and again.stdout == first.stdout
        assert script("status", "--name", "lifecycle", env=env).stdout == first.stdout
    finally:
        for _ in range(2):  # the second stop finds nothing to stop: fine
            r = script("stop", "--name", "lifecycle", env=env)
            assert r.returncode == 0, r.stderr
    assert not Path(f"/proc/{info['EDGEBIT_PI_PID']}").exists()
    assert not (cache / "emulated-pi" / "instances" / "lifecycle").exists()
    assert binfmt_state() == binfmt and host_mounts() == mounts
    r = script("status", "--name", "lifecycle", env=env)
    assert r.returncode == 1 and "not running" in r.stderr


def one_line(r, *fragments):
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1, (r.returncode, r.stderr)
    for f in fragments:
        assert f in r.stderr, (f, r.stderr)


def test_what_is_missing_is_named(cache, tmp_path):
    # No debootstrap (a cache with no rootfs must build one): PATH holds just what runs before that question.
    bare = tmp_path / "bin"
    bare.mkdir()
    for tool in ("id", "mkdir", "flock"):
        (bare / tool).symlink_to(shutil.which(tool))
    one_line(script("build", env={"EDGEBIT_CACHE_DIR": str(tmp_path / "empty"), "PATH": str(bare)}),
             "debootstrap not found", "apt install debootstrap")
    one_line(script("start", "--name", "noqemu", env={"EDGEBIT_CACHE_DIR": str(cache),
                                                      "EDGEBIT_PI_QEMU": str(tmp_path / "qemu-aarch64-static")}),
             "apt install qemu-user-static")
    assert not (cache / "emulated-pi" / "instances" / "noqemu").exists()
    one_line(script("start", preexec_fn=lambda: (os.setgid(65534), os.setuid(65534))), "needs root")
    one_line(script("start", "--release", "jessie"), "--release jessie")
