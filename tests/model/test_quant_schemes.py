"""Every quantization_config transformers 5 loads, read by edgebit exactly as transformers reads it: checkpoints
written as transformers' BitNet quantization expects them (tests/conftest.py write_hf_checkpoint), loaded by
transformers itself, held to edgebit's reference model. The same masters written every way compute one network,
so transformers agrees with itself across the combinations too: that pins the fixtures to its conventions."""

import json

import pytest
import torch

from edgebit.errors import CheckpointError, ConfigError
from edgebit.model.checkpoint import open_checkpoint
from edgebit.model.reference import ReferenceModel, ternary_linear
from edgebit.model.weights import TernaryWeight, load_model_weights
from edgebit.quant.packing import pack_ternary

TOL = 1e-4
# (form, linear_class, quantization_mode): the weight forms each class/mode loads in transformers
SCHEMES = [("packed", "bitlinear", "offline"), ("packed", "bitlinear", "online"),
           ("packed", "autobitlinear", "offline"), ("unpacked", "autobitlinear", "offline"),
           ("master", "autobitlinear", "online")]
COMBOS = [(family, form, cls, mode, rms, tie) for family in ("bitnet", "llama") for form, cls, mode in SCHEMES
          for rms in (False, True) for tie in (True, False)]
IDS = torch.tensor([[256, 5, 17, 99, 140, 3, 77, 201]])


@pytest.mark.parametrize("family,form,linear_class,mode,rms,tie", COMBOS)
def test_reference_matches_transformers(hf_checkpoint, load_hf, transformers_parity, family, form, linear_class,
                                        mode, rms, tie):
    path = hf_checkpoint(family, form, tie, linear_class=linear_class, mode=mode, use_rms_norm=rms)
    hf = load_hf(path)
    with torch.no_grad():
        assert hf(IDS).logits.abs().max() > 1.0  # logits large enough that 1e-4 is a real bound
    # 1e-4 at every position up to the first int8 rounding flip between the two float orders (tests/conftest.py)
    assert transformers_parity(hf, ReferenceModel(load_model_weights(path)), IDS, 4, TOL) > 0


@pytest.mark.parametrize("family", ["bitnet", "llama"])
@pytest.mark.parametrize("rms", [False, True])
def test_transformers_computes_one_network_across_schemes(hf_checkpoint, load_hf, family, rms):
    """The fixtures are right: the same masters written every way give transformers' own online result (the
    network as trained), so the scale convention of each written form is transformers' own."""
    online = None
    for form, cls, mode in SCHEMES:
        path = hf_checkpoint(family, form, True, linear_class=cls, mode=mode, use_rms_norm=rms)
        with torch.no_grad():
            logits = load_hf(path)(IDS).logits
        online = logits if online is None else online
        assert (logits - online).abs().max().item() <= 1e-5, (form, cls, mode)


def test_use_rms_norm_changes_the_network(hf_checkpoint):
    plain = ReferenceModel(load_model_weights(hf_checkpoint("bitnet", "packed"))).forward(IDS)
    normed = ReferenceModel(load_model_weights(hf_checkpoint("bitnet", "packed", use_rms_norm=True))).forward(IDS)
    assert (plain - normed).abs().max().item() > 0.1


def test_scale_conventions_of_both_transformers_classes():
    """weight_scale divides in transformers' BitLinear and multiplies in its offline AutoBitLinear; the other
    way round is wrong by far more than rounding."""
    from transformers.integrations.bitnet import AutoBitLinear, BitLinear, pack_weights

    torch.manual_seed(1)
    n, k = 64, 256
    w_t = torch.randint(-1, 2, (n, k), dtype=torch.int8)
    scale = torch.tensor([0.037])
    x = torch.randn(3, 5, k)
    bit = BitLinear(k, n, bias=False, dtype=torch.float32)
    bit.weight.copy_(pack_weights(w_t.float()))
    bit.weight_scale.copy_(scale)
    auto = AutoBitLinear(k, n, bias=False, dtype=torch.float32, online_quant=False)
    with torch.no_grad():
        auto.weight.copy_(w_t.float())
        auto.weight_scale.copy_(scale)
        for module, gamma in ((bit, 1.0 / scale[0]), (auto, scale[0])):
            expected = module(x)
            right = ternary_linear(x, TernaryWeight(pack_ternary(w_t), gamma, n, k))
            wrong = ternary_linear(x, TernaryWeight(pack_ternary(w_t), 1.0 / gamma, n, k))
            assert (expected - right).abs().max().item() <= 1e-5 * expected.abs().max().item()
            assert (expected - wrong).abs().max().item() > 1.0


