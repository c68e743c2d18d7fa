"""bin/edgebit-runner of a bundle speaks text: the shipped model's greedy text equals `edgebit run`'s for the ONNX
and the .pte artifact, natively and in the aarch64 bundle under qemu-aarch64; streamed text never splits a UTF-8
character; bad input is one clear line."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROMPT = "And God said"
N = "24"


@pytest.fixture(scope="module")
def python_run(shipped_artifacts, cli):
    """`edgebit run ARTIFACT --prompt PROMPT --json` per target: what the runner must reproduce."""
    out = {}
    for target, art in shipped_artifacts.items():
        r = cli("run", art, "--prompt", PROMPT, "--max-new-tokens", N, "--threads", "1", "--json")
        assert r.returncode == 0, r.stderr
        out[target] = json.loads(r.stdout[r.stdout.index("{"):])
    return out


@pytest.mark.parametrize("target", ["onnx", "executorch"])
def test_runner_text_equals_edgebit_run(shipped_artifacts, python_run, runner, target):
    r = runner(shipped_artifacts[target], "--prompt", PROMPT, "--max-new-tokens", N, "--threads", "1", "--json")
    assert r.returncode == 0, r.stderr
    got, want = json.loads(r.stdout), python_run[target]
    assert got["prompt_ids"] == want["prompt_ids"] and got["generated_ids"] == want["generated_ids"]
    assert got["text"] == want["text"] and got["text"].strip()
    assert got["runtime"] == {"onnx": "onnxruntime", "executorch": "executorch"}[target]
    assert got["prefill_tokens_per_s"] > 0 and got["decode_tokens_per_s"] > 0
    # Without --json the same text streams to stdout and the speed goes to stderr.
    r = runner(shipped_artifacts[target], "--prompt", PROMPT, "--max-new-tokens", N, "--threads", "1")
    assert r.returncode == 0 and r.stdout == want["text"] + "\n" and "decode" in r.stderr and "tok/s" in r.stderr
    assert len(r.stderr.splitlines()) == 1, r.stderr  # the runtimes' own logging stays quiet


def test_aarch64_bundle_under_qemu_gives_the_same_text(shipped_artifacts, python_run, require):
    require("qemu-aarch64", "qemu-user runs the aarch64 bundle")
    require("aarch64-linux-gnu-g++", "g++-aarch64-linux-gnu builds it")
    from edgebit.profile.bundle import build_bundle
    from edgebit.profile.transports import open_transport

    bundle = build_bundle("aarch64-linux-gnu")
    qemu = open_transport("qemu")
    qemu.probe()
    for target, art in shipped_artifacts.items():
        r = qemu.run([str(bundle.runner), str(art), "--prompt", PROMPT, "--max-new-tokens", N, "--threads", "2",
                      "--json"], 600)
        assert r.returncode == 0, r.stderr
        got = json.loads(r.stdout)
        assert got["arch"] == "aarch64" and got["generated_ids"] == python_run[target]["generated_ids"], target
        assert got["text"] == python_run[target]["text"]


def test_sampling_is_seeded(shipped_artifacts, runner):
    args = [shipped_artifacts["onnx"], "--prompt", PROMPT, "--max-new-tokens", "16", "--temperature", "0.8",
            "--top-k", "40", "--top-p", "0.95", "--repetition-penalty", "1.1", "--json"]
    runs = [json.loads(runner(*args, "--seed", str(s)).stdout)["generated_ids"] for s in (1, 1, 2, 3)]
    assert runs[0] == runs[1] and len({tuple(r) for r in runs}) >= 2


def test_streamed_pieces_are_whole_utf8_characters(hf_checkpoint, host_bundle, tmp_path, cli):
    """A random model over 256 byte tokens emits byte soup: every callback piece must decode on its own, and
    the pieces together must equal tokenizers' decode of the ids (U+FFFD where the bytes are not UTF-8)."""
    art = tmp_path / "tiny"
    r = cli("export", "onnx", hf_checkpoint("bitnet", "packed"), "-o", art, "--max-seq-len", "128")
    assert r.returncode == 0, r.stderr
    probe = Path(__file__).with_name("stream_probe.py")
    p = subprocess.run([sys.executable, str(probe), str(host_bundle / "lib" / "libedgebit_engine.so"), str(art)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(art / "tokenizer.json"))
    multibyte = 0
    for run in result:
        pieces = [bytes(x) for x in run["pieces"]]
        for piece in pieces:
            piece.decode("utf-8")  # raises if a character was split
            multibyte += any(b >= 0x80 for b in piece)
        text = b"".join(pieces).decode()
        assert text == tok.decode([i for i in run["ids"] if i < 256], skip_special_tokens=True)
    assert multibyte > 0  # the probe did produce non-ASCII text


@pytest.mark.parametrize("case, expect", [
    ("long", "context full"),
    ("no-tokenizer", "tokenizer.json: missing"),
    ("corrupt-tokenizer", "invalid JSON"),
    ("unsupported-tokenizer", "is not supported"),
])
def test_bad_prompts_and_tokenizers_are_one_clear_line(shipped_artifacts, runner, tmp_path, case, expect):
    art = tmp_path / "art"
    shutil.copytree(shipped_artifacts["onnx"], art)
    prompt = PROMPT
    if case == "long":
        prompt = "And God said, Let there be light: and there was light. " * 20
    elif case == "no-tokenizer":
        (art / "tokenizer.json").unlink()
    elif case == "corrupt-tokenizer":
        (art / "tokenizer.json").write_text((art / "tokenizer.json").read_text()[:1000])
    else:
        doc = json.loads((art / "tokenizer.json").read_text())
        doc["pre_tokenizer"] = {"type": "Whitespace"}
        (art / "tokenizer.json").write_text(json.dumps(doc))
    # A manifest that agrees (an ids-only artifact; a buggy exporter): the engine's tokenizer is what answers, not
    # its hash check (tests/reliability/test_bad_artifacts.py has those cases).
    manifest = json.loads((art / "manifest.json").read_text())
    if case == "no-tokenizer":
        del manifest["files"]["tokenizer.json"]
    else:
        manifest["files"]["tokenizer.json"] = hashlib.sha256((art / "tokenizer.json").read_bytes()).hexdigest()
    (art / "manifest.json").write_text(json.dumps(manifest))
    r = runner(art, "--prompt", prompt)
    assert r.returncode == 2 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith("edgebit-runner: error: ") and expect in r.stderr, r.stderr


def test_invalid_utf8_prompt_and_bad_flags(shipped_artifacts, host_bundle):
    exe = str(host_bundle / "bin" / "edgebit-runner")
    art = str(shipped_artifacts["onnx"])
    p = subprocess.run([exe, art, "--prompt", b"caf\xe9"], capture_output=True, timeout=60)
    assert p.returncode == 2 and b"not valid UTF-8" in p.stderr and len(p.stderr.splitlines()) == 1
    for args, expect in ((["--top-p", "0"], "--top-p wants a number in (0"),
                         (["--threads", "-1"], "--threads wants an integer in [0, 1024]"),
                         (["--max-new-tokens", "0"], "--max-new-tokens wants an integer in [1"),
                         (["--prompt", "x", "--chat"], "exclude each other"),
                         (["--prompt", "x", "--prompt-len", "4"], "exclude each other")):
        p = subprocess.run([exe, art, *args], capture_output=True, text=True, timeout=60)
        assert p.returncode == 1 and expect in p.stderr.splitlines()[0], (args, p.stderr)
