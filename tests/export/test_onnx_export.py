"""ONNX export end to end: the artifact passes onnx.checker, runs in a plain onnxruntime session with our
library registered, matches the reference, and `edgebit run` generates what transformers generates."""

import json
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgebit.backends import open_backend
from edgebit.backends.reference import ReferenceBackend
from edgebit.exporters.onnx.export import export_onnx
from edgebit.verify import verify
from genai_greedy import genai_greedy


@pytest.fixture(scope="module")
def artifacts(hf_checkpoint, tmp_path_factory):
    """(family, form, head, ops) -> exported artifact dir, built once per module."""
    made = {}

    def make(family="bitnet", form="packed", head="fp32", ops="edgebit"):
        key = (family, form, head, ops)
        if key not in made:
            out = tmp_path_factory.mktemp("art") / "artifact"
            made[key] = export_onnx(hf_checkpoint(family, form, family == "bitnet"), out, 64, head, ops)
        return made[key]

    return make


@pytest.mark.parametrize("family,form", [("bitnet", "packed"), ("bitnet", "master"), ("llama", "packed")])
def test_artifact_is_checked_and_runs_in_plain_onnxruntime(artifacts, hf_checkpoint, family, form):
    art = artifacts(family, form)
    manifest = json.loads((art / "manifest.json").read_text())
    onnx.checker.check_model(str(art / "model.onnx"))
    model = onnx.load(str(art / "model.onnx"))
    bitlinear = [n for n in model.graph.node if n.op_type == "BitLinear"]
    assert all(n.domain == "edgebit" for n in bitlinear)
    assert len(bitlinear) == 4 * manifest["config"]["num_layers"]  # qkv, o_proj, gate_up, down_proj
    opts = ort.SessionOptions()
    opts.register_custom_ops_library(str(art / manifest["op_library"]))
    session = ort.InferenceSession(str(art / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    assert {i.name for i in session.get_inputs()} >= {"input_ids", "attention_mask", "position_ids",
                                                      "past_key_values.0.key", "past_key_values.1.value"}
    assert {o.name for o in session.get_outputs()} >= {"logits", "present.0.key", "present.1.value"}


@pytest.mark.parametrize("family,form", [("bitnet", "packed"), ("bitnet", "master"), ("llama", "packed")])
def test_verify_passes_with_fp32_head(artifacts, family, form):
    report = verify(artifacts(family, form))
    assert report.passed, report
    assert report.top1_agreement == 1.0
    # 1e-3 holds up to a sequence's first int8 rounding flip (docs/verify.md), and the flips come late.
    assert report.exact_fraction >= 0.5


def test_int8_head_and_standard_ops_report_their_cost(artifacts):
    for head, ops in (("int8", "edgebit"), ("fp32", "standard")):
        report = verify(artifacts(head=head, ops=ops))
        assert report.passed, (head, ops, report)
        assert report.top1_agreement >= 0.9


def test_edgebit_artifact_updates_its_cache_in_place(artifacts):
    """The edgebit-ops graph attends with edgebit.Attention over one cache buffer (no Concat of the past per
    step); the standard-ops baseline keeps the Concat form it was measured with. Manifest and genai config agree."""
    for ops, update, op_type in (("edgebit", "in-place", "Attention"), ("standard", "concat", "Concat")):
        art = artifacts(ops=ops)
        assert json.loads((art / "manifest.json").read_text())["kv_cache"] == {"update": update, "dtype": "float32"}
        genai = json.loads((art / "genai_config.json").read_text())
        assert genai["search"]["past_present_share_buffer"] == (update == "in-place")
        graph = onnx.load(str(art / "model.onnx"), load_external_data=False).graph
        past = {i.name for i in graph.input if i.name.startswith("past_key_values.")}
        readers = {n.op_type for n in graph.node for i in n.input if i in past}
        assert readers == {op_type}, (ops, readers)


def test_in_place_cache_is_the_bound_buffer(artifacts, hf_checkpoint):
    """The backend binds one [1, kv_heads, max_seq_len, head_dim] buffer per cache tensor as past and present:
    after prefill and a decode step the rows written are the reference's keys, and logits match it."""
    art = artifacts()
    backend, ref = open_backend(art), ReferenceBackend(hf_checkpoint("bitnet", "packed"), 64)
    assert backend.in_place
    prompt = [256, 40, 101, 7, 9]
    for step in (prompt, [12]):
        assert np.abs(backend.forward(step) - ref.forward(step)).max() < 1e-3
    n = len(prompt) + 1
    for layer in range(backend.layers):
        for j, mine in enumerate((ref.cache.k[layer], ref.cache.v[layer])):
            bound = backend.buffers[2 * layer + j].numpy()
            assert bound.shape == (1, backend.kv_heads, backend.max_seq_len, backend.head_dim)
            assert np.abs(bound[:, :, :n] - mine[:, :, :n].numpy()).max() < 1e-4, (layer, j)


def test_prefill_and_decode_logits_match_reference(artifacts, hf_checkpoint):
    art = artifacts()
    backend, ref = open_backend(art, threads=2), ReferenceBackend(hf_checkpoint("bitnet", "packed"), 64)
    prompt = [256, 10, 11, 12, 13]
    assert np.abs(backend.forward(prompt) - ref.forward(prompt)).max() < 1e-3
    for token in (7, 250, 3):
        assert np.abs(backend.forward([token]) - ref.forward([token])).max() < 1e-3


def test_run_generates_transformers_greedy_tokens(artifacts, hf_checkpoint, load_hf, cli):
    art = artifacts("llama", "packed")
    prompt = [256, 10, 20, 30]
    result = cli("run", art, "--prompt-ids", ",".join(map(str, prompt)), "--max-new-tokens", "10", "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    with torch.no_grad():
        expected = load_hf(hf_checkpoint("llama", "packed", False)).generate(
            torch.tensor([prompt]), max_new_tokens=10, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert got["generated_ids"] == expected[0, len(prompt):].tolist()
    assert got["prompt_ids"] == prompt and got["decode_tokens_per_s"] > 0


def test_run_streams_text_with_the_tokenizer(artifacts, cli):
    result = cli("run", artifacts(), "--prompt", "Hello", "--max-new-tokens", "5")
    assert result.returncode == 0, result.stderr
    assert "decode" in result.stderr and "tok/s" in result.stderr


def test_without_the_library_the_error_says_how_to_register_it(artifacts, tmp_path, cli):
    art = shutil.copytree(artifacts(), tmp_path / "art")
    with pytest.raises(Exception, match="BitLinear"):
        ort.InferenceSession(str(art / "model.onnx"), providers=["CPUExecutionProvider"])
    (art / "libedgebit_ort.so").unlink()
    result = cli("run", art, "--prompt-ids", "1,2,3")
    assert result.returncode == 2
    assert "register_custom_ops_library" in result.stderr and "libedgebit_ort.so" in result.stderr


def test_export_refuses_existing_output_and_bad_options(hf_checkpoint, tmp_path, cli):
    ckpt = hf_checkpoint("bitnet", "packed")
    (tmp_path / "out").mkdir()
    result = cli("export", "onnx", ckpt, "-o", tmp_path / "out")
    assert result.returncode == 2 and "already exists" in result.stderr
    result = cli("export", "onnx", ckpt, "-o", tmp_path / "o2", "--head", "fp8")
    assert result.returncode == 2 and "--head" in result.stderr
    assert not (tmp_path / "o2").exists()


def test_onnxruntime_genai_drives_the_artifact_with_our_library(artifacts):
    """The stock onnxruntime-genai runner loads genai_config.json (custom_ops_library inside the model dir)
    and its greedy tokens equal edgebit's backend's."""
    import onnxruntime_genai as og

    from edgebit.generate import generate

    art = artifacts()
    prompt = [256, 40, 101, 7]
    model = og.Model(str(art))
    tokens = genai_greedy(model, prompt, 12)
    assert tokens == generate(open_backend(art), prompt, len(tokens)).generated_ids


def test_dynamic_batch_with_padding_matches_reference(artifacts, hf_checkpoint):
    """Batch 2 in one session run, the shorter row left-padded: each row's logits equal the reference's."""
    from edgebit.model.reference import ReferenceModel
    from edgebit.model.weights import load_model_weights

    art = artifacts()
    manifest = json.loads((art / "manifest.json").read_text())
    cfg = manifest["config"]
    opts = ort.SessionOptions()
    opts.register_custom_ops_library(str(art / manifest["op_library"]))
    session = ort.InferenceSession(str(art / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    rows = [[256, 5, 17, 99, 140], [256, 9, 3]]
    ids = np.array([rows[0], [0, 0] + rows[1]], dtype=np.int64)
    mask = np.array([[1] * 5, [0, 0, 1, 1, 1]], dtype=np.int64)
    positions = np.array([[0, 1, 2, 3, 4], [0, 0, 0, 1, 2]], dtype=np.int64)
    empty = np.zeros((2, cfg["num_kv_heads"], 0, cfg["head_dim"]), np.float32)
    feeds = {"input_ids": ids, "attention_mask": mask, "position_ids": positions}
    for i in range(cfg["num_layers"]):
        feeds[f"past_key_values.{i}.key"] = feeds[f"past_key_values.{i}.value"] = empty
    logits = session.run(["logits"], feeds)[0]
    ref = ReferenceModel(load_model_weights(hf_checkpoint("bitnet", "packed")))
    for row, got in ((rows[0], logits[0]), (rows[1], logits[1, 2:])):
        expected = ref.forward(torch.tensor([row]))[0].numpy()
        assert np.abs(got - expected).max() < 1e-3


@pytest.mark.parametrize("head", ["fp32", "q4"])
def test_logits_to_keep_defaults_to_every_position(artifacts, head):
    """logits_to_keep is an input with a default (every position: what onnxruntime-genai and verify read); fed 1,
    as edgebit's engine does, the logits are the last position's, the same floats, and the caches are unchanged."""
    art = artifacts(head=head)
    manifest = json.loads((art / "manifest.json").read_text())
    opts = ort.SessionOptions()
    opts.register_custom_ops_library(str(art / manifest["op_library"]))
    session = ort.InferenceSession(str(art / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    cfg = manifest["config"]
    empty = np.zeros((1, cfg["num_kv_heads"], 0, cfg["head_dim"]), np.float32)
    feeds = {"input_ids": np.array([[256, 5, 6, 7, 8]]), "attention_mask": np.ones((1, 5), np.int64),
             "position_ids": np.arange(5)[None]}
    for i in range(cfg["num_layers"]):
        feeds[f"past_key_values.{i}.key"] = feeds[f"past_key_values.{i}.value"] = empty
    names = ["logits"] + [o.name for o in session.get_outputs() if o.name != "logits"]
    every = session.run(names, feeds)
    last = session.run(names, {**feeds, "logits_to_keep": np.array([1])})
    assert every[0].shape == (1, 5, cfg["vocab_size"]) and last[0].shape == (1, 1, cfg["vocab_size"])
    assert np.array_equal(last[0][0, 0], every[0][0, -1])
    for a, b in zip(every[1:], last[1:]):
        assert np.array_equal(a, b)
    assert session.run(["logits"], {**feeds, "logits_to_keep": np.array([3])})[0].shape == (1, 3, cfg["vocab_size"])
