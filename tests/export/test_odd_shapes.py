"""Widths that are not multiples of 128 (packed layout v2 pads them), end to end: a scaled-down
1bitLLM/bitnet_b1_58-3B (hidden 3200 -> 200, head_dim 100 as published, FFN 8640 -> 540, 2 heads, 2 KV heads,
2 layers) as a packed and as a master checkpoint, and a GQA variant (hidden 400 = 3 blocks + 16, 4 query heads of
head_dim 100 on 1 KV head; transformers' BitNet sizes attn_sub_norm by hidden_size, so q width must equal hidden). The reference model against transformers, every export form through `edgebit
verify`, greedy tokens through `edgebit run` and the native runner against transformers' `generate`, the
exporters' MatMulNBits blobs against the weights, `edgebit inspect`, and the torchao baseline's one-line refusal."""

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from edgebit.model.reference import ReferenceModel
from edgebit.model.weights import load_model_weights
from edgebit.quant.head import quantize_rows_int8
from edgebit.quant.packing import packed_row_bytes, unpack_ternary

SHAPES = {
    "3b": dict(hidden_size=200, num_attention_heads=2, num_key_value_heads=2, intermediate_size=540,
               num_hidden_layers=2),
    "gqa": dict(hidden_size=400, num_attention_heads=4, num_key_value_heads=1, intermediate_size=540,
                num_hidden_layers=2),
}
PROMPT = [256, 10, 20, 30]
NEW_TOKENS = 10
TOL = 1e-4


@pytest.fixture(scope="module")
def ckpt(hf_checkpoint):
    def make(shape="3b", form="packed"):
        return hf_checkpoint("bitnet", form, True, dims=SHAPES[shape])

    return make


@pytest.fixture(scope="module")
def artifact(ckpt, tmp_path_factory, cli):
    """artifact(target, *options, shape=, form=) -> a dir written by `edgebit export`, once per module."""
    made = {}

    def make(target, *options, shape="3b", form="packed"):
        key = (target, options, shape, form)
        if key not in made:
            out = tmp_path_factory.mktemp("odd") / "art"
            r = cli("export", target, ckpt(shape, form), "-o", out, "--max-seq-len", "64", *options, timeout=900)
            assert r.returncode == 0, r.stderr[-3000:]
            made[key] = out
        return made[key]

    return make


@pytest.fixture(scope="module")
def hf_greedy(ckpt, load_hf):
    done = {}

    def tokens(shape):
        if shape not in done:
            with torch.no_grad():
                out = load_hf(ckpt(shape)).generate(torch.tensor([PROMPT]), max_new_tokens=NEW_TOKENS,
                                                    do_sample=False, eos_token_id=None, pad_token_id=0)
            done[shape] = out[0, len(PROMPT):].tolist()
        return done[shape]

    return tokens


@pytest.mark.parametrize("shape,form", [("3b", "packed"), ("3b", "master"), ("gqa", "packed")])
def test_reference_matches_transformers(ckpt, load_hf, shape, form):
    path = ckpt(shape, form)
    weights = load_model_weights(path)
    cfg = weights.config
    assert cfg.head_dim == 100 and cfg.intermediate_size == 540
    layer = weights.layers[0]
    for w in (layer.q, layer.o, layer.gate, layer.down):
        assert w.packed.shape == (w.out_features, packed_row_bytes(w.in_features))  # padded rows
    h = cfg.hidden_size
    assert layer.down.packed.shape == (h, 160) and layer.gate.packed.shape == (540, packed_row_bytes(h))

    hf, ref = load_hf(path), ReferenceModel(weights)
    ids = torch.tensor([[256, 5, 17, 99, 140, 3, 77, 201]])
    with torch.no_grad():
        out = hf(ids, use_cache=True)
        cache = ref.new_cache(1, 32)
        mine = ref.forward(ids, cache)
        assert out.logits.abs().max() > 1.0  # logits large enough that 1e-4 is a real bound
        assert (out.logits - mine).abs().max().item() <= TOL
        past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
        for _ in range(4):
            out = hf(token, cache=past, use_cache=True)
            mine = ref.forward(token, cache)
            assert (out.logits - mine).abs().max().item() <= TOL
            past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)


