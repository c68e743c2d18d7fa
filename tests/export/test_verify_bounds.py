"""verify lets through what float rounding does (an int8 activation one step off from some position on, logits
~1e-2 apart after it) and nothing that changes the arithmetic: an artifact held to a checkpoint read with the
other scale convention, or with a norm weight a few percent off, fails."""

import json
import shutil

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from edgebit.exporters.onnx.export import export_onnx
from edgebit.verify import EXACT, _Sequences, verify


@pytest.fixture(scope="module")
def artifact(hf_checkpoint, tmp_path_factory):
    return export_onnx(hf_checkpoint("bitnet", "packed"), tmp_path_factory.mktemp("v") / "art", 64)


def _variant(src, dst, config=None, tensors=None):
    shutil.copytree(src, dst)
    if config:
        raw = json.loads((dst / "config.json").read_text())
        config(raw)
        (dst / "config.json").write_text(json.dumps(raw))
    if tensors:
        state = load_file(dst / "model.safetensors")
        tensors(state)
        save_file(state, dst / "model.safetensors")
    return dst


def test_the_artifacts_own_checkpoint_passes(artifact):
    assert verify(artifact).passed


def test_other_scale_convention_fails(artifact, hf_checkpoint, tmp_path):
    wrong = _variant(hf_checkpoint("bitnet", "packed"), tmp_path / "w",
                     config=lambda raw: raw["quantization_config"].update(linear_class="autobitlinear"))
    report = verify(artifact, wrong)
    assert not report.passed and report.max_abs_diff > EXACT["max_abs_diff"], report


def _scale(name, factor, first=None):
    def edit(state):
        w = state[name].clone()
        w[:first] *= factor
        state[name] = w
    return edit


# A norm feeding a linear may be scaled uniformly at no cost (per-token absmax quantization cancels it); the final
# norm feeds the float head, so 1% there is 1% on every logit. Half of a mid-layer norm 5% off changes the
# activations' direction, not only their size.
@pytest.mark.parametrize("name,factor,first", [("model.norm.weight", 1.01, None),
                                               ("model.layers.1.post_attention_layernorm.weight", 1.05, 64)])
def test_a_norm_weight_a_few_percent_off_fails(artifact, hf_checkpoint, tmp_path, name, factor, first):
    wrong = _variant(hf_checkpoint("bitnet", "packed"), tmp_path / "n", tensors=_scale(name, factor, first))
    report = verify(artifact, wrong)
    assert not report.passed and report.exact_fraction < 0.5 and report.flipped_sequences == report.prompts + 1
    assert (report.perplexity_rel_diff > EXACT["perplexity_rel_diff"]
            or report.top1_agreement < EXACT["top1_agreement"]), report


def test_a_flip_splits_a_sequence_there():
    seqs = _Sequences(1e-3)
    ref = np.zeros((6, 5), np.float32)
    art = ref.copy()
    art[:2] += 1e-6
    art[2:] += np.float32(0.02)  # a flip at position 2 stays in the cache: every later position moves
    seqs.start()
    seqs.add(ref, art)
    seqs.start()
    seqs.add(ref, ref)
    assert (seqs.exact, seqs.total, seqs.flipped_sequences) == (8, 12, 1) and abs(seqs.max_abs - 0.02) < 1e-6
