"""No shell injection through names a user controls: artifact paths with `$(...)`, `;`, quotes, spaces and a
newline profiled over local, qemu and ssh; a device cache dir with the same characters over ssh; prompts with
them in `edgebit run`. Each must work (or fail with a clear error) and the canary command must never run."""

import json
import os
import shutil
from pathlib import Path

import pytest

EVIL = "a b;$(touch {canary});`touch {canary}`;'q\"\nz"


@pytest.fixture
def evil_artifact(tiny_artifact, tmp_path):
    canary = tmp_path / "PWNED"
    return shutil.copytree(tiny_artifact, tmp_path / EVIL.format(canary=canary)), canary


def run_profile(cli, art, tmp_path, *device):
    r = cli("profile", art, *device, "--prompt-len", "4", "--gen-len", "3", "--runs", "1", "--warmup", "0",
            "--threads", "1", "--json", tmp_path / "p.json", timeout=600)
    assert r.returncode == 0, r.stderr
    return json.loads((tmp_path / "p.json").read_text())


def test_local_paths(evil_artifact, tmp_path, cli):
    art, canary = evil_artifact
    assert len(run_profile(cli, art, tmp_path, "--device", "local")["generated_ids"]) == 3
    assert not canary.exists()


def test_qemu_paths(evil_artifact, tmp_path, cli, require):
    require("qemu-aarch64", "qemu-user runs the aarch64 bundle")
    require("aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu builds it")
    art, canary = evil_artifact
    assert run_profile(cli, art, tmp_path, "--device", "qemu")["emulated"] is True
    assert not canary.exists()


def test_ssh_paths_and_device_dir(evil_artifact, tmp_path, cli, ssh_server):
    art, canary = evil_artifact
    (tmp_path / "sshd").mkdir()
    server = ssh_server(tmp_path / "sshd")
    server.start()
    try:
        remote_dir = tmp_path / "dev;$(touch {c}) `touch {c}` 'x\" y".format(c=canary)
        device = f"ssh://root@127.0.0.1:{server.port}/{remote_dir}"
        x = run_profile(cli, art, tmp_path, "--device", device, "--ssh-config", server.dir / "ssh_config")
        assert len(x["generated_ids"]) == 3 and remote_dir.is_dir()
        assert not canary.exists()
        # A newline cannot be part of a device spec: refused up front, nothing run.
        r = cli("profile", art, "--device", f"ssh://root@127.0.0.1:{server.port}/a\nb", timeout=60)
        assert r.returncode == 2 and "not an ssh device" in r.stderr
    finally:
        server.stop()


def test_prompts_are_data(tiny_artifact, tmp_path, cli):
    canary = tmp_path / "PWNED"
    canary_link = f"/tmp/pw{os.getpid() % 10000}"  # a short absolute name: the prompt must fit the tiny model
    (Path(canary_link)).symlink_to(canary)
    try:
        r = cli("run", tiny_artifact, "--prompt", EVIL.format(canary=canary_link), "--max-new-tokens", "2")
        assert r.returncode == 0, r.stderr
        assert not canary.exists()
    finally:
        Path(canary_link).unlink()