VERIFIED = [  # (target, options, shape, form); "--kv-cache float32" where the exactness of another part is held
    ("onnx", (), "3b", "packed"),  # the default fp16 cache
    ("onnx", ("--kv-cache", "float32"), "3b", "packed"),
    ("onnx", ("--head", "int8", "--kv-cache", "float32"), "3b", "packed"),
    ("onnx", ("--head", "q4", "--kv-cache", "float32"), "3b", "packed"),  # hidden 200: q4 rows padded to 256 weights
    ("onnx", ("--ops", "standard"), "3b", "packed"),
    ("onnx", (), "3b", "master"),
    ("onnx", (), "gqa", "packed"),
    ("executorch", ("--no-xnnpack",), "3b", "packed"),
    ("executorch", ("--head", "int8", "--kv-cache", "float32"), "3b", "packed"),  # XNNPACK with edgebit's int8 head
    ("executorch", ("--head", "q4", "--kv-cache", "float32"), "3b", "packed"),
    ("executorch", ("--no-xnnpack",), "gqa", "packed"),
]


@pytest.mark.parametrize("target,options,shape,form", VERIFIED,
                         ids=["-".join((t, *o, s, f)) for t, o, s, f in VERIFIED])
def test_artifact_passes_verify(artifact, cli, target, options, shape, form):
    r = cli("verify", artifact(target, *options, shape=shape, form=form), "--json", timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(r.stdout)
    assert report["passed"], report
    if target == "onnx" and options == ("--kv-cache", "float32"):  # edgebit's op, fp32 head and cache: exact
        # Exact to 1e-3 unless an int8 activation rounding flip (docs/verify.md) happened in a sequence: whether one
        # does depends on the last bit of ONNX Runtime's and PyTorch's float kernels, which differ between machines
        # (this 3B-shaped fixture flipped in 1 of its 4 sequences on an AVX-512 one, in none on the AVX2 ones before).
        assert report["top1_agreement"] == 1.0
        assert report["max_abs_diff"] < 1e-3 if report["flipped_sequences"] == 0 else report["exact_fraction"] >= 0.5
    if target == "onnx":  # head_dim 100 (no multiple of 8): edgebit.Attention still updates the cache in place
        art = artifact(target, *options, shape=shape, form=form)
        in_place = "standard" not in options
        assert json.loads((art / "manifest.json").read_text())["kv_cache"]["update"] == (
            "in-place" if in_place else "concat")
        assert json.loads((art / "genai_config.json").read_text())["search"]["past_present_share_buffer"] == in_place
    if "--head" in options and "--ops" not in options:  # edgebit's QLinear head: held to the same-head reference
        assert report["top1_agreement"] == 1.0 and report["head_perplexity_rel_diff"] is not None


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("target,options", [("onnx", ()), ("executorch", ("--no-xnnpack",))])
def test_run_gives_transformers_greedy_tokens(artifact, hf_greedy, cli, shape, target, options):
    art = artifact(target, *options, shape=shape)
    r = cli("run", art, "--prompt-ids", ",".join(map(str, PROMPT)), "--max-new-tokens", str(NEW_TOKENS), "--json")
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["generated_ids"] == hf_greedy(shape)


@pytest.fixture(scope="module")
def native_runner():
    from edgebit.profile.bundle import build_bundle

    return build_bundle("host").path / "bin" / "edgebit-runner"


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("target,options", [("onnx", ()), ("executorch", ("--no-xnnpack",))])
def test_native_runner_gives_transformers_greedy_tokens(artifact, hf_greedy, native_runner, tmp_path, shape,
                                                        target, options):
    import os
    import subprocess

    art = artifact(target, *options, shape=shape)
    env = {**os.environ, "EDGEBIT_CACHE_DIR": str(tmp_path / "cache")}
    r = subprocess.run([str(native_runner), str(art), "--prompt-ids", ",".join(map(str, PROMPT)), "--gen-len",
                        str(NEW_TOKENS), "--runs", "1", "--warmup", "0"], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["generated_ids"] == hf_greedy(shape)


def _initializers(art) -> dict[str, np.ndarray]:
    model = onnx.load(str(art / "model.onnx"))
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def test_matmulnbits_blobs_hold_whole_padded_blocks(artifact, ckpt):
    """MatMulNBits stores [N, ceil(K/128), 128 * bits / 8] and reads only A's K columns: the exporter's blobs decode
    to the weights in their first K codes and to zero (the default zero point) in the padding."""
    weights = load_model_weights(ckpt())
    layer = weights.layers[0]
    blobs = _initializers(artifact("onnx", "--ops", "standard"))
    for name, ws in (("layers.0.gate_up", [layer.gate, layer.up]), ("layers.0.down_proj", [layer.down]),
                     ("layers.0.qkv", [layer.q, layer.k, layer.v])):
        k = ws[0].in_features
        blob = blobs[name + ".nbits"]
        assert blob.shape == (sum(w.out_features for w in ws), -(-k // 128), 32)
        codes = np.stack([(blob >> (2 * i)) & 3 for i in range(4)], axis=-1).reshape(blob.shape[0], -1)
        w_t = torch.cat([unpack_ternary(w.packed, k) for w in ws]).numpy()
        assert np.array_equal(codes[:, :k].astype(np.int16) - 2, w_t)
        assert (codes[:, k:] == 2).all()

    head = _initializers(artifact("onnx", "--ops", "standard", "--head", "int8"))["embed_tokens.int8"]
    q, _ = quantize_rows_int8(weights.embed)
    assert head.shape == (300, 2, 128)
    rows = head.reshape(300, -1).astype(np.int16) - 128
    assert np.array_equal(rows[:, :200], q.numpy()) and (rows[:, 200:] == 0).all()


def test_qlinear_head_rows_hold_whole_padded_blocks(artifact, ckpt):
    """edgebit's QLinear rows (edgebit_kernels.h): int8, [V, Kp] bytes q + 128 with zero weights in the padding; q4,
    [V, Kp/2 + Kp/32] nibbles (per 64-weight chunk: low nibbles then high; runs of four weights alternate between the
    chunk's two groups) then group scales, read back here by an
    unpacking of the documented layout written apart from the exporter's, zero weights (nibble 8) in the padding."""
    weights = load_model_weights(ckpt())
    table = weights.embed.float().numpy()
    inits = _initializers(artifact("onnx", "--head", "int8"))
    q, _ = quantize_rows_int8(weights.embed)
    rows = inits["embed_tokens.int8"].astype(np.int16) - 128
    assert rows.shape == (300, 256) and np.array_equal(rows[:, :200], q.numpy()) and (rows[:, 200:] == 0).all()
    inits = _initializers(artifact("onnx", "--head", "q4"))
    w, scale = inits["embed_tokens.q4"], inits["embed_tokens.scale"]
    assert w.shape == (300, 256 // 2 + 256 // 32) and scale.shape == (300,)
    nib = np.zeros((300, 256), np.int64)
    for k in range(256):
        byte = w[:, (k // 64) * 32 + k % 32]
        nib[:, k] = (byte & 15) if k % 64 < 32 else (byte >> 4)
    sub = w[:, 128:].astype(np.int64)
    assert (nib[:, 200:] == 8).all()
    k = np.arange(200)
    step = sub[:, 2 * (k // 64) + (k % 8) // 4] * scale[:, None]  # group 2c + (j % 8) // 4 of chunk c
    back = (nib[:, :200] - 8) * step
    assert (np.abs(back - table) <= 2 * step + 1e-6).all()  # a clipped loudest weight: < 1.5 steps + rounding
    assert np.linalg.norm(back - table) / np.linalg.norm(table) < 0.12


def test_inspect_counts_padded_rows(ckpt, cli):
    r = cli("inspect", ckpt(), "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["layout_version"] == 2 and s["linear_shapes"]["down_proj"] == [200, 540]
    packed = 2 * sum(n * packed_row_bytes(k) for n, k in s["linear_shapes"].values())
    assert packed > s["ternary_params"] // 4  # 540 -> 640 and 200 -> 256 weights a row
    assert s["bytes_packed"] == packed + 4 * 7 * 2 + 2 * s["float_params"]


def test_torchao_baseline_refuses_odd_widths_in_one_line(ckpt, tmp_path, cli):
    r = cli("export", "executorch", ckpt(), "-o", tmp_path / "out", "--ops", "torchao-8da4w")
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--ops torchao-8da4w" in lines[0] and "200, 540" in lines[0], r.stderr
    assert not (tmp_path / "out").exists()
