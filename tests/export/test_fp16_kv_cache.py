"""`edgebit export onnx --kv-cache float16`: the in-place cache in fp16 (half its bytes). GroupQueryAttention then
takes fp16 q, k, v and cache and computes in fp32 over them; the reference rounds the same values
(ReferenceModel kv_dtype), so the artifact is held to it as tightly as the fp32 one is. Driven by edgebit's Python
backend, the native runner and onnxruntime-genai; refused where the cache is not in place."""

import json
import os
import subprocess

import numpy as np
import onnx
import pytest

from edgebit.backends import open_backend
from edgebit.backends.reference import ReferenceBackend
from edgebit.exporters.onnx.export import export_onnx
from edgebit.generate import generate
from edgebit.verify import verify
from genai_greedy import genai_greedy

PROMPT = [256, 40, 101, 7, 9]


@pytest.fixture(scope="module")
def checkpoint(hf_checkpoint):
    return hf_checkpoint("bitnet", "packed")


@pytest.fixture(scope="module")
def half(checkpoint, tmp_path_factory):
    return export_onnx(checkpoint, tmp_path_factory.mktemp("kv16") / "art", 64, "fp32", "edgebit", kv_dtype="float16")


def test_manifest_and_graph_say_float16(half):
    assert json.loads((half / "manifest.json").read_text())["kv_cache"] == {"update": "in-place", "dtype": "float16"}
    graph = onnx.load(str(half / "model.onnx"), load_external_data=False).graph
    cache = [i for i in graph.input if i.name.startswith("past_key_values.")]
    assert cache and all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for i in cache)
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for o in graph.output
               if o.name.startswith("present."))


def test_logits_and_cache_match_the_fp16_reference(half, checkpoint):
    """Prefill and decode logits equal the fp16-cache reference's; the bound fp16 buffers hold its keys and values
    (both fp16 roundings of the same floats, so equal but for a last-bit difference upstream)."""
    backend, ref = open_backend(half), ReferenceBackend(checkpoint, 64, kv_dtype="float16")
    assert backend.in_place and backend.kv_dtype == np.float16
    for step in (PROMPT, [12], [250]):
        assert np.abs(backend.forward(step) - ref.forward(step)).max() < 1e-3
    n = len(PROMPT) + 2
    for layer in range(backend.layers):
        for j, mine in enumerate((ref.cache.k[layer], ref.cache.v[layer])):
            bound = backend.buffers[2 * layer + j].numpy()
            assert bound.dtype == np.float16
            assert np.abs(bound[:, :, :n].astype(np.float32) - mine[:, :, :n].numpy()).max() < 1e-3, (layer, j)


def test_verify_holds_it_to_the_fp16_reference(half):
    report = verify(half)
    assert report.passed, report
    assert report.top1_agreement == 1.0
    assert report.max_abs_diff < 1e-3 if report.flipped_sequences == 0 else report.exact_fraction >= 0.5


def test_native_runner_and_genai_generate_the_backends_tokens(half, tmp_path):
    import onnxruntime_genai as og

    from edgebit.profile.bundle import build_bundle

    expected = generate(open_backend(half), PROMPT, 10).generated_ids
    runner = build_bundle("host").path / "bin" / "edgebit-runner"
    r = subprocess.run([str(runner), str(half), "--prompt-ids", ",".join(map(str, PROMPT)), "--gen-len", "10",
                        "--runs", "1", "--warmup", "0"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "EDGEBIT_CACHE_DIR": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["generated_ids"] == expected

    assert genai_greedy(og.Model(str(half)), PROMPT, 10) == expected


def test_refused_where_the_cache_is_not_in_place_and_for_other_types(checkpoint, tmp_path, cli):
    r = cli("export", "onnx", checkpoint, "-o", tmp_path / "out", "--kv-cache", "float16", "--ops", "standard")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--kv-cache float16" in lines[0] and "--ops standard keeps the fp32 Concat cache" in \
        lines[0], r.stderr
    r = cli("export", "onnx", checkpoint, "-o", tmp_path / "out", "--kv-cache", "bfloat16")
    assert r.returncode == 2 and "--kv-cache" in r.stderr and "float16" in r.stderr, r.stderr  # Typer's usage error
    assert not (tmp_path / "out").exists()


def test_head_dim_not_a_multiple_of_8_is_refused(hf_checkpoint, tmp_path, cli):
    ckpt = hf_checkpoint("bitnet", "packed", True, dims=dict(hidden_size=200, num_attention_heads=2,
                                                             num_key_value_heads=2, intermediate_size=540,
                                                             num_hidden_layers=2))
    r = cli("export", "onnx", ckpt, "-o", tmp_path / "out", "--kv-cache", "float16")
    assert r.returncode == 2 and "head_dim 100 is not a multiple of 8" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()
