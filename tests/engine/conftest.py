"""Fixtures for the engine tests: the host bundle (bin/edgebit-runner + lib/), the shipped model exported to ONNX
and .pte, a tiny checkpoint with a chat template, and the Llama-3 / GPT-2 style tokenizers the tests train with
`tokenizers` itself (no download)."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from edgebit.train.bpe import LLAMA3_SPLIT  # noqa: E402  (the one pattern edgebit trains and the engine reads)

# BitNet b1.58 2B4T's template (tokenizer_config.json of microsoft/bitnet-b1.58-2B-4T).
BITNET_2B4T_TEMPLATE = ("{% for message in messages %}{{ message['role'] | capitalize + ': ' + message['content'] | trim"
                        " + '<|eot_id|>' }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}")

# Text that exercises the split patterns: scripts, emoji (with joiners and modifiers), digit and whitespace runs,
# contractions in both cases, special tokens inside text, odd Unicode spaces.
CORPUS = [
    "Hello world! It's a test, isn't it? They'll've WE'RE I'M you'D ſ 'S don’t",
    "Numbers: 1234567890 3.14159 1,000,000 ١٢٣٤٥ 二〇二六 ½ ² Ⅻ",
    "Whitespace   runs\t\t tabs\n\n\nnewlines \r\n crlf    \n  trailing   ",
    "日本語のテキストです。中文文本。한국어 텍스트. Русский текст. Ελληνικά. עברית. العربية. हिन्दी ไทย",
    "Emoji 😀👍🏽 🇫🇷 👨‍👩‍👧‍👦 and symbols ©®™ — “quotes” «guillemets» … e\u0301",
    "code: def f(x):\n    return x**2  # comment\n\tif(a<b){c++;}",
    "<|begin_of_text|>System: be nice<|eot_id|>User: hi<|eot_id|>Assistant:",
    "  leading spaces and <|eot_id|>  spaces around <|eot_id|>specials",
    "\x0b\x0c\x85 \u00a0 \u3000 \u2028 odd spaces \u200b zero width",
    "a" * 300 + " " + "9" * 50 + " " * 40 + "!" * 30,
    "",
    "ÀÉÎÕÜ àéîõü ß ẞ ŉ ǅ Ǆ ǆ",
    # NFC at work: decomposed letters compose, marks reorder, a composition exclusion stays decomposed, Hangul
    # jamo compose to syllables, the angstrom sign becomes Å
    "Cafe\u0301 A\u030a \u212b e\u0323\u0302 \u1e0b\u0323 \u0958 \u1100\u1161\u11a8 \uac00\u11a8 \u0f71\u0f72",
    "runs of spaces:  two   three    four        eight                          twenty-six  then |||IP_ADDRESS|||",
]


def train_tokenizer(path: Path, style: str) -> Path:
    """A byte-level BPE tokenizer.json in the style of Llama 3 (Split + ByteLevel, ignore_merges, BOS template),
    GPT-2 (ByteLevel regex), GPT-2 with a prefix space, or GPT-NeoX / OLMo (NFC, whitespace-run added tokens
    matched after normalization: tests/helpers/olmo_fixtures.py), trained on CORPUS."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    if style == "gpt-neox":
        from olmo_fixtures import gpt_neox_tokenizer

        return gpt_neox_tokenizer(path, CORPUS * 20, 800)

    byte_level = pre_tokenizers.ByteLevel
    if style == "llama3":
        tok = Tokenizer(models.BPE(ignore_merges=True))
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
            byte_level(add_prefix_space=False, use_regex=False)])
    else:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = byte_level(add_prefix_space=style == "gpt2-prefix")
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"]
    trainer = trainers.BpeTrainer(vocab_size=800, special_tokens=specials, initial_alphabet=byte_level.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(CORPUS * 20, trainer)
    if style == "llama3":
        tok.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A", special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])
    tok.save(str(path))
    return path


@pytest.fixture(scope="session")
def corpus():
    return CORPUS

@pytest.fixture(scope="session")
def trained_tokenizers(tmp_path_factory):
    d = tmp_path_factory.mktemp("tokenizers")
    return {style: train_tokenizer(d / f"{style}.json", style)
            for style in ("llama3", "gpt2", "gpt2-prefix", "gpt-neox")}


@pytest.fixture(scope="session")
def host_bundle():
    from edgebit.profile.bundle import build_bundle

    return build_bundle("host").path


@pytest.fixture(scope="session")
def runner(host_bundle):
    """runner(*args, input=None) -> CompletedProcess of the host bundle's bin/edgebit-runner."""
    def run(*args, input=None, timeout=120):
        return subprocess.run([str(host_bundle / "bin" / "edgebit-runner"), *map(str, args)], input=input,
                              capture_output=True, text=True, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def int8_artifacts(hf_checkpoint, tmp_path_factory):
    """int8_artifacts(dims, name) -> {"onnx": dir, "executorch": dir}: a tiny packed BitNet checkpoint of those dims
    exported to ONNX (edgebit's ops) and .pte, both with the int8 head and context 64."""
    def make(dims: dict, name: str) -> dict:
        from edgebit.exporters.executorch.export import export_executorch
        from edgebit.exporters.onnx.export import export_onnx

        ckpt = hf_checkpoint("bitnet", "packed", dims=dims)
        d = tmp_path_factory.mktemp(name)
        return {"onnx": export_onnx(ckpt, d / "onnx", 64, "int8", "edgebit"),
                "executorch": export_executorch(ckpt, d / "pte", 64, head="int8")}

    return make


@pytest.fixture(scope="session")
def shipped_artifacts(tmp_path_factory, cli):
    """The shipped model exported to ONNX and to .pte (context 96, so context limits are quick to reach)."""
    d = tmp_path_factory.mktemp("shipped")
    for target in ("onnx", "executorch"):
        r = cli("export", target, "-o", d / target, "--max-seq-len", "96", timeout=600)
        assert r.returncode == 0, r.stderr
    return {"onnx": d / "onnx", "executorch": d / "executorch"}


@pytest.fixture(scope="session")
def chat_checkpoint(hf_checkpoint, tmp_path_factory):
    """The tiny random checkpoint with a chat template: <|eot_id|> as a special token (id 258) and 2B4T's
    template in tokenizer_config.json."""
    from edgebit.tokenizer import byte_level_tokenizer

    d = tmp_path_factory.mktemp("chat") / "ckpt"
    shutil.copytree(hf_checkpoint("bitnet", "packed"), d)
    tok = byte_level_tokenizer(300)
    tok.add_special_tokens(["<|eot_id|>"])
    assert tok.token_to_id("<|eot_id|>") == 258
    tok.save(str(d / "tokenizer.json"))
    (d / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "<s>", "eos_token": "</s>", "chat_template": BITNET_2B4T_TEMPLATE,
        "tokenizer_class": "PreTrainedTokenizerFast"}))
    return d


@pytest.fixture(scope="session")
def chat_artifact(chat_checkpoint, tmp_path_factory):
    """The tiny chat checkpoint exported to ONNX (context 128: its byte-level tokens are about one a character)."""
    from edgebit.exporters.onnx.export import export_onnx

    return export_onnx(chat_checkpoint, tmp_path_factory.mktemp("chat-onnx") / "onnx", 128, "fp32", "edgebit")


@pytest.fixture(scope="session")
def address_bundle():
    """The host bundle built with AddressSanitizer (LeakSanitizer included) around every native part."""
    from edgebit.profile.bundle import build_bundle

    return build_bundle("host", sanitize="address").path


@pytest.fixture(scope="session")
def thread_bundle():
    """The host bundle built with ThreadSanitizer, with bin/edgebit-engine-stress."""
    from edgebit.profile.bundle import build_bundle

    return build_bundle("host", sanitize="thread").path
