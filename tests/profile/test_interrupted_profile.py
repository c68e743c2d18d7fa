"""`edgebit profile` stopped (SIGTERM) or killed (SIGKILL) while the runner generates, on this machine and on a
device over a real loopback sshd: within seconds nothing is left behind. No runner, watchdog shell, ssh or scp
still running (on this machine or on the device: here they are the same machine, so a process whose command line
names the test's artifact or device dir is one of them), no half-written runtime profile file beside the bundle
(ONNX Runtime creates it when the runner loads and fills it at the end), no --json / --report / --op-profile output,
nothing in TMPDIR; SIGTERM exits 143. And SIGTERM during the push: no torn copy left on the device."""

import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from edgebit_proc import finish, processes_mentioning, start, temp_leftovers

from edgebit.profile.bundle import cache_root

SIGNALS = {"sigterm": (signal.SIGTERM, 143), "sigkill": (signal.SIGKILL, -signal.SIGKILL)}


@pytest.fixture
def server(tmp_path, ssh_server):
    (tmp_path / "sshd").mkdir()
    s = ssh_server(tmp_path / "sshd")
    s.start()
    yield s
    s.stop()


def wait_for(condition, timeout: float, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    return condition()


def still_there(listing, timeout: float) -> list:
    """listing() once it is empty, or after `timeout` seconds what it still lists."""
    deadline = time.monotonic() + timeout
    while (found := listing()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def runner_of(text: str) -> list[str]:
    return [c for c in processes_mentioning(text) if c.split(" ")[0].endswith("/edgebit-runner")]


def interrupted_profile(tmp_path, tiny_artifact, device_args, where: Path, sig) -> tuple:
    """Starts the profile, waits for the runner and its profile file under `where`, sends `sig`; returns
    (the finished process, its seconds from the signal to its exit, the artifact, the outputs dir, TMPDIR)."""
    art = shutil.copytree(tiny_artifact, tmp_path / f"faults-art-{os.getpid()}")  # a name no other test uses
    out, tmpdir = tmp_path / "out", tmp_path / "tmpdir"
    out.mkdir()
    tmpdir.mkdir()
    proc = start(["profile", art, *device_args, "--prompt-len", "4", "--gen-len", "4", "--runs", "100000",
                  "--threads", "1", "--json", out / "profile.json", "--report", out / "report.html",
                  "--op-profile", out / "ops"], env={"TMPDIR": str(tmpdir)})
    assert wait_for(lambda: runner_of(str(where)), 120, proc), f"no runner started: {finish(proc, 60).stderr}"
    assert wait_for(lambda: list(where.glob(f"*.profile-{art.name}-*")), 30, proc), "no runtime profile file"
    t0 = time.monotonic()
    proc.send_signal(sig)
    r = finish(proc, 60)
    return r, time.monotonic() - t0, art, out, tmpdir


def assert_nothing_left(r, seconds, texts, where: Path, art, out, tmpdir, expected_code):
    # The device side goes once the watchdog sees the connection (or this machine's edgebit) gone.
    assert not still_there(lambda: [c for t in texts for c in processes_mentioning(t)], 15)
    assert not still_there(lambda: list(where.glob(f"*.profile-{art.name}-*")), 15)
    assert sorted(p.name for p in out.iterdir()) == [], list(out.iterdir())
    assert not temp_leftovers(tmpdir), temp_leftovers(tmpdir)
    assert r.returncode == expected_code, (r.returncode, r.stderr[-2000:])
    assert "Traceback" not in r.stderr
    assert seconds < 10


@pytest.mark.parametrize("how", SIGNALS)
def test_profile_stopped_locally_leaves_nothing(how, tiny_artifact, tmp_path):
    sig, code = SIGNALS[how]
    bundles = cache_root() / "bundles"  # local runs use the cached bundle in place; its profile file goes beside it
    r, seconds, art, out, tmpdir = interrupted_profile(tmp_path, tiny_artifact, ["--device", "local"], bundles, sig)
    assert_nothing_left(r, seconds, [str(art)], bundles, art, out, tmpdir, code)


def ssh_args(server, base: Path) -> list[str]:
    return ["--device", f"ssh://root@127.0.0.1:{server.port}/{base}", "--ssh-config", str(server.dir / "ssh_config"),
            "--connect-timeout", "5"]


@pytest.mark.parametrize("how", SIGNALS)
def test_profile_stopped_over_ssh_leaves_nothing(how, server, tiny_artifact, tmp_path):
    sig, code = SIGNALS[how]
    base = tmp_path / "device"
    r, seconds, art, out, tmpdir = interrupted_profile(tmp_path, tiny_artifact, ssh_args(server, base), base, sig)
    assert_nothing_left(r, seconds, [str(art), str(base)], base, art, out, tmpdir, code)
    assert not list(base.glob("*.tmp"))


def test_sigterm_mid_push_leaves_no_torn_copy(server, tiny_artifact, tmp_path):
    base = tmp_path / "device"
    proc = start(["profile", tiny_artifact, *ssh_args(server, base), "--runs", "1"])
    assert wait_for(lambda: list(base.glob("*.tmp")), 120, proc), "scp never started writing the bundle"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    r = finish(proc, 60)
    seconds = time.monotonic() - t0
    assert not list(base.glob("*.tmp")), list(base.glob("*.tmp"))  # removed before edgebit exits
    assert not still_there(lambda: processes_mentioning(str(base)), 15)
    assert r.returncode == 143 and "Traceback" not in r.stderr, (r.returncode, r.stderr[-2000:])
    assert seconds < 15
