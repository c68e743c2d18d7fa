"""The engine's artifact check (runtime_ops/engine/artifact_check.cpp, sha256*.cpp) through bin/edgebit-runner: its
SHA-256 equals hashlib's on random files of many lengths (around the 55/56/63/64/65-byte padding edges, the 4 MiB
read size, several MiB) in every implementation this machine has (CPU SHA instructions, plain C++, and ARMv8 SHA2
under qemu-aarch64); the stamp cache hashes a file again exactly when it may have changed, even when its size and
mtime are put back; --verify off skips the hashes and nothing else."""

import hashlib
import json
import os
import shutil
import subprocess

import pytest

LENGTHS = [*range(0, 130), 191, 192, 193, 255, 256, 257, 1000, 4095, 4096, 4097, 65535, 65536, 65537,
           (4 << 20) - 1, 4 << 20, (4 << 20) + 1, (9 << 20) + 17]
BENCH = ("--prompt-ids", "1,2", "--gen-len", "1", "--runs", "1", "--warmup", "0", "--threads", "1")


def add_listed_files(art, lengths, seed=0):
    """Random files of the given lengths, listed in manifest.json with hashlib's sha256 (as an export lists them)."""
    rng = __import__("random").Random(seed)
    manifest = json.loads((art / "manifest.json").read_text())
    for n in lengths:
        data = rng.randbytes(n)
        (art / f"pad-{n}.bin").write_bytes(data)
        manifest["files"][f"pad-{n}.bin"] = hashlib.sha256(data).hexdigest()
    (art / "manifest.json").write_text(json.dumps(manifest))
    return manifest


@pytest.fixture(scope="module")
def padded_artifact(shipped_artifacts, tmp_path_factory):
    art = shutil.copytree(shipped_artifacts["onnx"], tmp_path_factory.mktemp("verify") / "art")
    return art, add_listed_files(art, LENGTHS)


def run(runner_path, art, tmp_path, *extra, env=None, prefix=()):
    env = {**os.environ, "EDGEBIT_CACHE_DIR": str(tmp_path / "cache"), **(env or {})}
    return subprocess.run([*prefix, str(runner_path), str(art), *BENCH, *extra], capture_output=True, text=True,
                          timeout=600, env=env)


def verify_report(result):
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)["verify"]


@pytest.mark.parametrize("implementation", ["default", "scalar"])
def test_sha256_equals_hashlib_on_many_lengths(padded_artifact, host_bundle, tmp_path, implementation):
    art, manifest = padded_artifact
    runner = host_bundle / "bin" / "edgebit-runner"
    env = {"EDGEBIT_SHA256": "scalar"} if implementation == "scalar" else {}
    report = verify_report(run(runner, art, tmp_path, "--verify", "full", "--json", env=env))
    assert report["hashed"] == report["files"] == len(manifest["files"])
    assert report["hashed_bytes"] == sum((art / name).stat().st_size for name in manifest["files"])
    if implementation == "scalar":
        assert report["sha256"] == "scalar"
    elif "sha_ni" in open("/proc/cpuinfo").read():
        assert report["sha256"] == "sha-ni"  # the accelerated path is the one under test here
    # One listed hash off by one digit, for a file at the padding edge: refused, naming that file.
    for name in ("pad-55.bin", "pad-64.bin", f"pad-{4 << 20}.bin"):
        bad = json.loads(json.dumps(manifest))
        bad["files"][name] = bad["files"][name][:-1] + ("0" if bad["files"][name][-1] != "0" else "1")
        broken = shutil.copytree(art, tmp_path / f"broken-{name}")
        (broken / "manifest.json").write_text(json.dumps(bad))
        r = run(runner, broken, tmp_path, "--verify", "full", env=env)
        assert r.returncode == 2 and f"{name}: contents differ from the sha256" in r.stderr, r.stderr


