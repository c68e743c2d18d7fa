"""`edgebit export onnx` (`--kv-cache float16`, the default with edgebit's ops): the in-place cache in fp16 (half its
bytes). edgebit.Attention rounds the new keys and values into it and attends in fp32 over them (q and its output stay
fp32); the reference rounds the same values (ReferenceModel kv_dtype), so the artifact is held to it as tightly as the
fp32 one is. Any head dim (the 1bitLLM 3B's 100 too). Driven by edgebit's Python backend, the native runner and onnxruntime-genai; refused where the
cache is not in place. Artifacts of earlier versions (GroupQueryAttention in fp16, which rounded q and the output as
well) are held to that arithmetic. The .pte's fp16 cache likewise. Stock ops keep (and default to) the fp32 cache."""

import json

import numpy as np
import onnx
import pytest

from edgebit.backends import open_backend
from edgebit.backends.reference import ReferenceBackend
from edgebit.api import export_executorch, export_onnx
from edgebit.generate import generate
from edgebit.verify import verify
from genai_greedy import genai_greedy
from kv_reference import check_logits_and_cache
from native_runner import native_runner_tokens

PROMPT = [256, 40, 101, 7, 9]


@pytest.fixture(scope="module")
def checkpoint(hf_checkpoint):
    return hf_checkpoint("bitnet", "packed")


@pytest.fixture(scope="module")
def half(checkpoint, tmp_path_factory):
    return export_onnx(checkpoint, tmp_path_factory.mktemp("kv16") / "art", max_seq_len=64)  # the default: fp16


def test_manifest_and_graph_say_float16(half):
    assert json.loads((half / "manifest.json").read_text())["kv_cache"] == {"update": "in-place", "dtype": "float16",
                                                                           "rounds": "kv"}
    graph = onnx.load(str(half / "model.onnx"), load_external_data=False).graph
    attention = [n for n in graph.node if n.op_type.endswith("Attention")]
    assert attention and all((n.domain, n.op_type) == ("edgebit", "Attention") for n in attention)
    # q, k and v reach it in fp32: nothing in the graph is cast to fp16
    assert not any(n.op_type == "Cast" and any(a.name == "to" and a.i == onnx.TensorProto.FLOAT16
                                               for a in n.attribute) for n in graph.node)
    cache = [i for i in graph.input if i.name.startswith("past_key_values.")]
    assert cache and all(i.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for i in cache)
    assert all(o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16 for o in graph.output
               if o.name.startswith("present."))


def test_logits_and_cache_match_the_fp16_reference(half, checkpoint):
    """Prefill and decode logits equal the fp16-cache reference's (not the fp32 one's: that is farther); the bound
    fp16 buffers hold its keys and values (both fp16 roundings of the same floats, so equal but for a last-bit
    difference upstream)."""
    backend, ref = open_backend(half), ReferenceBackend(checkpoint, 64, kv_dtype="float16")
    assert backend.in_place and backend.kv_dtype == np.float16
    check_logits_and_cache(backend, ref, ReferenceBackend(checkpoint, 64), PROMPT, lambda rows: rows.astype(np.float32))


def test_verify_holds_it_to_the_fp16_reference(half):
    report = verify(half)
    assert report.passed, report
    assert report.top1_agreement == 1.0
    assert report.max_abs_diff < 1e-3 if report.flipped_sequences == 0 else report.exact_fraction >= 0.5


def test_native_runner_and_genai_generate_the_backends_tokens(half, tmp_path):
    import onnxruntime_genai as og

    expected = generate(open_backend(half), PROMPT, 10).generated_ids
    assert native_runner_tokens(half, tmp_path, PROMPT, 10) == expected

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


def test_stock_ops_default_to_the_fp32_cache(checkpoint, tmp_path, cli):
    r = cli("export", "onnx", checkpoint, "-o", tmp_path / "out", "--ops", "standard", "--max-seq-len", "64")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["kv_cache"] == {"update": "concat",
                                                                                       "dtype": "float32"}


def test_head_dim_100_exports_and_verifies(hf_checkpoint, tmp_path, cli):
    """The 1bitLLM 3B's head dim (100: not a multiple of 8, which GroupQueryAttention needed)."""
    ckpt = hf_checkpoint("bitnet", "packed", True, dims=dict(hidden_size=200, num_attention_heads=2,
                                                             num_key_value_heads=2, intermediate_size=540,
                                                             num_hidden_layers=2))
    r = cli("export", "onnx", ckpt, "-o", tmp_path / "out", "--kv-cache", "float16", "--max-seq-len", "64")
    assert r.returncode == 0, r.stderr
    report = verify(tmp_path / "out")
    assert report.passed and report.top1_agreement == 1.0, report


def test_earlier_fp16_artifacts_are_held_to_their_own_rounding(half, checkpoint):
    """A manifest without "rounds" comes from GroupQueryAttention in fp16 (before edgebit.Attention took fp16): its
    reference rounds q and the attention output too, which moves the logits."""
    from edgebit.artifact import reference_kv_dtype

    manifest = json.loads((half / "manifest.json").read_text())
    assert reference_kv_dtype(manifest) == "float16"
    manifest["kv_cache"].pop("rounds")
    assert reference_kv_dtype(manifest) == "float16-qkvo"
    assert reference_kv_dtype({"kv_cache": {"update": "in-place", "dtype": "float32"}}) == "float32"
    kv, qkvo = ReferenceBackend(checkpoint, 64, kv_dtype="float16"), ReferenceBackend(checkpoint, 64,
                                                                                     kv_dtype="float16-qkvo")
    assert np.abs(kv.forward(PROMPT) - qkvo.forward(PROMPT)).max() > 0


@pytest.fixture(scope="module")
def half_pte(checkpoint, tmp_path_factory):
    return export_executorch(checkpoint, tmp_path_factory.mktemp("pte16") / "art", max_seq_len=64)  # the default


def test_pte_fp16_cache_is_held_to_the_fp16_reference(half_pte, checkpoint, tmp_path):
    """`edgebit export executorch --kv-cache float16`: the .pte's cache buffers in fp16 (edgebit::cache_write rounds,
    edgebit::attention widens); its logits follow the fp16-cache reference's, verify passes, and the native runner
    generates the Python backend's tokens from it."""
    assert json.loads((half_pte / "manifest.json").read_text())["kv_cache"] == {
        "update": "in-place", "dtype": "float16", "rounds": "kv"}
    backend, ref = open_backend(half_pte), ReferenceBackend(checkpoint, 64, kv_dtype="float16")
    for step in (PROMPT, [12], [250]):
        assert np.abs(backend.forward(step)[-1] - ref.forward(step)[-1]).max() < 1e-3
    report = verify(half_pte)
    assert report.passed and report.top1_agreement >= 0.99, report
    expected = generate(open_backend(half_pte), PROMPT, 10).generated_ids
    assert native_runner_tokens(half_pte, tmp_path, PROMPT, 10) == expected


def test_pte_fp16_cache_needs_edgebits_ops(checkpoint, tmp_path, cli):
    r = cli("export", "executorch", checkpoint, "-o", tmp_path / "out", "--kv-cache", "float16", "--ops",
            "torchao-8da4w")
    assert r.returncode == 2 and "--kv-cache float16" in r.stderr and "edgebit's ops" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()

