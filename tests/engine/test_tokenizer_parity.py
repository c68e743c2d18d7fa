"""The engine's C++ tokenizer (libedgebit_tokenizer.so) gives `tokenizers`' ids and text on Llama-3 and GPT-2 style
tokenizer.json files built here and on the shipped model's, and refuses files it cannot honour."""

import json
import random

import pytest
from tokenizers import Tokenizer

from edgebit.errors import EdgebitError
from edgebit.model.shipped import default_model_path
from edgebit.native_tokenizer import NativeTokenizer


def _all(trained):
    return {**trained, "shipped": default_model_path() / "tokenizer.json"}


def test_ids_and_text_equal_tokenizers_on_the_corpus(trained_tokenizers, corpus):
    for style, path in _all(trained_tokenizers).items():
        ours, ref = NativeTokenizer(path), Tokenizer.from_file(str(path))
        for text in corpus + ["\n".join(corpus)]:
            for special in (True, False):
                want = ref.encode(text, add_special_tokens=special).ids
                assert ours.encode(text, special) == want, (style, special, text[:40])
                assert ours.decode(want) == ref.decode(want, skip_special_tokens=True), (style, text[:40])
                assert ours.decode(want, False) == ref.decode(want, skip_special_tokens=False), (style, text[:40])


def test_ids_equal_tokenizers_on_random_mixtures(trained_tokenizers):
    """Random strings over the characters where the split patterns branch (apostrophes, case, spaces of every
    kind, digits, letters of several scripts, emoji, combining marks, special tokens)."""
    alphabet = list("aZ9 '\t\n\r.,!?-_()<>|sStTlLdDmMvVrReE") + [
        "<|eot_id|>", "<|begin_of_text|>", "é", "ſ", "日", "😀", "١", "²", "\u00a0", "\u3000", "\x0b", "\x85",
        "\u2028", "Ⅻ", "\u200b", "ǅ", "\u0301", "\u0323", "\u0302", "\u212b", "\u0958", "\u1100", "\u1161",
        "\u11a8", "\uac00", "  ", "    ", "|||IP_ADDRESS|||", "<|endoftext|>"]
    rng = random.Random(0)
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(600)]
    for style, path in _all(trained_tokenizers).items():
        ours, ref = NativeTokenizer(path), Tokenizer.from_file(str(path))
        bad = [t for t in texts if ours.encode(t) != ref.encode(t).ids]
        assert not bad, (style, bad[:3])


def test_lossy_decoding_matches_tokenizers_on_broken_utf8(trained_tokenizers):
    """Byte tokens that cut characters: one U+FFFD per maximal invalid subpart, as from_utf8_lossy."""
    path = trained_tokenizers["gpt2"]
    ours, ref = NativeTokenizer(path), Tokenizer.from_file(str(path))
    rng = random.Random(1)
    byte_ids = [ref.encode(chr(c) if c < 128 else "é日😀"[c % 3]).ids for c in range(200)]
    for _ in range(300):
        ids = [i for ids in rng.sample(byte_ids, 6) for i in ids]
        ids = ids[rng.randint(0, 2):]
        assert ours.decode(ids) == ref.decode(ids, skip_special_tokens=True), ids


def _variant(src, tmp_path, name, edit):
    doc = json.loads(src.read_text())
    edit(doc)
    out = tmp_path / f"{name}.json"
    out.write_text(json.dumps(doc))
    return out


@pytest.mark.parametrize("name, edit, expect", [
    ("wordpiece", lambda d: d["model"].update(type="WordPiece"), "model type 'WordPiece' is not supported"),
    ("metaspace", lambda d: d.update(pre_tokenizer={"type": "Metaspace", "replacement": "▁"}),
     "pre_tokenizer 'Metaspace' is not supported"),
    ("regex", lambda d: d["pre_tokenizer"]["pretokenizers"][0]["pattern"].update(Regex=r"\w+|\s+"),
     "Split pattern is not one the engine knows"),
    ("normalizer", lambda d: d.update(normalizer={"type": "NFKC"}), "normalizer 'NFKC' is not supported"),
    ("decoder", lambda d: d.update(decoder=None), "decoder must be ByteLevel"),
    ("merge", lambda d: d["model"]["merges"].append(["zzz", "qqq"]), "uses a token outside the vocab"),
    ("byte_fallback", lambda d: d["model"].update(byte_fallback=True), "byte_fallback is not supported"),
])
def test_unsupported_tokenizers_are_refused_at_load(trained_tokenizers, tmp_path, name, edit, expect):
    path = _variant(trained_tokenizers["llama3"], tmp_path, name, edit)
    with pytest.raises(EdgebitError) as e:
        NativeTokenizer(path)
    assert str(path) in str(e.value) and expect in str(e.value) and "\n" not in str(e.value)


def test_corrupt_missing_and_non_utf8_files(trained_tokenizers, tmp_path):
    text = trained_tokenizers["llama3"].read_bytes()
    cases = {"truncated.json": text[: len(text) // 2], "latin1.json": text.replace(b'"', b'"\xff', 1),
             "array.json": b"[1, 2]"}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    for name, expect in (("truncated.json", "invalid JSON"), ("latin1.json", "not UTF-8"),
                         ("array.json", "not a tokenizer.json object"), ("missing.json", "cannot read")):
        with pytest.raises(EdgebitError) as e:
            NativeTokenizer(tmp_path / name)
        assert name in str(e.value) and expect in str(e.value), str(e.value)


def test_invalid_utf8_text_is_an_error(trained_tokenizers):
    ours = NativeTokenizer(trained_tokenizers["llama3"])
    with pytest.raises(EdgebitError, match="not valid UTF-8"):
        ours.encode_bytes(b"ok \xff\xfe")
    with pytest.raises(EdgebitError, match="outside the vocabulary"):
        ours.decode([10**6])


def test_bench_tokenizer_runs_and_checks_ids(cli):
    r = cli("bench", "tokenizer", "--megabytes", "0.05", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["mismatched_lines"] == 0 and out["tokens"] > 1000 and out["speedup_vs_tokenizers"] > 0


def test_nfc_matches_tokenizers_on_every_code_point(trained_tokenizers):
    """GPT-NeoX's NFC normalizer through the engine (runtime_ops/engine/normalize.cpp, tables from Python's Unicode
    14 data) on every assigned code point, alone and followed by combining marks that reorder and compose."""
    import unicodedata

    path = trained_tokenizers["gpt-neox"]
    ours, ref = NativeTokenizer(path), Tokenizer.from_file(str(path))
    chars = [chr(c) for c in range(0x80, 0x110000)
             if not 0xD800 <= c <= 0xDFFF and unicodedata.category(chr(c)) not in ("Cn", "Co", "Cs")]
    marks = ["\u0323\u0301", "\u0301\u0323", "\u0308", "\u1161\u11a8", "\u0f72\u0f71", ""]
    texts = ["".join(c + marks[i % len(marks)] for i, c in enumerate(chars[j:j + 300]))
             for j in range(0, len(chars), 300)]
    bad = [t for t in texts if ours.encode(t, False) != ref.encode(t, add_special_tokens=False).ids]
    assert not bad, [f"U+{ord(bad[0][0]):04X}.."]
