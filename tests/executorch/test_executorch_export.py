"""ExecuTorch export end to end: the .pte runs in executorch.runtime with our kernel library, passes `verify`
against the reference (with and without XNNPACK, both weight forms, fp32, int8 and q4 heads), `edgebit run` gives
transformers' greedy tokens, `--profile` names our op, and ExecuTorch's stock LLM runner generates the same
tokens from the same file."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edgebit.backends import open_backend
from edgebit.backends.reference import ReferenceBackend
from edgebit.generate import generate
from edgebit.ops import executorch_library
from edgebit.verify import verify


def test_program_loads_in_executorch_runtime_with_our_library(et_artifact, hf_checkpoint):
    art = et_artifact()
    manifest = json.loads((art / "manifest.json").read_text())
    # The kernels the program calls, read off its execution plan: every linear of the BitNet fixture has an RMSNorm in
    # front (block norms and sub-norms), fused, so there is no plain bitlinear; the down projection takes the ReLU^2
    # gate product too (relu2_bitlinear); RoPE is edgebit's too.
    assert manifest["target"] == "executorch" and manifest["op_names"] == [
        "edgebit::rms_bitlinear.out", "edgebit::rope.out", "edgebit::cache_write.out", "edgebit::attention.out",
        "edgebit::relu2_bitlinear.out"]
    assert set(manifest["files"]) >= {"program.pte", "libedgebit_executorch.so", "tokenizer.json"}
    executorch_library.load(art / manifest["op_library"])
    from executorch.runtime import Runtime

    program = Runtime.get().load_program(str(art / "program.pte"))
    assert {"forward", "get_max_seq_len", "use_kv_cache", "enable_dynamic_shape", "get_eos_ids"} <= program.method_names
    assert program.load_method("get_max_seq_len").execute([])[0] == 64
    assert program.load_method("get_eos_ids").execute([]) == [257]
    (logits,) = program.load_method("forward").execute([torch.tensor([[256, 5, 6]]), torch.arange(3)])
    # The last position's logits only (what ExecuTorch's LLM runner samples), as the reference computes them.
    assert manifest["logits"] == "last" and logits.shape == (1, 1, 300)
    reference = ReferenceBackend(hf_checkpoint("bitnet", "packed", True), 64).forward([256, 5, 6])
    assert np.abs(logits[0].numpy() - reference[-1:]).max() < 0.1


@pytest.mark.parametrize("form", ["packed", "master"])
def test_verify_passes_with_fp32_head(et_artifact, form):
    report = verify(et_artifact(form=form))
    assert report.passed, report
    assert report.top1_agreement == 1.0 and report.perplexity_rel_diff < 1e-4
    # ExecuTorch's float kernels round a few activations onto the other side of an int8 step (edgebit/verify.py,
    # TARGET_THRESHOLDS): bounded, but above the 1e-3 the ONNX artifact meets.
    assert report.max_abs_diff < 0.1


def _execution_plan(art: Path):
    from executorch.exir._serialize._program import deserialize_pte_binary

    program = deserialize_pte_binary((art / "program.pte").read_bytes()).program
    return next(p for p in program.execution_plan if p.name == "forward")


def test_xnnpack_takes_the_float_parts_and_our_op_stays_ours(et_artifact):
    art = et_artifact(xnnpack=True)
    plan = _execution_plan(art)
    assert [d.id for d in plan.delegates] and all(d.id == "XnnpackBackend" for d in plan.delegates)
    ops = {op.name for op in plan.operators}
    assert "edgebit::rms_bitlinear" in ops  # every linear of the fixture has its RMSNorm fused in
    report = verify(art)
    assert report.passed and report.top1_agreement == 1.0, report


def test_kv_cache_is_written_in_place(et_artifact):
    """The cache buffers are written by edgebit::cache_write on the buffers themselves: no index_put into a new
    tensor and no write-back copy_ of every layer's whole cache per step (what index_copy_ became)."""
    ops = {op.name for op in _execution_plan(et_artifact()).operators}
    assert "edgebit::cache_write" in ops
    assert not ops & {"aten::index_put", "aten::index_put_", "aten::copy_", "aten::index_copy"}, ops


def test_attention_reads_the_cache_through_our_op(et_artifact):
    """Attention is edgebit::attention on the cache buffers (only the positions each query sees), not a masked
    product with the whole buffer: no bmm or softmax left in the program."""
    ops = {op.name for op in _execution_plan(et_artifact()).operators}
    assert "edgebit::attention" in ops
    assert not ops & {"aten::bmm", "aten::_softmax", "aten::softmax", "aten::where"}, ops


def test_position_past_the_cache_fails_the_call_not_the_process(et_artifact):
    """input_pos comes from whoever runs the program: a position past max_seq_len (64) is refused by cache_write
    with a clear error before anything is written, and the program then still computes what it did before."""
    art = et_artifact()
    executorch_library.load(art / "libedgebit_executorch.so")
    from executorch.runtime import Runtime

    forward = Runtime.get().load_program(str(art / "program.pte")).load_method("forward")
    (before,) = forward.execute([torch.tensor([[256, 5, 6]]), torch.arange(3)])
    with pytest.raises(RuntimeError):
        forward.execute([torch.tensor([[7]]), torch.tensor([64])])
    (again,) = forward.execute([torch.tensor([[256, 5, 6]]), torch.arange(3)])
    assert torch.equal(before, again)


