"""The ExecuTorch path of the runner (edgebit-runner-et, Module API, libedgebit_executorch.so) on a tiny .pte:
locally side by side with the ONNX artifact, and under qemu-aarch64; greedy tokens equal the Python backend's."""

import json


def test_local_pte_and_onnx_side_by_side(tiny_artifact, tiny_pte, python_greedy, pte_greedy, cli, tmp_path, prompt):
    r = cli("profile", tiny_artifact, tiny_pte, "--prompt-ids", ",".join(map(str, prompt)), "--gen-len", "8",
            "--runs", "2", "--threads", "1", "--json", tmp_path / "p.json", "--report", tmp_path / "p.html")
    assert r.returncode == 0, r.stderr
    onnx, pte = json.loads((tmp_path / "p.json").read_text())
    assert (onnx["runtime"], onnx["runner"]) == ("onnxruntime", "edgebit-runner")
    assert (pte["runtime"], pte["runner"]) == ("executorch", "edgebit-runner-et")
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


def test_wrong_runner_for_the_artifact_says_which(tiny_pte, cli):
    from edgebit.profile.bundle import build_bundle

    import subprocess

    runner = build_bundle("host").runner  # the ONNX Runtime runner
    p = subprocess.run([runner, str(tiny_pte)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "use edgebit-runner-et" in p.stderr


def test_pte_etdump_is_pulled_and_readable(tiny_pte, cli, tmp_path):
    r = cli("profile", tiny_pte, "--prompt-len", "5", "--gen-len", "3", "--runs", "1", "--warmup", "0",
            "--threads", "1", "--json", tmp_path / "p.json", "--op-profile", tmp_path / "prof")
    assert r.returncode == 0, r.stderr
    x = json.loads((tmp_path / "p.json").read_text())
    assert x["profile_file"].endswith(".etdump") and x["ort_profile_file"] is None
    from edgebit.backends.executorch import op_profile

    rows = op_profile(x["profile_file"])
    assert any("bitlinear" in row["op"] for row in rows), rows
