"""The plausibility check: the shipped model predicts the check text far better than chance and better than with
its weight scales inverted; the same model read with the wrong scale convention, and random weights, are flagged
with the numbers, exit 1."""

import json
import shutil

import pytest
from safetensors.torch import load_file, save_file

from edgebit.model.shipped import default_model_path
from edgebit.plausibility import assess


@pytest.fixture(scope="module")
def misread(tmp_path_factory):
    """The shipped model twice over, each read with the other scale convention: its weight_scales inverted, and
    its config naming autobitlinear (which multiplies) for scales written for bitlinear (which divides)."""
    root = tmp_path_factory.mktemp("misread")
    inverted, relabelled = root / "inverted", root / "relabelled"
    for d in (inverted, relabelled):
        shutil.copytree(default_model_path(), d)
    tensors = load_file(inverted / "model.safetensors")
    save_file({k: 1.0 / v if k.endswith("weight_scale") else v for k, v in tensors.items()},
              inverted / "model.safetensors")
    raw = json.loads((relabelled / "config.json").read_text())
    raw["quantization_config"]["linear_class"] = "autobitlinear"
    (relabelled / "config.json").write_text(json.dumps(raw))
    return inverted, relabelled


def _check(cli, path):
    result = cli("inspect", path, "--check", "--json")
    return result, json.loads(result.stdout)["plausibility"]


def test_shipped_model_is_plausible(cli):
    result, p = _check(cli, default_model_path())
    assert result.returncode == 0 and p["plausible"]
    assert p["perplexity"] < 40 and p["perplexity"] < p["inverted_perplexity"] and p["chance_perplexity"] == 4096


def test_inverted_scales_are_flagged(cli, misread):
    for path in misread:
        result, p = _check(cli, path)
        assert result.returncode == 1 and not p["plausible"]
        assert p["inverted_perplexity"] < p["perplexity"]
        table = cli("inspect", path, "--check")
        assert "IMPLAUSIBLE" in table.stdout and "linear_class" in table.stdout


def test_random_weights_are_no_better_than_chance(cli, hf_checkpoint):
    result, p = _check(cli, hf_checkpoint("bitnet", "master"))
    assert result.returncode == 1 and p["perplexity"] >= p["threshold"] and p["inverted_perplexity"] is None
    assert "no better than chance" in cli("inspect", hf_checkpoint("bitnet", "master"), "--check").stdout


def test_missing_tokenizer_is_one_line(cli, hf_checkpoint, tmp_path):
    path = tmp_path / "ckpt"
    shutil.copytree(hf_checkpoint("bitnet", "packed"), path)
    (path / "tokenizer.json").unlink()
    result = cli("inspect", path, "--check")
    assert result.returncode == 2 and "tokenizer.json" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_verdicts():
    assert assess(20.0, 4096, 100, 30.0).plausible
    assert not assess(600.0, 4096, 100).plausible  # 4096 ** 0.75 = 512
    assert not assess(30.0, 4096, 100, 20.0).plausible
    assert not assess(float("nan"), 4096, 100).plausible
