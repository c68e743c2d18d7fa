"""`--kv-cache int8`: the in-place KV cache as rows of int8 codes and a float32 scale (edgebit/quant/kv_int8.py: s =
max|row| / 127, code = rint(x / s), read as code * s), for both artifacts. edgebit.Attention (ONNX) and
edgebit::cache_write (.pte) quantize each new row as they write it, in C (edgebit_f32_to_q8_row), bit for bit as the
Python codec; edgebit_attention_q8kv reads it exactly as the fp32 kernel reads the dequantized cache. The reference
model (kv_dtype "int8") does the same round trip, so verify holds the artifact to it as tightly as the fp16 one is
held; driven by the Python backend, the native runner and onnxruntime-genai. Refused with stock ops, and a manifest
naming another row format is refused by name."""

import json

import numpy as np
import onnx
import pytest
import torch

from edgebit.api import export_executorch, export_onnx
from edgebit.artifact import ArtifactError, read_manifest
from edgebit.backends import open_backend
from edgebit.backends.reference import ReferenceBackend
from edgebit.generate import generate
from edgebit.quant.kv_int8 import dequantize_rows, quantize_rows, round_trip
from edgebit.verify import verify
from genai_greedy import genai_greedy
from kv_reference import check_logits_and_cache
from native_runner import native_runner_tokens

PROMPT = [256, 40, 101, 7, 9]
KV = {"update": "in-place", "dtype": "int8", "row": "int8-codes+f32-scale"}


@pytest.fixture(scope="module")
def checkpoint(hf_checkpoint):
    return hf_checkpoint("bitnet", "packed")


@pytest.fixture(scope="module")
def kv8(checkpoint, tmp_path_factory):
    return export_onnx(checkpoint, tmp_path_factory.mktemp("kv8") / "art", max_seq_len=64, kv_cache="int8")


@pytest.fixture(scope="module")
def kv8_pte(checkpoint, tmp_path_factory):
    return export_executorch(checkpoint, tmp_path_factory.mktemp("pte8") / "art", max_seq_len=64, kv_cache="int8")


def test_codec_rows_and_edge_cases():
    x = torch.randn(3, 4, 100) * torch.logspace(-3, 3, 100)
    q = quantize_rows(x)
    assert q.dtype == torch.int8 and q.shape == (3, 4, 104)
    scale = q[..., 100:].contiguous().view(torch.float32)
    assert torch.equal(scale, x.abs().amax(-1, keepdim=True) / 127)
    assert q[..., :100].abs().amax(-1).eq(127).all() and q[..., :100].min() >= -127
    y = dequantize_rows(q)
    assert ((y - x).abs() <= scale / 2 * (1 + 1e-6)).all()  # the nearest code
    special = torch.tensor([[0.0, 0.0, 0.0], [1.0, float("nan"), 2.0], [1.0, float("inf"), 2.0], [2.5, -2.5, 127.0]])
    back = round_trip(special)
    assert back[0].eq(0).all() and back[1].isnan().all() and back[2].isnan().all()
    assert back[3].tolist() == [2.0, -2.0, 127.0]  # ties to even: 2.5 -> 2
    with pytest.raises(ValueError, match="int8"):
        dequantize_rows(torch.zeros(2, 8))


def test_manifest_and_graph_say_int8(kv8):
    manifest = json.loads((kv8 / "manifest.json").read_text())
    assert manifest["kv_cache"] == KV
    d = manifest["config"]["head_dim"]
    graph = onnx.load(str(kv8 / "model.onnx"), load_external_data=False).graph
    cache = [i for i in graph.input if i.name.startswith("past_key_values.")]
    assert cache and all(i.type.tensor_type.elem_type == onnx.TensorProto.INT8 for i in cache)
    assert all(i.type.tensor_type.shape.dim[3].dim_value == d + 4 for i in cache)  # the codes, then the scale
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.INT8 for o in graph.output
               if o.name.startswith("present."))


def test_logits_and_cache_match_the_int8_reference(kv8, checkpoint):
    """Prefill and decode logits equal the int8-cache reference's; the bound buffers hold the Python codec's rows of
    the reference's keys and values, scales bit for bit where the rows agree (C and torch quantize alike)."""
    backend, ref = open_backend(kv8), ReferenceBackend(checkpoint, 64, kv_dtype="int8")
    assert backend.in_place and backend.kv_dtype == np.int8
    head_dim = ref.cache.k[0].shape[-1]

    def as_float(rows):
        assert rows.shape[-1] == head_dim + 4
        return dequantize_rows(torch.from_numpy(rows)).numpy()

    check_logits_and_cache(backend, ref, ReferenceBackend(checkpoint, 64), PROMPT, as_float)


