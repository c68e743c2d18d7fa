"""The models edgebit ships (bitnet-kjv-small, ternary, and its binary twin): in the installed package, small,
loadable, they write readable text, and their cards' held-out perplexities (binary vs ternary) are reproduced."""

import json
import re
import shutil

import pytest
import torch

from edgebit.model.shipped import SHIPPED_MODELS, default_model_path, shipped_model_path

FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "MODEL_CARD.md")


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_shipped_files_are_installed_and_small(name):
    path = shipped_model_path(name)
    assert "site-packages" in str(path) or "dist-packages" in str(path)  # the wheel carries them
    for name in FILES:
        assert (path / name).is_file(), name
    assert sum(f.stat().st_size for f in path.iterdir()) < 15_000_000


@pytest.fixture(scope="module", autouse=True)
def unpack_once():
    """The reference model unpacks every ternary weight on every call (it is written to be read, not to be
    fast); here each weight is unpacked once and reused, which changes no value and cuts the test time."""
    from edgebit.model import reference

    cache = {}
    original = reference.unpack_ternary

    def unpack(packed, k):
        # The cache holds `packed` itself, so its memory cannot be freed and reused by another model's tensor
        # with the same address and shape (the two shipped models are loaded one after the other).
        key = (packed.data_ptr(), tuple(packed.shape), k)
        if key not in cache:
            cache[key] = (packed, original(packed, k))
        return cache[key][1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(reference, "unpack_ternary", unpack)
        yield


@pytest.fixture(scope="module")
def shipped():
    from edgebit.backends.reference import ReferenceBackend
    from edgebit.tokenizer import load_tokenizer

    path = default_model_path()
    return load_tokenizer(path), ReferenceBackend(path, 512)


def generate(backend, ids, n, temperature=0.0, top_p=1.0, seed=0, stop_ids=()):
    from edgebit.generate import Sampling
    from edgebit.generate import generate as run

    return run(backend, ids, n, Sampling(temperature, top_p, seed), stop_ids).generated_ids


@pytest.mark.parametrize("prompt", ["And God said", "The LORD is my shepherd"])
def test_greedy_text_is_words_not_noise(shipped, prompt):
    assert_words(*shipped, prompt)


def test_binary_greedy_text_is_words_not_noise():
    from edgebit.backends.reference import ReferenceBackend
    from edgebit.tokenizer import load_tokenizer

    path = shipped_model_path("bitnet-kjv-small-binary")
    assert_words(load_tokenizer(path), ReferenceBackend(path, 512), "And God said")


def assert_words(tok, model, prompt):
    ids = tok.encode(prompt).ids
    new = generate(model, ids, 40, stop_ids=model.model.cfg.eos_token_ids)
    # Greedy decoding of a 4M-parameter model falls into a phrase loop within a sentence or two ("and thy
    # servant, and thy servant"): a loop of a phrase is allowed, one token (or two) over and over is not.
    assert len(set(new)) >= 6
    words = re.findall(r"[A-Za-z]+", tok.decode(new))
    assert len(words) >= 15
    # A word is known if the BPE vocabulary (trained on the KJV) holds it whole: random token soup would
    # mostly be word fragments.
    vocab = tok.get_vocab()
    known = [w for w in words if "\u0120" + w in vocab or "\u0120" + w.lower() in vocab]
    assert len(known) >= 0.8 * len(words), tok.decode(new)


def test_top_p_sampling_is_seeded(shipped):
    tok, model = shipped
    ids = tok.encode("In the beginning").ids
    a = generate(model, ids, 20, temperature=0.8, top_p=0.9, seed=3)
    assert len(set(a)) >= 12  # sampled text does not loop
    assert a == generate(model, ids, 20, temperature=0.8, top_p=0.9, seed=3)
    assert a != generate(model, ids, 20, temperature=0.8, top_p=0.9, seed=4)


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_model_card_perplexity_is_reproduced(name):
    """`edgebit perplexity [NAME]` (the reference model on the shipped files) gives what training reported, and
    both cards give both models' figures (binary vs ternary)."""
    from edgebit.train.evaluate import heldout_perplexity

    assert shutil.which("bible"), "needs the KJV text: apt-get install bible-kjv bible-kjv-text (scripts/setup.sh)"
    path = shipped_model_path(name)
    trained = json.loads((path / "training.json").read_text())
    got = heldout_perplexity(path, "kjv", [], trained["options"]["seq_len"])
    assert got["heldout_tokens"] // trained["options"]["seq_len"] > 0
    assert got["heldout_perplexity"] == pytest.approx(trained["heldout_perplexity"], rel=2e-3)
    assert f"{trained['heldout_perplexity']:.2f}" in (path / "MODEL_CARD.md").read_text()
    for other in SHIPPED_MODELS:
        figure = json.loads((shipped_model_path(other) / "training.json").read_text())["heldout_perplexity"]
        assert f"{figure:.2f}" in (path / "MODEL_CARD.md").read_text(), (name, other)


def test_perplexity_prices_the_kv_cache(cli):
    """`edgebit perplexity --kv-cache float16|int8`: the shipped model's held-out perplexity with its keys and values
    rounded as those artifacts' caches hold them; each moves it, by well under 1% (docs/performance.md)."""
    assert shutil.which("bible"), "needs the KJV text: apt-get install bible-kjv bible-kjv-text (scripts/setup.sh)"
    got = {}
    for kv in ("float32", "float16", "int8"):
        r = cli("perplexity", "--kv-cache", kv, "--json")
        assert r.returncode == 0, r.stderr
        got[kv] = json.loads(r.stdout)
        assert got[kv]["kv_cache"] == kv
    for kv in ("float16", "int8"):
        assert got[kv]["heldout_loss"] != got["float32"]["heldout_loss"], kv
        assert got[kv]["heldout_perplexity"] == pytest.approx(got["float32"]["heldout_perplexity"], rel=5e-3), kv
