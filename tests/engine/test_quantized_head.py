"""The LM head in edgebit's own QLinear (int8 and q4 heads with edgebit's ops), the whole way: ONNX and .pte exports
of a tied and an untied checkpoint are held by `verify` to the reference computing the same head (top-1 100%) and
report the head's cost against fp32; their greedy tokens through `edgebit run` and the native runner equal that
reference's; q4 with a stock runtime's ops is refused in one line naming the option, nothing written."""

import json

import pytest
import torch

from edgebit.model.reference import ReferenceModel
from edgebit.model.weights import load_model_weights

PROMPT = [256, 10, 20, 30, 7]
N = 10


@pytest.fixture(scope="module")
def export(cli, tmp_path_factory):
    made = {}

    def make(ckpt, target, head):
        key = (str(ckpt), target, head)
        if key not in made:
            out = tmp_path_factory.mktemp("qhead") / "art"
            # The fp32 cache: the head is held exactly (top-1 100%, the reference's greedy tokens); the fp16
            # cache's rounding can swap a near-tie of these random weights after an int8 flip (its own tests:
            # tests/export/test_fp16_kv_cache.py).
            r = cli("export", target, ckpt, "-o", out, "--max-seq-len", "64", "--head", head, "--kv-cache", "float32",
                    timeout=600)
            assert r.returncode == 0, r.stderr
            made[key] = out
        return made[key]

    return make


def reference_greedy(ckpt, head: str) -> list[int]:
    model = ReferenceModel(load_model_weights(ckpt), head)
    cache = model.new_cache(1, 64)
    logits = model.forward(torch.tensor([PROMPT]), cache)
    out = []
    for _ in range(N):
        token = int(logits[0, -1].argmax())
        out.append(token)
        logits = model.forward(torch.tensor([[token]]), cache)
    return out


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("head", ["q4", "int8"])
@pytest.mark.parametrize("target", ["onnx", "executorch"])
def test_artifact_computes_the_same_head_reference(hf_checkpoint, export, cli, runner, target, head, tie):
    ckpt = hf_checkpoint("bitnet", "packed", tie)
    art = export(ckpt, target, head)
    r = cli("verify", art, "--json", timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["passed"] and report["top1_agreement"] == 1.0 and report["head"] == head, report
    # Random weights predict nothing: the head's cost is reported, not judged (it is on the shipped model).
    assert 0 <= report["head_top1_agreement"] <= 1 and report["head_perplexity_rel_diff"] is not None
    assert "head_perplexity_rel_diff" not in report["thresholds"]
    manifest = json.loads((art / "manifest.json").read_text())
    assert manifest["head"] == head
    want = reference_greedy(ckpt, head)
    ids = ",".join(map(str, PROMPT))
    r = cli("run", art, "--prompt-ids", ids, "--max-new-tokens", N, "--threads", "1", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout[r.stdout.index("{"):])["generated_ids"] == want
    r = runner(art, "--prompt-ids", ids, "--gen-len", N, "--runs", "1", "--warmup", "0", "--threads", "2")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["generated_ids"] == want


def test_verify_judges_the_head_cost_on_the_shipped_model(export, cli):
    """The shipped model predicts its text, so the q4 head's perplexity cost against fp32 is judged (limit 5%)."""
    r = cli("verify", export("bitnet-kjv-small", "onnx", "q4"), timeout=600)
    assert r.returncode == 0, r.stderr
    line = " ".join(r.stdout.split())  # rich wraps the line
    assert "q4 head cost against the fp32 head: top-1 agreement" in line and "limit 5%)" in line, r.stdout


@pytest.mark.parametrize("target,ops", [("onnx", "standard"), ("executorch", "torchao-8da4w")])
def test_q4_with_stock_ops_is_refused_in_one_line(hf_checkpoint, cli, tmp_path, target, ops):
    r = cli("export", target, hf_checkpoint("bitnet", "packed"), "-o", tmp_path / "out", "--head", "q4", "--ops", ops)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--head q4" in lines[0] and ops in lines[0], r.stderr
    assert not (tmp_path / "out").exists()
