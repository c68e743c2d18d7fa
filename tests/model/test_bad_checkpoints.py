"""Every way a checkpoint can be wrong ends in one line naming the file and tensor or key, exit code 2,
no traceback, through the command a user runs."""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

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


_DELETE = object()


def _edit_config(p, **changes):
    """Rewrite the case's config.json with keys set (or removed, for _DELETE)."""
    cfg = json.loads((p / "config.json").read_text())
    for key, value in changes.items():
        if value is _DELETE:
            del cfg[key]
        else:
            cfg[key] = value
    (p / "config.json").write_text(json.dumps(cfg))


def _config_missing_key(p):
    _edit_config(p, hidden_size=_DELETE)
    return ["config.json", "hidden_size", "missing"]


def _config_absurd(p):
    _edit_config(p, num_hidden_layers=10**9)
    return ["config.json", "num_hidden_layers"]


def _config_not_utf8(p):
    (p / "config.json").write_bytes(b"\xff\xfe{\x00")
    return ["config.json", "UTF-8"]


def _unsupported_family(p):
    _edit_config(p, model_type="gpt2")
    return ["config.json", "gpt2", "supported: bitnet"]


def _index_escapes(p):
    (p / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {Q: "../elsewhere.safetensors"}}))
    return ["model.safetensors.index.json", "../elsewhere.safetensors"]


def _symlink_escapes(p):
    outside = p.parent / (p.name + "-outside.safetensors")
    shutil.move(p / "model.safetensors", outside)
    (p / "model.safetensors").symlink_to(outside)
    return ["model.safetensors", "outside"]


def _raw_header(p):
    """(header dict, header length, file bytes) of model.safetensors."""
    data = (p / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), n, data


def _write_header(p, header_bytes: bytes, data: bytes, n: int):
    """Replace the header by `header_bytes` (same data section), with a correct length field."""
    header_bytes += b" " * (-len(header_bytes) % 8)
    (p / "model.safetensors").write_bytes(struct.pack("<Q", len(header_bytes)) + header_bytes + data[8 + n :])


def _edit_header(p, edit):
    header, n, data = _raw_header(p)
    edit(header)
    _write_header(p, json.dumps(header, separators=(",", ":")).encode(), data, n)


def _header_not_json(p):
    _, n, data = _raw_header(p)
    _write_header(p, b"\x00\x01garbage{{{", data, n)
    return ["model.safetensors", "not valid UTF-8 JSON"]


def _header_is_list(p):
    _, n, data = _raw_header(p)
    _write_header(p, b"[1, 2, 3]", data, n)
    return ["model.safetensors", "not a JSON object"]


def _unknown_dtype(p):
    _edit_header(p, lambda h: h[Q].update(dtype="Q7"))
    return ["model.safetensors", Q, "'Q7'"]


def _dtype_lie(p):
    _edit_header(p, lambda h: h[Q].update(dtype="F32"))  # 4 bytes per element: the span is too short
    return ["model.safetensors", Q, "expected"]


def _negative_dim(p):
    _edit_header(p, lambda h: h[Q].update(shape=[-32, 128]))
    return ["model.safetensors", Q, "non-negative"]


def _shape_lie(p):
    _edit_header(p, lambda h: h[Q].update(shape=[64, 128]))  # twice the bytes its offsets hold
    return ["model.safetensors", Q, "expected 8192"]


def _terabyte_tensor(p):
    """A tensor that claims a terabyte: rejected from the header, nothing allocated."""
    _edit_header(p, lambda h: h[Q].update(shape=[1 << 20, 1 << 20], data_offsets=[0, 1 << 40]))
    return ["model.safetensors", Q, "truncated"]


def _overlapping(p):
    def edit(h):
        k = "model.layers.0.self_attn.k_proj.weight"
        h[k]["data_offsets"] = list(h[Q]["data_offsets"])
        h[k]["shape"] = h[Q]["shape"]
    _edit_header(p, edit)
    return ["model.safetensors", "overlap"]


def _offsets_not_pair(p):
    _edit_header(p, lambda h: h[Q].update(data_offsets=[0]))
    return ["model.safetensors", Q, "data_offsets"]


def _duplicate_tensor(p):
    """The same tensor name twice in one header: json keeps the last silently, we must not."""
    header, n, data = _raw_header(p)
    text = json.dumps(header, separators=(",", ":"))
    dup = json.dumps({Q: header[Q]}, separators=(",", ":"))[1:-1]
    _write_header(p, (text[:-1] + "," + dup + "}").encode(), data, n)
    return ["model.safetensors", Q, "more than once"]


def _duplicate_across_shards(p):
    tensors = load_file(p / "model.safetensors")
    (p / "model.safetensors").unlink()
    names = sorted(tensors)
    half = len(names) // 2
    save_file({k: tensors[k] for k in {*names[:half], Q}}, p / "model-00001-of-00002.safetensors")
    save_file({k: tensors[k] for k in {*names[half:], Q}}, p / "model-00002-of-00002.safetensors")
    return ["safetensors", Q, "also appears"]


