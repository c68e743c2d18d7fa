"""`edgebit profile` over ssh against a real sshd this test starts on 127.0.0.1 (Debian's openssh-server, keys made
here), host-key checking, unreachable hosts, and adb's no-device path."""

import json
import os
import subprocess
import time
from pathlib import Path

import pytest



@pytest.fixture(scope="module")
def sshd(tmp_path_factory, ssh_server):
    """A root-run sshd on a free loopback port, its key pair for root and a client ssh_config that knows the host."""
    server = ssh_server(tmp_path_factory.mktemp("sshd"))
    server.start()
    yield {"dir": server.dir, "port": server.port, "user": os.environ.get("USER") or "root"}
    server.stop()


def test_ssh_profile_on_loopback_and_device_cache(sshd, tiny_artifact, python_greedy, cli, tmp_path, prompt):
    device = f"ssh://root@127.0.0.1:{sshd['port']}"
    args = ["profile", tiny_artifact, "--device", device, "--ssh-config", sshd["dir"] / "ssh_config",
            "--prompt-ids", ",".join(map(str, prompt)), "--gen-len", "8", "--runs", "1", "--threads", "1",
            "--json", tmp_path / "p.json", "--report", tmp_path / "p.html"]
    r = cli(*args, timeout=300)
    assert r.returncode == 0, r.stderr
    x = json.loads((tmp_path / "p.json").read_text())
    assert x["generated_ids"] == python_greedy(8) and x["device"] == device and not x["emulated"]
    # Pushed once, by content hash: the runner ran from the device-side cache ...
    cached = Path.home() / ".cache" / "edgebit-device"
    runner_dirs = [p for p in cached.iterdir() if (p / "bin" / "edgebit-runner").is_file() and (p / ".edgebit-complete").is_file()]
    assert runner_dirs
    # ... and a second run pushes nothing (scp would refresh the files' ctime).
    before = {p: p.stat().st_ctime_ns for p in cached.rglob("*") if p.is_file()}
    r = cli(*args, timeout=300)
    assert r.returncode == 0, r.stderr
    assert {p: p.stat().st_ctime_ns for p in before} == before


def test_ssh_unknown_host_key_is_an_error(sshd, tiny_artifact, cli):
    t0 = time.time()
    r = cli("profile", tiny_artifact, "--device", f"ssh://root@127.0.0.1:{sshd['port']}",
            "--ssh-config", sshd["dir"] / "ssh_config_unknown_host", timeout=60)
    assert r.returncode == 2 and "host key" in r.stderr and "--accept-new-host-key" in r.stderr
    assert time.time() - t0 < 30


def test_unreachable_ssh_hosts_fail_within_the_timeout(tiny_artifact, cli, require, unused_port):
    require("ssh", "openssh-client")
    closed = unused_port()
    for device in (f"ssh://nobody@127.0.0.1:{closed}", "ssh://nobody@10.255.255.1:22"):
        t0 = time.time()
        r = cli("profile", tiny_artifact, "--device", device, "--connect-timeout", "2", timeout=60)
        assert r.returncode == 2, (device, r.stderr)
        assert device in r.stderr and "connecting failed" in r.stderr, r.stderr
        assert time.time() - t0 < 30


def test_adb_without_a_device(tiny_artifact, cli, monkeypatch, require, unused_port):
    adb = require("adb", "Debian's adb package")
    port = str(unused_port())  # our own adb server, on its own port, stopped afterwards
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", port)
    try:
        t0 = time.time()
        r = cli("profile", tiny_artifact, "--device", "adb", timeout=90)
        assert r.returncode == 2 and "no Android device attached" in r.stderr, r.stderr
        r = cli("profile", tiny_artifact, "--device", "adb:emulator-5554", timeout=90)
        assert r.returncode == 2 and "no Android device attached" in r.stderr, r.stderr
        assert time.time() - t0 < 60
    finally:
        subprocess.run([adb, "-P", port, "kill-server"], capture_output=True, timeout=30)


def test_adb_missing_tool_message(tiny_artifact, cli, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no adb on PATH
    import sys
    r = subprocess.run([sys.executable, "-m", "edgebit", "profile", str(tiny_artifact), "--device", "adb"],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and "apt install adb" in r.stderr