def test_sha256_armv8_under_qemu_equals_hashlib(padded_artifact, tmp_path, require, monkeypatch):
    require("qemu-aarch64", "qemu-user runs the aarch64 bundle")
    require("aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu builds it")
    from edgebit.profile.bundle import build_bundle
    from edgebit.profile.transports import open_transport

    art, manifest = padded_artifact
    bundle = build_bundle("aarch64-linux-gnu")
    qemu = open_transport("qemu")
    qemu.probe()
    monkeypatch.setenv("EDGEBIT_CACHE_DIR", str(tmp_path / "cache"))  # qemu-user hands the environment over
    for implementation in ("armv8-sha2", "scalar"):
        if implementation == "scalar":
            monkeypatch.setenv("EDGEBIT_SHA256", "scalar")
        r = qemu.run([str(bundle.runner), str(art), *BENCH, "--verify", "full", "--json"], 900)
        assert r.returncode == 0, r.stderr[-2000:]
        report = json.loads(r.stdout)["verify"]
        assert report["sha256"] == implementation and report["hashed"] == len(manifest["files"]), report


def test_stamp_skips_unchanged_files_and_catches_a_same_size_edit(shipped_artifacts, host_bundle, tmp_path):
    runner = host_bundle / "bin" / "edgebit-runner"
    art = shutil.copytree(shipped_artifacts["onnx"], tmp_path / "art")
    n = len(json.loads((art / "manifest.json").read_text())["files"])
    assert verify_report(run(runner, art, tmp_path, "--json"))["hashed"] == n  # first open: everything
    assert verify_report(run(runner, art, tmp_path, "--json"))["hashed"] == 0  # unchanged: nothing
    assert verify_report(run(runner, art, tmp_path, "--verify", "full", "--json"))["hashed"] == n

    # A same-size edit with the old mtime put back (what a careless copy tool or a bad sector rewrite leaves):
    # ctime still moves, so the file is hashed again and refused.
    model = art / "model.onnx"
    before = model.stat()
    data = bytearray(model.read_bytes())
    data[len(data) // 3] ^= 0x01
    model.write_bytes(bytes(data))
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert model.stat().st_size == before.st_size and model.stat().st_mtime_ns == before.st_mtime_ns
    r = run(runner, art, tmp_path)
    assert r.returncode == 2 and "model.onnx: contents differ from the sha256" in r.stderr, r.stderr

    # Put right again: only that file is hashed, and the open succeeds.
    data[len(data) // 3] ^= 0x01
    model.write_bytes(bytes(data))
    assert verify_report(run(runner, art, tmp_path, "--json"))["hashed"] == 1

    # One stamp per live artifact: a deleted artifact's stamp goes when the next stamp is written.
    other = shutil.copytree(art, tmp_path / "other")
    assert len(list((tmp_path / "cache" / "verified").glob("*.stamp"))) == 1
    shutil.rmtree(art)
    assert verify_report(run(runner, other, tmp_path, "--json"))["hashed"] == n
    stamps = list((tmp_path / "cache" / "verified").glob("*.stamp"))
    assert len(stamps) == 1 and str(other.resolve()) in stamps[0].read_text().splitlines()[0]


def test_verify_off_skips_hashes_but_not_presence_or_layout(shipped_artifacts, host_bundle, tmp_path):
    runner = host_bundle / "bin" / "edgebit-runner"
    art = shutil.copytree(shipped_artifacts["onnx"], tmp_path / "art")
    (art / "tokenizer_config.json").write_text("{}")  # a listed file the engine never reads, now different
    r = run(runner, art, tmp_path)
    assert r.returncode == 2 and "tokenizer_config.json: contents differ" in r.stderr, r.stderr
    report = verify_report(run(runner, art, tmp_path, "--no-verify", "--json"))
    assert report["mode"] == "off" and report["hashed"] == 0
    (art / "tokenizer_config.json").unlink()
    r = run(runner, art, tmp_path, "--verify", "off")
    assert r.returncode == 2 and "tokenizer_config.json: listed in manifest.json but missing" in r.stderr, r.stderr
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["layout_version"] = 99
    (art / "manifest.json").write_text(json.dumps(manifest))
    r = run(runner, art, tmp_path, "--no-verify")
    assert r.returncode == 2 and "layout v99" in r.stderr, r.stderr
    r = run(runner, art, tmp_path, "--verify", "sometimes")
    assert r.returncode == 1 and "--verify wants cached, full or off" in r.stderr, r.stderr
