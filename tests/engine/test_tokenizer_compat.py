"""What the stock runners make of a tokenizer.json, measured with their own tokenizers (onnxruntime-genai's, and
ExecuTorch's C++ HF tokenizer that TextLLMRunner uses) against `tokenizers`, and that `edgebit export` warns about
exactly the features they get wrong (exporters/tokenizer_compat.py). The Llama-3 form edgebit trains
(edgebit/train/bpe.py) is read identically by all of them."""

import json
import shutil

import pytest

from edgebit.exporters.tokenizer_compat import tokenizer_warnings

TEXTS = ["And God said", "In the beginning GOD created the heaven, and the earth.", "it's 12345 (verily)"]
LINES = [line.strip() for line in open(__file__.replace("engine/test_tokenizer_compat.py", "train/data/genesis-1-20.txt"))
         if line.strip()]
CONFIG = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
          "add_bos_token": True, "add_eos_token": False}


def _tokenizer(style: str):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    from edgebit.train.bpe import train_bpe

    if style == "llama3":
        return train_bpe(LINES, 290)
    tok = Tokenizer(models.BPE())
    if style == "metaspace":
        tok.pre_tokenizer, tok.decoder, alphabet = pre_tokenizers.Metaspace(), decoders.Metaspace(), []
    else:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=style == "prefix-space")
        tok.decoder, alphabet = decoders.ByteLevel(), pre_tokenizers.ByteLevel.alphabet()
    if style == "lowercase":
        tok.normalizer = normalizers.Lowercase()
    tok.train_from_iterator(LINES, trainers.BpeTrainer(vocab_size=290, special_tokens=["<s>", "</s>"],
                                                       initial_alphabet=alphabet, show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 0)])
    return tok


@pytest.fixture(scope="module")
def og_dir(hf_checkpoint, tmp_path_factory):
    """An ONNX artifact onnxruntime-genai can open, whose tokenizer files each case replaces."""
    from edgebit.exporters.onnx.export import export_onnx

    return export_onnx(hf_checkpoint("bitnet", "packed"), tmp_path_factory.mktemp("og") / "art", 32)


def _runner_ids(og_dir, tokenizer):
    import onnxruntime_genai as og
    from pytorch_tokenizers import CppHFTokenizer

    tokenizer.save(str(og_dir / "tokenizer.json"))
    (og_dir / "tokenizer_config.json").write_text(json.dumps(CONFIG))
    og_tok = og.Tokenizer(og.Model(str(og_dir)))
    og_tok.update_options(add_special_tokens="true")  # onnxruntime-genai's way to the template's BOS
    et_tok = CppHFTokenizer()
    try:
        et_tok.load(str(og_dir / "tokenizer.json"))
    except RuntimeError:  # "Failed to load HF tokenizer": TextLLMRunner would not start
        return [[int(i) for i in og_tok.encode(t)] for t in TEXTS], None
    return ([[int(i) for i in og_tok.encode(t)] for t in TEXTS], [list(et_tok.encode(t, 1, 0)) for t in TEXTS])


# style -> (onnxruntime-genai agrees, ExecuTorch agrees, words the warnings must contain)
CASES = {"llama3": (True, True, []), "prefix-space": (False, True, ["add_prefix_space", "onnxruntime-genai"]),
         "lowercase": (False, False, ["normalizer", "Lowercase", "TextLLMRunner"]),
         "metaspace": (False, False, ["Metaspace", "TextLLMRunner"])}


@pytest.mark.parametrize("style", CASES)
def test_runners_and_warnings_agree(og_dir, tmp_path, style):
    og_ok, et_ok, words = CASES[style]
    tok = _tokenizer(style)
    expected = [tok.encode(t).ids for t in TEXTS]
    og_ids, et_ids = _runner_ids(og_dir, tok)
    assert (og_ids == expected, et_ids == expected) == (og_ok, et_ok), (og_ids, et_ids, expected)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    tok.save(str(ckpt / "tokenizer.json"))
    (ckpt / "tokenizer_config.json").write_text(json.dumps(CONFIG))
    warnings = " ".join(w for w in tokenizer_warnings(ckpt) if not w.startswith("edgebit-runner"))
    for word in words:
        assert word in warnings, warnings
    assert bool(warnings) == bool(words), warnings


def test_missing_add_eos_false_is_named(tmp_path):
    _tokenizer("llama3").save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({k: v for k, v in CONFIG.items() if k != "add_eos_token"}))
    (line,) = tokenizer_warnings(tmp_path)
    assert "add_eos_token" in line and "appends EOS" in line


def test_export_prints_the_warnings(cli, hf_checkpoint, tmp_path):
    ckpt = shutil.copytree(hf_checkpoint("bitnet", "packed"), tmp_path / "ckpt")
    _tokenizer("prefix-space").save(str(ckpt / "tokenizer.json"))
    r = cli("export", "onnx", ckpt, "-o", tmp_path / "art")
    assert r.returncode == 0, r.stderr
    assert any("warning:" in line and "add_prefix_space" in line for line in r.stderr.splitlines()), r.stderr
