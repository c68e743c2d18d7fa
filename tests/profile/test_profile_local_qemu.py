"""`edgebit profile` end to end on this machine and under qemu-aarch64 on a tiny exported model: the native
runner's greedy tokens equal the Python backend's, the JSON carries the promised keys, the HTML report is
self-contained and has the plot; bundles and their errors."""

import json
import re
import subprocess


KEYS = {"runtime", "runtime_version", "kernel_variant", "cpu_features", "threads", "load_ms", "ttft_ms",
        "prefill_tokens_per_s", "decode_tokens_per_s", "token_latency_ms", "peak_rss_bytes", "rss_after_load_bytes",
        "artifact_bytes", "generated_ids"}


def profile_args(art, tmp_path, prompt, *extra):
    return ["profile", art, "--prompt-ids", ",".join(map(str, prompt)), "--json", tmp_path / "p.json",
            "--report", tmp_path / "p.html", *extra]


def test_local_profile_two_thread_counts(tiny_artifact, python_greedy, cli, tmp_path, prompt):
    r = cli(*profile_args(tiny_artifact, tmp_path, prompt, "--gen-len", "10", "--runs", "2", "--threads", "1,2"))
    assert r.returncode == 0, r.stderr
    results = json.loads((tmp_path / "p.json").read_text())
    assert [x["threads"] for x in results] == [1, 2]
    for x in results:
        assert KEYS <= set(x), KEYS - set(x)
        assert x["generated_ids"] == python_greedy(10)
        assert x["runtime"] == "onnxruntime" and x["runtime_version"] == "1.31.1"
        assert x["kernel_variant"] in x["cpu_features"] and not x["emulated"]
        assert x["decode_tokens_per_s"] > 0 and x["ttft_ms"] > 0 and x["prompt_tokens"] == len(prompt)
        assert x["peak_rss_bytes"] >= x["rss_after_load_bytes"] > 0
        assert x["artifact_bytes"] == sum(p.stat().st_size for p in tiny_artifact.iterdir() if p.is_file())
        assert len(x["token_latencies_ms"]) == 9
        lat = x["token_latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["max"]
    assert "decode" in r.stdout and "1 threads" in r.stdout and "2 threads" in r.stdout
    page = (tmp_path / "p.html").read_text()
    assert page.count("<polyline") == 2 and "<svg" in page and "peak RSS" in page and "Emulation" not in page
    assert not re.search(r"<script|<link|src=|@import|https?://(?!www\.w3\.org/2000/svg)", page)


def test_random_prompt_and_ort_profile(tiny_artifact, cli, tmp_path):
    r = cli("profile", tiny_artifact, "--prompt-len", "5", "--gen-len", "3", "--runs", "1", "--threads", "1",
            "--seed", "7", "--json", tmp_path / "p.json", "--ort-profile", tmp_path / "ort")
    assert r.returncode == 0, r.stderr
    x = json.loads((tmp_path / "p.json").read_text())
    assert len(x["prompt_ids"]) == 5 and x["seed"] == 7 and len(x["generated_ids"]) == 3
    events = json.loads(open(x["ort_profile_file"]).read())
    assert any(e.get("args", {}).get("op_name") == "BitLinear" for e in events)


def test_qemu_profile_runs_the_aarch64_bundle(tiny_artifact, python_greedy, cli, tmp_path, require, prompt):
    require("qemu-aarch64", "qemu-user runs the aarch64 bundle")
    require("aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu builds it")
    r = cli(*profile_args(tiny_artifact, tmp_path, prompt, "--device", "qemu", "--gen-len", "6", "--runs", "1",
                          "--warmup", "0", "--threads", "2"))
    assert r.returncode == 0, r.stderr
    x = json.loads((tmp_path / "p.json").read_text())
    assert x["generated_ids"] == python_greedy(6)
    assert x["arch"] == "aarch64" and x["kernel_variant"].startswith("neon") and x["emulated"] is True
    assert "EMULATION" in r.stdout
    assert "Emulation" in (tmp_path / "p.html").read_text()


def test_runner_failure_on_the_device_is_reported(tiny_artifact, cli):
    r = cli("profile", tiny_artifact, "--prompt-len", "60", "--gen-len", "10", "--runs", "1")
    assert r.returncode == 2
    assert "edgebit-runner failed" in r.stderr and "max_seq_len 64" in r.stderr


def test_bad_artifact_and_device(tiny_artifact, cli, tmp_path):
    r = cli("profile", tmp_path / "nowhere")
    assert r.returncode == 2 and "not an edgebit artifact" in r.stderr
    r = cli("profile", tiny_artifact, "--device", "floppy")
    assert r.returncode == 2 and "unknown device 'floppy'" in r.stderr
    r = cli("profile", tiny_artifact, "--device", "ssh://")
    assert r.returncode == 2 and "ssh://user@host[:port]" in r.stderr


def test_bundles(cli, tmp_path, require):
    require("aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu builds the aarch64 bundle")
    out = tmp_path / "arm"
    r = cli("bundle", "--target", "aarch64-linux-gnu", "-o", out)
    assert r.returncode == 0, r.stderr
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    elves = ["bin/edgebit-runner", "lib/libedgebit_engine.so", "lib/libedgebit_ort.so", "lib/libonnxruntime.so.1",
             "lib/libedgebit_executorch.so", "lib/libexecutorch.so"]
    assert set(elves) | {"bundle.json"} <= names
    for name in elves:
        assert (out / name).read_bytes()[18] == 0xB7, name  # e_machine EM_AARCH64
    dyn = subprocess.run(["aarch64-linux-gnu-readelf", "-d", out / "bin/edgebit-runner"], capture_output=True, text=True)
    assert "[$ORIGIN/../lib]" in dyn.stdout
    dyn = subprocess.run(["aarch64-linux-gnu-readelf", "-d", out / "lib/libedgebit_engine.so"], capture_output=True, text=True)
    assert "[$ORIGIN]" in dyn.stdout
    r = cli("bundle", "--target", "aarch64-linux-gnu", "-o", out)
    assert r.returncode == 2 and "--force" in r.stderr


def test_android_bundle_says_what_to_provide(cli, tmp_path, monkeypatch):
    for var in ("ANDROID_NDK", "ANDROID_NDK_HOME", "EDGEBIT_ORT_ANDROID_DIR"):
        monkeypatch.delenv(var, raising=False)
    r = cli("bundle", "--target", "android-arm64", "-o", tmp_path / "android")
    assert r.returncode == 2
    assert "ANDROID_NDK" in r.stderr and "jni/arm64-v8a/libonnxruntime.so" in r.stderr and "headers/" in r.stderr
    r = cli("bundle", "--target", "riscv", "-o", tmp_path / "x")
    # --target is an enum (edgebit.api.Target): Typer names the option and the value it refused.
    assert r.returncode == 2 and "--target" in r.stderr and "'riscv'" in r.stderr



def test_broken_model_and_op_library_fail_in_one_line(tiny_artifact, cli, tmp_path):
    import shutil

    from edgebit.artifact import sha256_file
    from edgebit.bench.timing import transparent_hugepages
    from edgebit.profile.bundle import build_bundle

    art = tmp_path / "broken"
    shutil.copytree(tiny_artifact, art)
    (art / "model.onnx").write_bytes(b"not a protobuf")
    r = cli("profile", art, "--prompt-len", "4", "--gen-len", "2", "--runs", "1")
    assert r.returncode == 2 and "model.onnx: contents differ from the sha256" in r.stderr, r.stderr
    # With a manifest that agrees (a buggy exporter), the runner's own loader is what refuses it.
    manifest = json.loads((art / "manifest.json").read_text())
    manifest["files"]["model.onnx"] = sha256_file(art / "model.onnx")
    (art / "manifest.json").write_text(json.dumps(manifest))
    r = cli("profile", art, "--prompt-len", "4", "--gen-len", "2", "--runs", "1")
    # Where the engine maps the weights itself (2 MB pages, runtime_ops/engine/weight_map.h) its own protobuf reader
    # meets the model first; elsewhere ONNX Runtime does. Either refuses it in one line naming the file.
    expect = ("model.onnx: cannot load it: not a well-formed ONNX model" if transparent_hugepages()
              else "model.onnx: ONNX Runtime cannot load it")
    assert r.returncode == 2 and expect in r.stderr, r.stderr
    runner = build_bundle("host").runner
    (tmp_path / "bad.so").write_bytes(b"\x7fELF garbage")
    # A 12-byte "library" is refused by the engine's ELF check before ONNX Runtime sees it.
    for extra, expect in ((["--op-library", str(tmp_path / "bad.so")], "bad.so: not a shared library (no ELF header"),
                          (["--op-library", str(tmp_path / "none.so")], "none.so: op library missing"),
                          (["--prompt-ids", "299,300"], "prompt token id 300 is outside the vocabulary (0..299)")):
        p = subprocess.run([runner, str(tiny_artifact), *extra], capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and p.stdout == "", p
        assert p.stderr.count("\n") == 1 and expect in p.stderr, p.stderr
