"""Every way a checkpoint can be wrong ends in one line naming the file and tensor or key, exit code 2,
no traceback, through the command a user runs."""

import json
import shutil
import struct

import pytest
import torch
from safetensors.torch import load_file, save_file

Q = "model.layers.0.self_attn.q_proj.weight"


def copy_checkpoint(src, dst):
    shutil.copytree(src, dst)
    return dst


def rewrite_tensors(path, edit):
    tensors = load_file(path / "model.safetensors")
    edit(tensors)
    save_file(tensors, path / "model.safetensors")


def _missing(p):
    rewrite_tensors(p, lambda t: t.pop(Q))
    return [Q, "missing"]


def _extra(p):
    rewrite_tensors(p, lambda t: t.update({"model.layers.9.mlp.bonus.weight": torch.zeros(4)}))
    return ["model.safetensors", "model.layers.9.mlp.bonus.weight", "unexpected"]


def _wrong_shape(p):
    rewrite_tensors(p, lambda t: t.update({Q: torch.zeros(16, 128, dtype=torch.uint8)}))
    return ["model.safetensors", Q, "expected U8[32, 128]"]


def _code_three(p):
    def edit(t):
        t[Q] = t[Q].clone()
        t[Q][1, 5] = 0b11111111
    rewrite_tensors(p, edit)
    return ["model.safetensors", Q, "code 3"]


def _bad_scale(p):
    rewrite_tensors(p, lambda t: t.update({Q + "_scale": torch.tensor([float("nan")])}))
    return ["model.safetensors", Q + "_scale", "positive finite"]


def _pickle_only(p):
    (p / "model.safetensors").unlink()
    torch.save({"x": torch.zeros(1)}, p / "pytorch_model.bin")
    return ["pytorch_model.bin", "pickle", "safetensors"]


def _truncated(p):
    data = (p / "model.safetensors").read_bytes()
    (p / "model.safetensors").write_bytes(data[: len(data) - 1000])
    return ["model.safetensors", "truncated"]


def _huge_header(p):
    data = (p / "model.safetensors").read_bytes()
    (p / "model.safetensors").write_bytes(struct.pack("<Q", 1 << 40) + data[8:])
    return ["model.safetensors", "header length"]


def _lying_offsets(p):
    data = (p / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header[Q]["data_offsets"][1] += 8
    blob = json.dumps(header, separators=(",", ":")).encode().ljust(n)
    assert len(blob) == n
    (p / "model.safetensors").write_bytes(data[:8] + blob + data[8 + n :])
    return ["model.safetensors", Q, "bytes for U8"]


def _config_missing_key(p):
    cfg = json.loads((p / "config.json").read_text())
    del cfg["hidden_size"]
    (p / "config.json").write_text(json.dumps(cfg))
    return ["config.json", "hidden_size", "missing"]


def _config_absurd(p):
    cfg = json.loads((p / "config.json").read_text())
    cfg["num_hidden_layers"] = 10**9
    (p / "config.json").write_text(json.dumps(cfg))
    return ["config.json", "num_hidden_layers"]


def _config_not_utf8(p):
    (p / "config.json").write_bytes(b"\xff\xfe{\x00")
    return ["config.json", "UTF-8"]


def _unsupported_family(p):
    cfg = json.loads((p / "config.json").read_text())
    cfg["model_type"] = "gpt2"
    (p / "config.json").write_text(json.dumps(cfg))
    return ["config.json", "gpt2", "supported: bitnet"]


def _index_escapes(p):
    (p / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {Q: "../elsewhere.safetensors"}}))
    return ["model.safetensors.index.json", "../elsewhere.safetensors"]


def _symlink_escapes(p):
    outside = p.parent / (p.name + "-outside.safetensors")
    shutil.move(p / "model.safetensors", outside)
    (p / "model.safetensors").symlink_to(outside)
    return ["model.safetensors", "outside"]


CASES = {f.__name__.lstrip("_"): f for f in [
    _missing, _extra, _wrong_shape, _code_three, _bad_scale, _pickle_only, _truncated, _huge_header,
    _lying_offsets, _config_missing_key, _config_absurd, _config_not_utf8, _unsupported_family,
    _index_escapes, _symlink_escapes,
]}


@pytest.mark.parametrize("case", CASES)
def test_bad_checkpoint_is_one_clear_line(case, hf_checkpoint, tmp_path, cli):
    path = copy_checkpoint(hf_checkpoint("bitnet", "packed"), tmp_path / "ckpt")
    expected = CASES[case](path)
    result = cli("inspect", path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])


def test_not_a_directory(cli, tmp_path):
    result = cli("inspect", tmp_path / "nope")
    assert result.returncode == 2 and "not a checkpoint directory" in result.stderr
