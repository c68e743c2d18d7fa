"""Every quantization scheme transformers loads, exported by edgebit to ONNX and to a .pte: both artifacts
generate transformers' own greedy tokens and pass `edgebit verify` against the reference. The ONNX side covers every combination (cheap); the .pte side one checkpoint per family x linear class
x mode x use_rms_norm (its graph depends only on the family, use_rms_norm and the head; the scale conventions
change only weights), with tied and untied heads alternating."""

import pytest
import torch

from edgebit.backends import open_backend
from edgebit.generate import generate
from edgebit.verify import verify

PROMPT = [256, 10, 20, 30, 7]
NEW = 8
SCHEMES = [("packed", "bitlinear", "offline"), ("packed", "bitlinear", "online"),
           ("packed", "autobitlinear", "offline"), ("unpacked", "autobitlinear", "offline"),
           ("master", "autobitlinear", "online")]
ONNX_COMBOS = [(f, form, cls, mode, rms, tie) for f in ("bitnet", "llama") for form, cls, mode in SCHEMES
               for rms in (False, True) for tie in (True, False)]
PTE_COMBOS = [(f, form, cls, mode, rms, (i + rms) % 2 == 0) for f in ("bitnet", "llama")
              for i, (form, cls, mode) in enumerate(s for s in SCHEMES if s[0] != "unpacked") for rms in (False, True)]


def _ckpt(hf_checkpoint, family, form, cls, mode, rms, tie):
    return hf_checkpoint(family, form, tie, linear_class=cls, mode=mode, use_rms_norm=rms)


def _transformers_greedy(load_hf, path) -> list[int]:
    with torch.no_grad():
        out = load_hf(path).generate(torch.tensor([PROMPT]), max_new_tokens=NEW, do_sample=False, eos_token_id=None,
                                     pad_token_id=0)
    return out[0, len(PROMPT):].tolist()


def _check(artifact, path, load_hf):
    assert generate(open_backend(artifact), PROMPT, NEW).generated_ids == _transformers_greedy(load_hf, path)
    report = verify(artifact)  # exact up to int8 rounding flips of the float ops' last bit (docs/verify.md)
    assert report.passed and report.perplexity_rel_diff <= 1e-3, report


@pytest.mark.parametrize("family,form,cls,mode,rms,tie", ONNX_COMBOS)
def test_onnx_artifact_generates_transformers_tokens(hf_checkpoint, load_hf, tmp_path, family, form, cls, mode,
                                                     rms, tie):
    from edgebit.exporters.onnx.export import export_onnx

    path = _ckpt(hf_checkpoint, family, form, cls, mode, rms, tie)
    _check(export_onnx(path, tmp_path / "onnx", 64), path, load_hf)


@pytest.mark.parametrize("family,form,cls,mode,rms,tie", PTE_COMBOS)
def test_pte_artifact_generates_transformers_tokens(hf_checkpoint, load_hf, tmp_path, family, form, cls, mode, rms,
                                                    tie):
    from edgebit.exporters.executorch.export import export_executorch

    path = _ckpt(hf_checkpoint, family, form, cls, mode, rms, tie)
    _check(export_executorch(path, tmp_path / "pte", 64, xnnpack=False), path, load_hf)