@pytest.mark.parametrize("head", ["int8", "q4"])
@pytest.mark.parametrize("xnnpack", [False, True])
def test_quantized_head(et_artifact, xnnpack, head):
    """edgebit::qlinear computes the head with or without XNNPACK; the embedding dequantizes the same rows. Held to
    the reference computing that head (top-1 100%), with the head's cost against fp32 reported."""
    art = et_artifact(head=head, xnnpack=xnnpack)
    assert (art / "program.pte").stat().st_size < (et_artifact(xnnpack=xnnpack) / "program.pte").stat().st_size
    plan = _execution_plan(art)
    assert "edgebit::qlinear" in {op.name for op in plan.operators}
    report = verify(art)
    assert report.passed and report.top1_agreement == 1.0 and report.head == head, report
    assert report.head_perplexity_rel_diff is not None and report.head_top1_agreement is not None


def test_run_generates_transformers_greedy_tokens(et_artifact, hf_checkpoint, load_hf, cli):
    art = et_artifact()
    prompt = [256, 10, 20, 30]
    result = cli("run", art, "--prompt-ids", ",".join(map(str, prompt)), "--max-new-tokens", "10", "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    with torch.no_grad():
        expected = load_hf(hf_checkpoint("bitnet", "packed")).generate(
            torch.tensor([prompt]), max_new_tokens=10, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert got["generated_ids"] == expected[0, len(prompt):].tolist()
    assert got["backend"].startswith("executorch") and got["decode_tokens_per_s"] > 0


def test_profile_lists_our_op(et_artifact, tmp_path, cli):
    result = cli("run", et_artifact(), "--prompt-ids", "256,1,2,3", "--max-new-tokens", "4", "--profile",
                 "--etdump", tmp_path / "run.etdp", "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert (tmp_path / "run.etdp").stat().st_size > 0
    calls = {row["op"]: row for row in got["ops"]}
    # qkv, o and gate/up with their RMSNorms fused, down with the ReLU^2 gate product and its sub-norm;
    # 2 layers, prefill + 3 decode steps
    assert calls["edgebit::rms_bitlinear.out"]["calls"] == 3 * 2 * 4
    assert calls["edgebit::relu2_bitlinear.out"]["calls"] == 1 * 2 * 4
    assert 0 < calls["edgebit::rms_bitlinear.out"]["share"] < 1
    text = cli("run", et_artifact(), "--prompt-ids", "256,1,2", "--max-new-tokens", "2", "--profile",
               "--etdump", tmp_path / "b.etdp")
    assert text.returncode == 0 and "edgebit::rms_bitlinear.out" in text.stderr


def test_missing_library_says_so(et_artifact, tmp_path, cli):
    art = shutil.copytree(et_artifact(), tmp_path / "art")
    (art / "libedgebit_executorch.so").unlink()
    result = cli("run", art, "--prompt-ids", "1,2,3")
    assert result.returncode == 2
    assert "libedgebit_executorch.so: missing" in result.stderr and "RTLD_GLOBAL" in result.stderr


def test_export_cli_refuses_bad_options(hf_checkpoint, tmp_path, cli):
    result = cli("export", "executorch", hf_checkpoint("bitnet", "packed"), "-o", tmp_path / "o", "--head", "fp8")
    assert result.returncode == 2 and "--head" in result.stderr
    assert not (tmp_path / "o").exists()


RUNNER = Path(__file__).with_name("text_llm_runner_probe.py")


def test_stock_executorch_llm_runner_generates_the_same_tokens(et_artifact, tmp_path):
    """TextLLMRunner (the C++ runner behind Android's LlmModule) on the same .pte with our library loaded.
    Its Python token_callback only takes whole UTF-8 pieces, and a random model emits arbitrary byte tokens,
    so this copy of the artifact gets a tokenizer whose every token is one printable character: each piece
    then names its token id exactly."""
    pytest.importorskip("executorch.extension.llm.runner")
    from tokenizers import Tokenizer, models

    art = shutil.copytree(et_artifact(), tmp_path / "art")
    vocab = {chr(0x100 + i): i for i in range(300)}
    vocab["<s>"], vocab["</s>"] = 256, 257
    del vocab[chr(0x100 + 256)], vocab[chr(0x100 + 257)]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.add_special_tokens(["<s>", "</s>"])
    tokenizer.save(str(art / "tokenizer.json"))
    prompt_ids = [10, 20, 30, 40]
    out = subprocess.run([sys.executable, str(RUNNER), str(art), "".join(chr(0x100 + i) for i in prompt_ids), "12"],
                         capture_output=True, text=True, timeout=120, env={**os.environ})
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["prompt_tokens"] == len(prompt_ids)  # this runner adds no BOS without a post-processor
    runner_ids = [vocab[p] for p in got["pieces"]]
    expected = generate(open_backend(et_artifact()), prompt_ids, len(runner_ids), stop_ids=(257,)).generated_ids
    assert runner_ids == expected and len(runner_ids) >= 1
