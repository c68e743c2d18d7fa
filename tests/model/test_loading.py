import json

import pytest

import torch
from safetensors.torch import load_file, save_file

from edgebit.model.checkpoint import open_checkpoint
from edgebit.model.reference import ReferenceModel
from edgebit.model.synthetic import write_random_checkpoint
from edgebit.model.weights import load_model_weights


def test_sharded_checkpoint_loads_like_single_file(hf_checkpoint, tmp_path):
    src = hf_checkpoint("bitnet", "packed")
    tensors = load_file(src / "model.safetensors")
    names = sorted(tensors)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    dst = tmp_path / "sharded"
    dst.mkdir()
    (dst / "config.json").write_text((src / "config.json").read_text())
    weight_map = {}
    for file, part in shards.items():
        save_file({n: tensors[n] for n in part}, dst / file)
        weight_map.update({n: file for n in part})
    (dst / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    ids = torch.tensor([[256, 1, 2, 3]])
    single = ReferenceModel(load_model_weights(src)).forward(ids)
    sharded = ReferenceModel(load_model_weights(dst)).forward(ids)
    assert torch.equal(single, sharded)


@pytest.mark.parametrize("family,form,quant", [
    ("bitnet", "packed", {}), ("bitnet", "packed", dict(linear_class="bitlinear", mode="online")),
    ("bitnet", "unpacked", dict(use_rms_norm=True)), ("llama-bitnet", "master", {}),
    ("llama-bitnet", "packed", dict(linear_class="bitlinear", use_rms_norm=True))])
def test_random_checkpoint_is_read_by_transformers_and_matches(tmp_path, load_hf, family, form, quant):
    """`edgebit random-checkpoint` writes a real HF checkpoint in every scheme: transformers loads it and agrees."""
    path = write_random_checkpoint(tmp_path / "ckpt", "tiny", family, form, float_dtype="float32", **quant)
    ids = torch.tensor([[256, 72, 105, 33]])
    with torch.no_grad():
        expected = load_hf(path)(ids).logits
    got = ReferenceModel(load_model_weights(path)).forward(ids)
    assert (expected - got).abs().max().item() <= 1e-4


def test_2b4t_preset_writes_the_official_release_quantization_config():
    from edgebit.model.synthetic import random_config

    raw, cfg = random_config("2b4t", "bitnet", "packed")
    assert raw["quantization_config"] == {"quant_method": "bitnet", "linear_class": "autobitlinear",
                                          "quantization_mode": "offline"}
    assert not cfg.quant.weight_scale_divides


def test_random_checkpoint_refuses_a_form_its_scheme_cannot_load(cli, tmp_path):
    result = cli("random-checkpoint", "-o", tmp_path / "x", "--form", "master", "--linear-class", "bitlinear")
    assert result.returncode == 2 and "--form" in result.stderr and not (tmp_path / "x").exists()


def test_weights_are_kept_packed(hf_checkpoint):
    with open_checkpoint(hf_checkpoint("bitnet", "master")) as ckpt:
        assert ckpt.weight_form == "master"
    weights = load_model_weights(hf_checkpoint("bitnet", "master"))
    q = weights.layers[0].q
    assert q.packed.dtype == torch.uint8 and q.packed.shape == (128, 32) and q.gamma.dtype == torch.float32
