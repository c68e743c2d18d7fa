"""The ExecuTorch path of the engine (Module API, libedgebit_executorch.so) through edgebit-runner on a tiny .pte:
locally side by side with the ONNX artifact, and under qemu-aarch64; greedy tokens equal the Python backend's."""

import json


def test_local_pte_and_onnx_side_by_side(tiny_artifact, tiny_pte, python_greedy, pte_greedy, cli, tmp_path, prompt):
    r = cli("profile", tiny_artifact, tiny_pte, "--prompt-ids", ",".join(map(str, prompt)), "--gen-len", "8",
            "--runs", "2", "--threads", "1", "--json", tmp_path / "p.json", "--report", tmp_path / "p.html")
    assert r.returncode == 0, r.stderr
    onnx, pte = json.loads((tmp_path / "p.json").read_text())
    assert (onnx["runtime"], onnx["runner"]) == ("onnxruntime", "edgebit-runner")
    assert (pte["runtime"], pte["runner"]) == ("executorch", "edgebit-runner")
    assert pte["runtime_version"].startswith("1.5.1") and pte["model_file"] == "program.pte"
    assert onnx["generated_ids"] == python_greedy(8) and pte["generated_ids"] == pte_greedy(8)
    assert pte["decode_tokens_per_s"] > 0 and pte["peak_rss_bytes"] > 0 and pte["kernel_variant"] in pte["cpu_features"]
    page = (tmp_path / "p.html").read_text()
    assert page.count("<polyline") == 2 and "tiny-pte" in page


def test_qemu_pte(tiny_pte, pte_greedy, cli, tmp_path, require, prompt):
    require("qemu-aarch64", "qemu-user runs the aarch64 bundle")
    require("aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu builds it")
    r = cli("profile", tiny_pte, "--device", "qemu", "--prompt-ids", ",".join(map(str, prompt)), "--gen-len", "6",
            "--runs", "1", "--warmup", "0", "--threads", "2", "--json", tmp_path / "p.json")
    assert r.returncode == 0, r.stderr
    x = json.loads((tmp_path / "p.json").read_text())
    assert x["generated_ids"] == pte_greedy(6)
    assert x["arch"] == "aarch64" and x["runtime"] == "executorch" and x["emulated"] is True


def test_an_engine_without_executorch_says_so_for_a_pte(tiny_pte):
    """A bundle built for ONNX Runtime alone (as an Android bundle is) names what is missing for a .pte."""
    import subprocess

    from edgebit.profile.bundle import build_bundle

    runner = build_bundle("host", ("onnxruntime",)).runner
    p = subprocess.run([runner, str(tiny_pte)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "built without ExecuTorch" in p.stderr and len(p.stderr.splitlines()) == 1