def test_cache_rows_are_the_python_codecs_bit_for_bit(kv8):
    """One edgebit.Attention call's present rows against quantize_rows of its own key and value inputs."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    from edgebit.ops.ort_library import library_path

    kvh, d, t, heads = 2, 24, 5, 4
    node = helper.make_node("Attention", ["q", "k", "v", "pk", "pv", "total", "start"], ["o", "k8", "v8"],
                            domain="edgebit", num_heads=heads, kv_num_heads=kvh, scale=d ** -0.5)
    f32 = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)  # noqa: E731
    i8 = lambda n: helper.make_tensor_value_info(n, TensorProto.INT8, [1, kvh, None, d + 4])  # noqa: E731
    i64 = lambda n: helper.make_tensor_value_info(n, TensorProto.INT64, [None])  # noqa: E731
    graph = helper.make_graph([node], "g", [f32("q", [1, t, heads * d]), f32("k", [1, t, kvh * d]),
                                            f32("v", [1, t, kvh * d]), i8("pk"), i8("pv"), i64("total"), i64("start")],
                              [f32("o", [1, t, heads * d]), i8("k8"), i8("v8")])
    model = helper.make_model(graph, ir_version=10,
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("edgebit", 1)])
    so = ort.SessionOptions()
    so.register_custom_ops_library(str(library_path()))
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    q, k, v = (rng.standard_normal((1, t, n * d)).astype(np.float32) * 3 for n in (heads, kvh, kvh))
    k[0, 2, :d] = 0.0  # a zero row
    past = np.zeros((1, kvh, 0, d + 4), np.int8)
    out, k8, v8 = sess.run(None, {"q": q, "k": k, "v": v, "pk": past, "pv": past, "total": np.array([t]),
                                  "start": np.array([0])})
    for got, x in ((k8, k), (v8, v)):
        want = quantize_rows(torch.from_numpy(x).view(1, t, kvh, d).transpose(1, 2))
        assert np.array_equal(got, want.numpy())
    # attention over it: the fp32 op on the dequantized cache (torch's reference of the .pte op)
    from edgebit.ops.torch_attention import attention_reference

    ref = attention_reference(torch.from_numpy(q).view(1, t, heads, d), torch.from_numpy(k8), torch.from_numpy(v8),
                              torch.arange(t), d ** -0.5)
    assert np.abs(out - ref.numpy()).max() < 1e-5


def test_verify_holds_it_to_the_int8_reference(kv8):
    report = verify(kv8)
    assert report.passed, report
    assert report.top1_agreement >= 0.99


def test_native_runner_and_genai_generate_the_backends_tokens(kv8, kv8_pte, tmp_path):
    import onnxruntime_genai as og

    for artifact in (kv8, kv8_pte):
        assert native_runner_tokens(artifact, tmp_path, PROMPT, 10) == generate(open_backend(artifact), PROMPT,
                                                                                 10).generated_ids
    # onnxruntime-genai allocates the cache from the graph's input type and shape (int8, D + 4) and shares it as
    # past and present; edgebit.Attention reads and writes the rows.
    assert genai_greedy(og.Model(str(kv8)), PROMPT, 10) == generate(open_backend(kv8), PROMPT, 10).generated_ids


def test_pte_int8_cache_is_held_to_the_int8_reference(kv8_pte, checkpoint):
    assert json.loads((kv8_pte / "manifest.json").read_text())["kv_cache"] == KV
    backend, ref = open_backend(kv8_pte), ReferenceBackend(checkpoint, 64, kv_dtype="int8")
    for step in (PROMPT, [12], [250]):
        assert np.abs(backend.forward(step)[-1] - ref.forward(step)[-1]).max() < 1e-3
    report = verify(kv8_pte)
    assert report.passed and report.top1_agreement >= 0.99, report


def test_refused_with_stock_ops(checkpoint, tmp_path, cli):
    for target, ops in (("onnx", "standard"), ("executorch", "torchao-8da4w")):
        r = cli("export", target, checkpoint, "-o", tmp_path / "out", "--kv-cache", "int8", "--ops", ops)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "--kv-cache int8" in lines[0], r.stderr
        assert not (tmp_path / "out").exists()


def test_another_row_format_is_refused_by_name(kv8, tmp_path):
    import shutil

    copy = tmp_path / "art"
    shutil.copytree(kv8, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["kv_cache"]["row"] = "int8-codes+f16-scale"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="'row' must be \"int8-codes\\+f32-scale\""):
        read_manifest(copy, check_files=False)
