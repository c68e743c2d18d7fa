"""An OLMo-Bitnet checkpoint (hf_olmo layout, tests/helpers/olmo_fixtures.py) with a GPT-NeoX-structured tokenizer
(NFC normalizer, whitespace-run added tokens, OLMo's PII tokens) the whole way: its ONNX and .pte exports verify,
and their greedy tokens from a text prompt equal the independent implementation's (transformers' Olmo with
transformers' BitNet linears) through `edgebit run` and through the native runner, whose C++ tokenizer gives the
prompt the ids `tokenizers` gives it; both artifacts profile."""

import json

import pytest
import torch
from tokenizers import Tokenizer

# NFC composes "e" + U+0301, runs of spaces are GPT-NeoX's added whitespace tokens
PROMPT = "Cafe\u0301 and  the   naive  words of the text"
N = 12


@pytest.fixture(scope="module")
def olmo(olmo_checkpoint, trained_tokenizers):
    tok = trained_tokenizers["gpt-neox"]
    vocab = Tokenizer.from_file(str(tok)).get_vocab_size()
    eos = Tokenizer.from_file(str(tok)).token_to_id("|||IP_ADDRESS|||")  # OLMo's EOS, as in its tokenizer
    rows = -(-vocab // 128) * 128  # OLMo pads the embedding rows to a multiple of 128
    return olmo_checkpoint(tokenizer=tok, embed_std=0.05, vocab_size=vocab, embedding_size=rows,
                           eos_token_id=eos)


@pytest.fixture(scope="module")
def want(olmo, olmo_independent):
    """(prompt ids, greedy tokens) of the independent implementation, the prompt encoded by `tokenizers`."""
    tok = Tokenizer.from_file(str(olmo / "tokenizer.json"))
    ids = tok.encode(PROMPT).ids
    assert {tok.token_to_id("  "), tok.token_to_id("   ")} <= set(ids)  # GPT-NeoX's added whitespace tokens
    with torch.no_grad():
        prompt = torch.tensor([ids])
        out = olmo_independent(olmo).generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=N,
                                              do_sample=False, eos_token_id=None, pad_token_id=1)
    return ids, out[0, len(ids):].tolist()


@pytest.fixture(scope="module")
def artifacts(olmo, cli, tmp_path_factory):
    d = tmp_path_factory.mktemp("olmo-art")
    for target in ("onnx", "executorch"):
        r = cli("export", target, olmo, "-o", d / target, "--max-seq-len", "64", timeout=600)
        assert r.returncode == 0, r.stderr
    return {"onnx": d / "onnx", "executorch": d / "executorch"}


@pytest.mark.parametrize("target", ["onnx", "executorch"])
def test_exports_verify_and_reproduce_the_independent_tokens(artifacts, want, cli, runner, target, tmp_path):
    art = artifacts[target]
    r = cli("verify", art, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["passed"] and report["top1_agreement"] == 1.0, report

    ids, tokens = want
    r = cli("run", art, "--prompt", PROMPT, "--max-new-tokens", N, "--threads", "1", "--json")
    assert r.returncode == 0, r.stderr
    ran = json.loads(r.stdout[r.stdout.index("{"):])
    assert ran["prompt_ids"] == ids and ran["generated_ids"] == tokens

    r = runner(art, "--prompt", PROMPT, "--max-new-tokens", N, "--threads", "1", "--json")
    assert r.returncode == 0, r.stderr
    native = json.loads(r.stdout)
    assert native["prompt_ids"] == ids and native["generated_ids"] == tokens and native["text"] == ran["text"]

    r = cli("profile", art, "--prompt-len", "8", "--gen-len", "4", "--runs", "1", "--threads", "1",
            "--json", tmp_path / "p.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "p.json").read_text())["decode_tokens_per_s"] > 0
