"""Device faults over a real loopback sshd: the sshd stopped in the middle of a push, a changed host key, a full
disk on the device (a small tmpfs this test mounts, refused before the copy; a file-size limit where mounting is
not allowed, which only the copy finds), the runner crashing on the device; and the device-side cache, which is
reused only when its content hashes match, never half-written, and holds nothing group- or world-writable. Every
fault: exit 2, one line naming the device and what failed, within the timeout. The same device path against an
emulated Raspberry Pi: test_emulated_pi_faults.py."""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from edgebit_proc import start
from error_lines import one_error_line
from full_disk import mount_small, unmount


@pytest.fixture
def server(tmp_path, ssh_server):
    (tmp_path / "sshd").mkdir()
    s = ssh_server(tmp_path / "sshd")
    yield s
    s.stop()


def profile_args(art, server, base: Path, config="ssh_config", *extra):
    return ["profile", str(art), "--device", f"ssh://root@127.0.0.1:{server.port}/{base}", "--ssh-config",
            str(server.dir / config), "--prompt-len", "4", "--gen-len", "4", "--runs", "1", "--threads", "1",
            "--connect-timeout", "5", "--timeout", "120", *extra]


def sealed_dirs(base: Path) -> list[Path]:
    return [p for p in base.iterdir() if (p / ".edgebit-complete").is_file()] if base.is_dir() else []


def test_sshd_stopped_mid_push_then_recovers(server, tiny_artifact, tmp_path, cli):
    base = tmp_path / "device"
    server.start()
    t0 = time.monotonic()
    proc = start(profile_args(tiny_artifact, server, base))
    while proc.poll() is None and not list(base.glob("*.tmp")):  # scp has started writing the bundle
        time.sleep(0.002)
    server.stop()
    _, stderr = proc.communicate(timeout=120)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr)
    one_error_line(result, f"127.0.0.1:{server.port}")
    assert time.monotonic() - t0 < 60
    torn = [p for p in base.iterdir() if p.name.endswith(".tmp")]
    assert all(not (p / ".edgebit-complete").exists() for p in torn)  # a torn push is never marked complete
    server.start()  # the device comes back: the next profile pushes again and runs
    r = cli(*profile_args(tiny_artifact, server, base), timeout=300)
    assert r.returncode == 0, r.stderr
    assert not [p for p in base.iterdir() if p.name.endswith(".tmp")]


def test_changed_host_key_is_refused(server, tiny_artifact, tmp_path, cli):
    server.start()
    t0 = time.monotonic()
    r = cli(*profile_args(tiny_artifact, server, tmp_path / "device", "ssh_config_changed_host"), timeout=60)
    one_error_line(r, "host key", "changed")
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "device").exists()  # nothing was sent to the impostor


def small_filesystem(path: Path) -> str:
    """A 4 MiB tmpfs at `path` (the bundle is ~40 MB); where mounting is not allowed, a 4 MiB file-size limit on
    the sshd instead. Returns the sshd limits to apply."""
    return "" if mount_small(path, "4m") else "ulimit -f 4096"


def test_full_disk_on_the_device(server, tiny_artifact, tmp_path, cli):
    base = tmp_path / "small"
    limits = small_filesystem(base)
    try:
        server.start(limits)
        t0 = time.monotonic()
        r = cli(*profile_args(tiny_artifact, server, base), timeout=120)
        if limits:  # a file-size limit hides from df: scp finds it
            one_error_line(r, "scp of", "failed")
        else:  # a small filesystem: refused before anything is sent
            one_error_line(r, f"{base} on the device has", "MB free and the push needs", "free space there")
        assert time.monotonic() - t0 < 60
        assert not sealed_dirs(base) and not list(base.glob("*.tmp"))  # the torn copy was removed
    finally:
        unmount(base)


def test_runner_crashing_on_the_device(server, tiny_artifact, tmp_path, cli, process_tree):
    base = tmp_path / "device"
    server.start()
    proc = start(profile_args(tiny_artifact, server, base, "ssh_config", "--runs", "100000"))
    runner = None
    deadline = time.monotonic() + 120
    while runner is None and time.monotonic() < deadline and proc.poll() is None:
        for pid in process_tree(server.proc.pid):
            try:
                if b"edgebit-runner" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]:
                    runner = pid
            except OSError:
                pass
        time.sleep(0.05)
    assert runner, "the runner never started on the device"
    os.kill(runner, signal.SIGSEGV)  # what a crash in the runtime looks like from outside
    _, stderr = proc.communicate(timeout=60)
    one_error_line(subprocess.CompletedProcess(proc.args, proc.returncode, "", stderr), "edgebit-runner",
                   "killed by SIGSEGV")


def test_device_cache_is_checked_by_content_and_never_world_writable(server, tiny_artifact, tmp_path, cli):
    base = tmp_path / "device"
    art = shutil.copytree(tiny_artifact, tmp_path / "art")
    for p in art.iterdir():
        p.chmod(0o666)  # a sloppy local umask must not become world-writable files on the device
    server.start()
    r = cli(*profile_args(art, server, base), timeout=300)
    assert r.returncode == 0, r.stderr
    first = json.dumps(sorted(p.name for p in sealed_dirs(base)))
    bad = [str(p) for p in base.rglob("*") if p.stat().st_mode & 0o022 and not p.is_symlink()]
    assert not bad, bad
    # Corrupt one cached file, and tear another dir (marker gone): both are pushed again, not trusted.
    bundle = next(p for p in sealed_dirs(base) if (p / "bin" / "edgebit-runner").is_file())
    victim = bundle / "lib" / "libedgebit_ort.so"
    original = victim.read_bytes()
    victim.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    pushed_art = next(p for p in sealed_dirs(base) if (p / "manifest.json").is_file())
    (pushed_art / ".edgebit-complete").unlink()
    r = cli(*profile_args(art, server, base), timeout=300)
    assert r.returncode == 0, r.stderr
    assert victim.read_bytes() == original and (pushed_art / ".edgebit-complete").is_file()
    assert json.dumps(sorted(p.name for p in sealed_dirs(base))) == first
