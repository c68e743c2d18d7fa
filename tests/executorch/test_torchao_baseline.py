"""`edgebit export executorch --ops torchao-8da4w`: ExecuTorch's stock low-bit path (torchao int8 x int4 linears on
XNNPACK) of the same ternary weights, the baseline the edgebit op is measured against. It needs no op library,
runs in the Python backend and the native engine, and stays close to the reference (its own verify limits)."""

import json
import subprocess

from edgebit.verify import THRESHOLDS


def test_baseline_exports_verifies_and_runs_without_a_library(hf_checkpoint, tmp_path, cli):
    from edgebit.profile.bundle import build_bundle

    art = tmp_path / "tao"
    r = cli("export", "executorch", hf_checkpoint("bitnet", "packed"), "-o", art, "--ops", "torchao-8da4w",
            "--max-seq-len", "64", timeout=600)
    assert r.returncode == 0, r.stderr
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["ops"] == "torchao-8da4w" and manifest["op_library"] is None
    assert sorted(p.name for p in art.iterdir() if p.suffix == ".so") == []
    # On random weights the logits are nearly tied, so torchao's activation rounding flips many top-1s (the
    # shipped model agrees 95%); the distribution stays the reference's.
    r = cli("verify", art, "--json")
    report = json.loads(r.stdout)
    assert report["thresholds"] == THRESHOLDS[("torchao-8da4w", "fp32")]
    assert report["perplexity_rel_diff"] < 0.05 and report["top1_agreement"] > 0.4
    runner = build_bundle("host").runner
    p = subprocess.run([runner, str(art), "--prompt-ids", "256,10,11", "--gen-len", "6", "--runs", "1"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert len(json.loads(p.stdout)["generated_ids"]) == 6


def test_baseline_refuses_no_xnnpack_and_unknown_ops(hf_checkpoint, tmp_path, cli):
    ckpt = hf_checkpoint("bitnet", "packed")
    r = cli("export", "executorch", ckpt, "-o", tmp_path / "a", "--ops", "torchao-8da4w", "--no-xnnpack")
    assert r.returncode == 2 and "XNNPACK" in r.stderr
    r = cli("export", "executorch", ckpt, "-o", tmp_path / "b", "--ops", "gguf")
    assert r.returncode == 2 and "torchao-8da4w" in r.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
