"""What a Raspberry Pi owner meets, met on the emulated Pi of scripts/emulated-pi.sh: a library missing on the
device, a device whose glibc is older than the bundle's (Debian bullseye, as Raspberry Pi OS bullseye), a full
/tmp, and the connection dropped in the middle of a profile. Each: exit 2, one line naming what to install or change
on the device, and nothing left behind there (no torn copy, no runner still running)."""

import os
import subprocess
import sys
import tempfile
import time

import pytest

from edgebit.profile.bundle import build_bundle
from edgebit.profile.requirements import loader_message
from error_lines import one_error_line

LIBSTDCXX = "/usr/lib/aarch64-linux-gnu/libstdc++.so.6"


@pytest.fixture(scope="module")
def pi(emulated_pi):
    return emulated_pi("bookworm")


@pytest.fixture(scope="module")
def onnx_art(pi_artifacts):
    return pi_artifacts["onnx"]


def profile_args(art, device, pi, *extra):
    return ["profile", str(art), "--device", device, "--ssh-config", str(pi.ssh_config), "--threads", "1",
            "--prompt-len", "4", "--gen-len", "2", "--runs", "1", "--warmup", "0", "--connect-timeout", "10", *extra]


def test_missing_library_names_its_package(pi, onnx_art, cli):
    pi.sh(f"mv {LIBSTDCXX} {LIBSTDCXX}.away")
    try:
        r = cli(*profile_args(onnx_art, pi.device, pi), timeout=300)
        one_error_line(r, pi.device, "no libstdc++.so.6", "apt install libstdc++6")
        assert pi.sh("ls -A /root/.cache/edgebit-device 2>/dev/null; true").stdout == ""  # refused before a push
        # Should a device pass the check and still miss a library, the dynamic loader's own words get the same
        # answer: the bundle copied by hand, its runner started there.
        pi.scp(build_bundle("aarch64-linux-gnu").path, dest="/root/bundle")
        loader = pi.sh("bundle/bin/edgebit-runner --help", check=False)
        assert loader.returncode == 127 and "libstdc++.so.6" in loader.stderr, loader.stderr
        line = loader_message(pi.device, loader.stderr, "aarch64-linux-gnu")
        assert line and "apt install libstdc++6" in line and "\n" not in line
    finally:
        pi.sh(f"[ -e {LIBSTDCXX} ] || mv {LIBSTDCXX}.away {LIBSTDCXX}")


def test_older_glibc_than_the_bundle(emulated_pi, onnx_art, cli):
    old = emulated_pi("bullseye")
    assert old.sh("getconf GNU_LIBC_VERSION").stdout.strip() == "glibc 2.31"
    r = cli(*profile_args(onnx_art, old.device, old), timeout=600)
    one_error_line(r, old.device, "glibc is 2.31, older than the 2.36", "Debian 12 bookworm or newer")
    assert old.sh("ls -A /root/.cache/edgebit-device 2>/dev/null; true").stdout == ""
    # The dynamic loader agrees, in words put the same way: the runner copied by hand does not start there.
    old.scp(build_bundle("aarch64-linux-gnu").path, dest="/root/bundle")
    loader = old.sh("bundle/bin/edgebit-runner --help", check=False)
    assert loader.returncode != 0 and "GLIBC_2." in loader.stderr, loader.stderr
    line = loader_message(old.device, loader.stderr, "aarch64-linux-gnu")
    assert line and "upgrade the device to Raspberry Pi OS / Debian" in line, (line, loader.stderr)


def test_full_tmp_on_the_device(pi, onnx_art, cli):
    pi.sh("mount -t tmpfs -o size=16m tmpfs /tmp")  # the Pi's /tmp, 16 MB: smaller than the bundle
    try:
        r = cli(*profile_args(onnx_art, f"{pi.device}//tmp/edgebit", pi), timeout=300)
        line = one_error_line(r, pi.device, "/tmp/edgebit on the device has", "free space there",
                              f"ssh://root@127.0.0.1:{pi.port}//a/dir/with/space")
        assert "MB free and the push needs" in line and "(the bundle)" in line
        assert pi.sh("ls -A /tmp/edgebit").stdout == ""  # nothing half-copied
    finally:
        pi.sh("umount /tmp")


def cmdline(pid: int) -> list[bytes]:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except OSError:
        return []


def test_dropped_connection_leaves_nothing_running(pi, onnx_art, cli, process_tree):
    args = profile_args(onnx_art, pi.device, pi, "--runs", "100000")
    proc = subprocess.Popen([sys.executable, "-m", "edgebit", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tempfile.gettempdir(),
                            env={**os.environ, "COLUMNS": "200"})
    deadline = time.monotonic() + 180
    while not pi.runners() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
    assert pi.runners(), "the runner never started on the device"
    # The link goes: the device's per-connection sshd processes die (what a reset or a lost network does to them).
    sessions = [p for p in process_tree(pi.pid) if b"/usr/sbin/sshd" in cmdline(p) and b"-R" in cmdline(p)]
    assert sessions
    for p in sessions:
        try:
            os.kill(p, 9)
        except ProcessLookupError:  # a session's privilege-separated child goes with its monitor
            pass
    _, stderr = proc.communicate(timeout=120)
    one_error_line(subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr), pi.device,
                   "connection lost while running edgebit-runner", "network and power")
    deadline = time.monotonic() + 30
    while pi.runners() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not pi.runners(), "the runner outlived its connection"