def _empty_file(p):
    (p / "model.safetensors").write_bytes(b"")
    return ["model.safetensors", "truncated"]


def _seven_bytes(p):
    (p / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00")
    return ["model.safetensors", "truncated"]


def _packed_as_float(p):
    rewrite_tensors(p, lambda t: t.update({Q: torch.zeros(32, 128, dtype=torch.float32)}))
    return ["model.safetensors", Q, "is float (F32)", "quantization_config.linear_class"]


def _scale_missing(p):
    rewrite_tensors(p, lambda t: t.pop(Q + "_scale"))
    return [Q + "_scale", "missing"]


def _scale_negative(p):
    rewrite_tensors(p, lambda t: t.update({Q + "_scale": torch.tensor([-2.0])}))
    return ["model.safetensors", Q + "_scale", "positive finite"]


def _config_wrong_type(p):
    _edit_config(p, hidden_size="128")
    return ["config.json", "hidden_size"]


def _config_negative(p):
    _edit_config(p, num_attention_heads=-4)
    return ["config.json", "num_attention_heads"]


def _config_bool_for_int(p):
    _edit_config(p, num_hidden_layers=True)
    return ["config.json", "num_hidden_layers"]


def _config_absurd_vocab(p):
    _edit_config(p, vocab_size=10**15)
    return ["config.json", "vocab_size"]


def _config_not_json(p):
    (p / "config.json").write_text('{"model_type": "bitnet", ')
    return ["config.json", "JSON"]


def _config_is_list(p):
    (p / "config.json").write_text("[1, 2]")
    return ["config.json", "object"]


def _config_missing(p):
    (p / "config.json").unlink()
    return ["config.json"]


def _index_missing_shard(p):
    (p / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {Q: "model-00009.safetensors"}}))
    return ["model-00009.safetensors", "not found"]


def _index_absolute(p):
    (p / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {Q: "/etc/passwd"}}))
    return ["model.safetensors.index.json", "/etc/passwd"]


def _index_not_utf8(p):
    (p / "model.safetensors.index.json").write_bytes(b"\xff\xfe\x00{")
    return ["model.safetensors.index.json", "weight_map"]


def _index_symlink_escapes(p):
    outside = p.parent / (p.name + "-shard.safetensors")
    shutil.move(p / "model.safetensors", outside)
    (p / "shard.safetensors").symlink_to(outside)
    tensors = list(json.loads(_read_header_of(outside)))
    (p / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {k: "shard.safetensors" for k in tensors if k != "__metadata__"}}))
    return ["model.safetensors.index.json", "shard.safetensors", "outside"]


def _read_header_of(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return data[8 : 8 + n]


CASES = {f.__name__.lstrip("_"): f for f in [
    _missing, _extra, _wrong_shape, _code_three, _bad_scale, _pickle_only, _truncated, _huge_header,
    _lying_offsets, _config_missing_key, _config_absurd, _config_not_utf8, _unsupported_family,
    _index_escapes, _symlink_escapes,
    _header_not_json, _header_is_list, _unknown_dtype, _dtype_lie, _negative_dim, _shape_lie, _terabyte_tensor,
    _overlapping, _offsets_not_pair, _duplicate_tensor, _duplicate_across_shards, _empty_file, _seven_bytes,
    _packed_as_float, _scale_missing, _scale_negative, _config_wrong_type, _config_negative, _config_bool_for_int,
    _config_absurd_vocab, _config_not_json, _config_is_list, _config_missing, _index_missing_shard,
    _index_absolute, _index_not_utf8, _index_symlink_escapes,
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


def peak_rss_mib(*args) -> tuple[int, float]:
    """(exit code, peak RSS in MiB) of one `edgebit` run, measured by the kernel for that process alone."""
    proc = subprocess.Popen([sys.executable, "-m", "edgebit", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


@pytest.mark.parametrize("case", ["huge_header", "terabyte_tensor"])
def test_terabyte_claims_allocate_nothing(case, hf_checkpoint, tmp_path):
    """A header that claims 1 TiB (header length or one tensor) is refused before any allocation: the
    process peaks no higher than on the intact checkpoint (plus slack for the error path)."""
    good = hf_checkpoint("bitnet", "packed")
    bad = copy_checkpoint(good, tmp_path / "ckpt")
    CASES[case](bad)
    code_good, rss_good = peak_rss_mib("inspect", good)
    code_bad, rss_bad = peak_rss_mib("inspect", bad)
    assert code_good == 0 and code_bad == 2
    print(f"{case}: peak RSS {rss_bad:.0f} MiB vs {rss_good:.0f} MiB on the intact checkpoint")
    assert rss_bad < rss_good + 64, (rss_bad, rss_good)
