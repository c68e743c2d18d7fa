"""`edgebit export gguf` files in upstream llama.cpp itself (llama-cpp-python, which vendors and builds llama.cpp).

llama-cpp-python is an sdist that compiles llama.cpp (~2 h on two shared cores here), so it is not in CI's
dependencies: build it once (`pip wheel --no-deps llama-cpp-python==0.3.36`, docs/weight-layout.md, "GGUF") and
install the wheel to run these; without it they skip, and CI holds the files to llama.cpp's own gguf package
(test_gguf_export.py) instead.

llama.cpp's TQ2_0 kernels quantize activations per 256-weight block (Q8_K) where BitNet quantizes per token, so its
logits are close to edgebit's reference but not equal: held to the same greedy tokens and a tight logit bound.
"""

import numpy as np
import pytest
import torch

llama_cpp = pytest.importorskip("llama_cpp")

PROMPT = [0] + np.random.default_rng(0).integers(3, 300, size=47).tolist()


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBIT_CACHE_DIR", str(tmp_path / "cache"))


def llama_cpp_logits(path, tokens):
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, n_batch=64, logits_all=True, verbose=False, n_threads=1,
                          n_gpu_layers=0)
    llm.eval(tokens)
    return np.array(llm.scores[: len(tokens)], dtype=np.float32)


def reference_logits(model, tokens):
    from edgebit.model.reference import ReferenceModel
    from edgebit.model.weights import load_model_weights

    ref = ReferenceModel(load_model_weights(model))
    return ref.forward(torch.tensor([tokens]), ref.new_cache(1, 64))[0].numpy()


def compare(ours, theirs):
    diff = np.abs(ours - theirs).max() / np.abs(ours).max()
    top1 = float((ours.argmax(-1) == theirs.argmax(-1)).mean())
    corr = float(np.corrcoef(ours.reshape(-1), theirs.reshape(-1))[0, 1])
    print(f"max |diff| / max |logit| {diff:.4f}, top-1 agreement {top1:.3f}, correlation {corr:.6f}")
    return diff, top1, corr


@pytest.mark.parametrize("family,qtype", [("bitnet", "tq2_0"), ("bitnet", "tq1_0"), ("llama-bitnet", "tq2_0")])
def test_llama_cpp_runs_the_export(family, qtype, gguf_checkpoint, tmp_path):
    """SiLU bitnet (the activation every llama.cpp build runs for arch bitnet) and llama with Llama 3 RoPE and
    permuted q/k rows: llama.cpp computes what edgebit's reference computes."""
    from edgebit.exporters.gguf.export import export_gguf

    src = gguf_checkpoint(family, "packed", hidden_act="silu") if family == "bitnet" else \
        gguf_checkpoint(family, "packed")
    path = export_gguf(src, tmp_path / "m.gguf", qtype)
    diff, top1, corr = compare(reference_logits(src, PROMPT), llama_cpp_logits(path, PROMPT))
    # Random weights leave near-ties that the two activation quantizations resolve differently (measured: 0.98 of
    # 48 positions agree for bitnet, 0.94 for llama; logits correlate 0.9995+ either way, 0.72 for a wrong file).
    assert corr > 0.999 and top1 >= 0.75 and diff < 0.05


def test_rows_left_in_hf_order_break_llama(gguf_checkpoint, tmp_path):
    """The q/k permutation is needed: the same llama file with its q/k rows in HF order computes something else in
    llama.cpp (what a reader that skipped the un-permute would hand edgebit's reference)."""
    import gguf

    from edgebit.exporters.gguf.export import export_gguf
    from edgebit.model.gguf.arch import permute_rows

    src = gguf_checkpoint("llama-bitnet", "packed")
    path = export_gguf(src, tmp_path / "m.gguf", "tq2_0")
    reader = gguf.GGUFReader(path, "r+")
    heads = {"attn_q": 4, "attn_k": 2}
    for t in reader.tensors:
        kind = t.name.split(".")[-2]
        if kind in heads:  # undo the export's permutation in place: rows of TQ2_0 bytes move whole
            t.data[...] = permute_rows(np.array(t.data), heads[kind], undo=True)
    reader.data.flush()
    del reader
    _, _, corr = compare(reference_logits(src, PROMPT), llama_cpp_logits(path, PROMPT))
    assert corr < 0.99


def test_llama_cpp_tokenizes_like_the_checkpoint(gguf_checkpoint, tmp_path):
    """A Llama 3-style tokenizer (BitNet 2B4T's kind) exported with the model: llama.cpp's own tokenizer gives the
    checkpoint's ids, and the chat template and BOS/EOS arrive. (A ByteLevel tokenizer with add_prefix_space, as
    `edgebit train` makes, differs in llama.cpp on the first word only: its BPE tokenizer adds no prefix space.)"""
    import json

    from tokenizers import Tokenizer

    from edgebit.exporters.gguf.export import export_gguf

    src = gguf_checkpoint("bitnet", "packed", tokenizer="llama3")
    path = export_gguf(src, tmp_path / "m.gguf", "tq2_0")
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=64, verbose=False, n_threads=1, n_gpu_layers=0)
    ours = Tokenizer.from_file(str(src / "tokenizer.json"))
    for text in ["And God said, Let there be light", "numbers 1234567 and  two spaces\n\nnew lines", "ünïcödé!"]:
        assert llm.tokenize(text.encode(), add_bos=True) == ours.encode(text).ids, text
    template = json.loads((src / "tokenizer_config.json").read_text())["chat_template"]
    assert llm.metadata["tokenizer.chat_template"] == template
    assert (llm.token_bos(), llm.token_eos()) == (0, 1)
