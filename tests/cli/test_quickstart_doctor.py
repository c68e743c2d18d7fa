"""The README's main command, `edgebit quickstart`, on the shipped model: every step's output checked (both
artifacts verified, text from the native runner, a profile JSON with positive speeds and peak RSS from this machine
and from emulated aarch64, the HTML report); and `edgebit doctor` naming what is missing."""

import json
import os
import sys


def test_quickstart_runs_the_mission_end_to_end(cli, tmp_path, require):
    require("qemu-aarch64", "the emulated aarch64 profile")
    out = tmp_path / "qs"
    r = cli("quickstart", "-o", out, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = [line for line in r.stdout.splitlines() if line.startswith("ok ")]
    assert [line.split()[1] for line in lines] == ["export", "export", "verify", "verify", "native", "profile",
                                                  "profile", "report"], r.stdout
    assert all("PASS" in line for line in lines if line.startswith("ok verify")), r.stdout
    for kind in ("onnx", "pte"):
        assert json.loads((out / kind / "manifest.json").read_text())["ops"] == "edgebit"
    native = next(line for line in lines if line.startswith("ok native runner"))
    assert "And God said" in native and len(native.split('"')[1].split()) >= 8  # words, from the native runner
    rows = json.loads((out / "profile.json").read_text())
    assert {(os.path.basename(r["artifact"]), r["emulated"]) for r in rows} == {
        ("onnx", False), ("pte", False), ("onnx", True), ("pte", True)}
    assert all(r["decode_tokens_per_s"] > 0 and r["ttft_ms"] > 0 and r["peak_rss_bytes"] > 0 for r in rows)
    assert any("neon" in r["kernel_variant"] for r in rows if r["emulated"])
    html = (out / "report.html").read_text()
    assert "<table" in html and "emulated" in html.lower()
    assert r.stdout.strip().splitlines()[-1] == f"report: {out / 'report.html'}"
    # Third-party noise (edgebit/third_party_noise.py) no longer surrounds the progress lines.
    for noise in ("cpuinfo_utils", "Failed to load", "LeafSpec", "Mutation on a buffer", "Resetting threadpool"):
        assert noise not in r.stdout + r.stderr, (noise, r.stderr[-3000:])


def test_quickstart_names_the_failing_step(cli, tmp_path):
    """A model that cannot be exported stops at the first step, and the message says which."""
    r = cli("quickstart", tmp_path / "no-such-model", "-o", tmp_path / "qs")
    assert r.returncode == 2 and "no-such-model" in r.stderr, r.stderr


def _path_without(tmp_path, hidden: set[str]) -> str:
    """A PATH of symlinks to every command on the real PATH except `hidden`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            target = os.path.join(d, name)
            if name not in hidden and not (bin_dir / name).exists() and os.access(target, os.X_OK):
                (bin_dir / name).symlink_to(target)
    return str(bin_dir)


def test_doctor_names_a_missing_qemu_and_cross_compiler(tmp_path):
    import subprocess

    env = {**os.environ, "PATH": _path_without(tmp_path, {"qemu-aarch64", "aarch64-linux-gnu-g++"})}
    r = subprocess.run([sys.executable, "-m", "edgebit", "doctor", "--json"], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    found = {c["name"]: c for c in json.loads(r.stdout)}
    for name, fix in (("qemu-aarch64", "qemu-user"), ("aarch64 cross compiler", "g++-aarch64-linux-gnu")):
        assert not found[name]["ok"] and fix in found[name]["fix"], found[name]
    assert found["C++ compiler"]["ok"] and found["libedgebit_kernels.so"]["ok"]
    assert found["kernel variant for this CPU"]["detail"].split()[0] in ("avx2", "avx512vnni", "scalar")
    table = subprocess.run([sys.executable, "-m", "edgebit", "doctor"], capture_output=True, text=True, env={
        **env, "COLUMNS": "250"}, cwd=tmp_path, timeout=120).stdout
    assert "missing" in table and "apt-get install -y qemu-user" in table


def test_doctor_finds_them_when_present(require):
    require("qemu-aarch64", "doctor's qemu check")
    require("aarch64-linux-gnu-g++", "doctor's cross-compiler check")
    from edgebit.api import doctor

    found = {c.name: c for c in doctor()}
    assert found["qemu-aarch64"].ok and found["aarch64 cross compiler"].ok
