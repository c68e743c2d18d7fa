"""The CLI on out-of-range numbers, conflicting flags and missing paths: exit 2, a message naming the option or
path, no traceback. Cases run against the shipped model (or no model at all): validation comes first."""

import pytest

MISSING = "/nonexistent/edgebit-test-path"
# (argv, fragment the error must contain); {art} is a tiny artifact, {ckpt} a tiny checkpoint.
CASES = [
    (["run", "{art}", "--prompt-ids", "1", "--threads", "0"], "--threads"),
    (["run", "{art}", "--prompt-ids", "1", "--max-new-tokens", "-3"], "--max-new-tokens"),
    (["run", "{art}", "--prompt-ids", "1", "--top-p", "1.5"], "--top-p"),
    (["run", "{art}", "--prompt-ids", "1", "--temperature", "-1"], "--temperature"),
    (["run", "{art}", "--prompt-ids", "-4"], "--prompt-ids"),
    (["run", "{art}", "--prompt-ids", "99999"], "vocabulary"),
    (["run", "{art}", "--prompt", "x", "--prompt-ids", "1"], "exactly one"),
    (["run", "{art}"], "exactly one"),
    (["run", "{art}", "--prompt-ids", "1", "--profile"], "--profile"),
    (["run", MISSING, "--prompt-ids", "1"], MISSING),
    (["verify", MISSING], MISSING),
    (["profile", MISSING], MISSING),
    (["profile", "{art}", "--threads", "-1"], "--threads"),
    (["profile", "{art}", "--gen-len", "0"], "--gen-len"),
    (["profile", "{art}", "--runs", "0"], "--runs"),
    (["profile", "{art}", "--prompt-ids", "a,b"], "--prompt-ids"),
    (["profile", "{art}", "--device", "bogus"], "bogus"),
    (["profile", "{art}", "--device", "ssh://"], "ssh://"),
    (["export", "onnx", "{ckpt}", "-o", "{tmp}/o", "--max-seq-len", "0"], "--max-seq-len"),
    (["export", "onnx", "{ckpt}", "-o", "{tmp}/o", "--head", "fp8"], "--head"),
    (["export", "onnx", "{ckpt}", "-o", "{art}"], "--force"),
    (["export", "onnx", "{ckpt}", "-o", MISSING + "/o"], "parent directory"),
    (["export", "onnx", MISSING, "-o", "{tmp}/o"], MISSING),
    (["export", "executorch", "{ckpt}", "-o", "{tmp}/o", "--head", "int4"], "--head"),
    (["inspect", MISSING], MISSING),
    (["inspect", "{tmp}/[/odd] dir"], "[/odd] dir"),  # rich markup characters in a path are data
    (["generate", "{ckpt}", "-n", "-5"], "--max-new-tokens"),
    (["generate", "{ckpt}", "--temperature", "-1"], "--temperature"),
    (["generate", "{ckpt}", "--top-p", "1.5"], "--top-p"),
    (["random-checkpoint", "-o", MISSING + "/o"], "parent directory"),
]


@pytest.fixture(scope="module")
def tiny(hf_checkpoint, tmp_path_factory):
    from edgebit.exporters.onnx.export import export_onnx

    ckpt = hf_checkpoint("bitnet", "packed")
    return ckpt, export_onnx(ckpt, tmp_path_factory.mktemp("opts") / "art", 32, "fp32", "edgebit")


@pytest.mark.parametrize("argv,fragment", CASES, ids=[" ".join(c[0][:3]) + f" [{i}]" for i, c in enumerate(CASES)])
def test_bad_option_is_a_clear_error(argv, fragment, tiny, tmp_path, cli):
    ckpt, art = tiny
    (tmp_path / "[" / "odd] dir").mkdir(parents=True)  # the path "[/odd] dir": a rich closing tag
    argv = [a.format(art=art, ckpt=ckpt, tmp=tmp_path) for a in argv]
    r = cli(*argv, timeout=300)
    assert r.returncode == 2, (r.returncode, r.stdout[-300:], r.stderr[-1500:])
    assert "Traceback" not in r.stderr
    flat = " ".join(r.stderr.replace("│", " ").split())
    assert fragment in flat, (fragment, r.stderr)