def _edit(path, tmp_path, config=None, tensors=None):
    """A copy of checkpoint `path` with config.json keys replaced and tensors edited."""
    from safetensors.torch import load_file, save_file

    dst = tmp_path / "edited"
    dst.mkdir()
    raw = json.loads((path / "config.json").read_text())
    for key, value in (config or {}).items():
        if key.startswith("quantization_config."):
            raw["quantization_config"][key.split(".", 1)[1]] = value
        elif value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    (dst / "config.json").write_text(json.dumps(raw))
    state = load_file(path / "model.safetensors")
    if tensors:
        tensors(state)
    save_file(state, dst / "model.safetensors")
    return dst


def _drop_norm(state):
    del state["model.layers.1.mlp.up_proj.rms_norm.weight"]


def _not_ternary(state):
    state["model.layers.0.self_attn.q_proj.weight"][3, 5] = 0.5


BAD = [
    ("packed", {}, {"quantization_config.linear_class": "bitnet158"}, None, "quantization_config.linear_class"),
    ("packed", {}, {"quantization_config.quantization_mode": "lazy"}, None, "quantization_config.quantization_mode"),
    ("packed", {}, {"quantization_config.quant_method": "gptq"}, None, "quantization_config.quant_method"),
    ("packed", {}, {"quantization_config.use_rms_norm": "yes"}, None, "quantization_config.use_rms_norm"),
    ("packed", {}, {"quantization_config": None}, None, "packed uint8.*'quantization_config'"),
    ("packed", {}, {"quantization_config.linear_class": "autobitlinear",
                    "quantization_config.quantization_mode": "online"}, None, "packed uint8.*quantization_mode"),
    ("master", {}, {"quantization_config.linear_class": "bitlinear"}, None, "is float.*linear_class"),
    ("packed", {}, {"quantization_config.modules_to_not_convert": ["model.layers.0.mlp"]}, None,
     "leaves model.layers.0.mlp.gate_proj a float linear"),
    ("packed", {}, {"quantization_config.modules_to_not_convert": []}, None, "does not list lm_head"),
    ("packed", {}, {"quantization_config.modules_to_not_convert": ["lm_head["]}, None, "not a valid pattern"),
    ("packed", {"use_rms_norm": True}, {}, _drop_norm, "up_proj.rms_norm.weight' is missing"),
    ("packed", {}, {"quantization_config.use_rms_norm": True}, None, "q_proj.rms_norm.weight' is missing"),
    ("unpacked", {}, {}, _not_ternary, "q_proj.weight': value 0.5 at row 3, column 5.*-1, 0 or \\+1"),
]


@pytest.mark.parametrize("form,quant,config,tensors,match", BAD, ids=[b[-1][:40] for b in BAD])
def test_unmappable_quantization_configs_are_refused_by_key(hf_checkpoint, tmp_path, form, quant, config, tensors,
                                                            match):
    path = _edit(hf_checkpoint("bitnet", form, **quant), tmp_path, config, tensors)
    with pytest.raises((ConfigError, CheckpointError), match=match):
        with open_checkpoint(path) as ckpt:
            load_model_weights(ckpt.path)


def test_model_without_quantization_config_ternarizes_masters(hf_checkpoint, tmp_path, load_hf):
    """model_type bitnet with float weights and no quantization_config (a bf16 master release): BitNet b1.58 by
    definition, ternarized at load exactly as transformers' online AutoBitLinear does."""
    src = hf_checkpoint("bitnet", "master")
    path = _edit(src, tmp_path, {"quantization_config": None})
    with open_checkpoint(path) as ckpt:
        assert ckpt.weight_form == "master" and ckpt.config.quant.linear_class is None
    with torch.no_grad():
        expected = load_hf(src)(IDS).logits
    assert (ReferenceModel(load_model_weights(path)).forward(IDS) - expected).abs().max().item() <= TOL


def test_omitted_tie_word_embeddings_means_untied_as_in_transformers(hf_checkpoint, tmp_path):
    """BitNetConfig and LlamaConfig default tie_word_embeddings to False: a config.json without the key and a
    checkpoint without lm_head.weight is refused, not silently tied."""
    path = _edit(hf_checkpoint("bitnet", "packed", True), tmp_path, {"tie_word_embeddings": None})
    with pytest.raises(CheckpointError, match="lm_head.weight' is missing"):
        open_checkpoint(path)
