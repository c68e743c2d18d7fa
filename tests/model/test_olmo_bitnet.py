"""The OLMo-Bitnet family (NousResearch/OLMo-Bitnet-1B) read as published (hf_olmo config keys, fused att_proj /
ff_proj, non-affine norms, padded embedding rows) and held to an independent implementation of its arithmetic:
transformers' OlmoForCausalLM with transformers' BitNet linears (tests/helpers/olmo_fixtures.py), not edgebit's
reference."""

import json
from pathlib import Path

import pytest
import torch
from olmo_fixtures import OLMO_KEYS, olmo_config

from edgebit.backends.reference import ReferenceBackend
from edgebit.errors import CheckpointError, ConfigError
from edgebit.generate import generate
from edgebit.model.checkpoint import open_checkpoint
from edgebit.model.config import normalize_config
from edgebit.model.reference import ReferenceModel
from edgebit.model.weights import load_model_weights
from edgebit.quant.ternary import absmean_ternarize

# OLMo-1B's shape (configs/official/OLMo-1B.yaml) in hf_olmo's config.json form
CONFIG_1B = {**OLMO_KEYS, "d_model": 2048, "n_heads": 16, "n_layers": 16, "mlp_ratio": 8, "vocab_size": 50280,
             "embedding_size": 50304, "max_sequence_length": 2048, "eos_token_id": 50279, "pad_token_id": 1,
             "architectures": ["OLMoForCausalLM"], "model_type": "olmo"}
IDS = torch.tensor([[5, 17, 99, 140, 3, 77, 201, 11]])
MORE = torch.tensor([[250, 40, 41, 42, 7, 7, 120, 64, 33]])
# OLMo-1B's norms (non-affine LayerNorm), an RMS / affine variant, grouped-query attention, and widths that are not
# whole 128-weight blocks (head_dim 100, FFN 540).
VARIANTS = {"olmo-1b": {}, "rms-affine": dict(layer_norm_type="rms", layer_norm_with_affine=True),
            "gqa": dict(n_kv_heads=2), "odd": dict(d_model=200, n_heads=2, mlp_hidden_size=1080)}


def test_published_1b_config_normalizes():
    cfg = normalize_config(dict(CONFIG_1B), Path("config.json"))
    assert (cfg.family, cfg.activation, cfg.norm, cfg.norm_weights, cfg.sub_norms) == (
        "olmo-bitnet", "silu", "layer", False, False)
    assert (cfg.vocab_size, cfg.intermediate_size, cfg.head_dim, cfg.num_kv_heads) == (50304, 8192, 128, 16)
    assert (cfg.rms_norm_eps, cfg.rope.theta, cfg.eos_token_ids, cfg.bos_token_id) == (1e-5, 10000.0, (50279,), None)
    assert (cfg.quant.inner_norm, cfg.quant.inner_norm_eps, cfg.quant.weight_forms) == ("rms", 1e-5, ("master",))


@pytest.mark.parametrize("key,value", [
    ("include_bias", True), ("weight_tying", False), ("block_type", "llama"), ("activation_type", "gelu"),
    ("rope", False), ("alibi", True), ("clip_qkv", 8.0), ("scale_logits", True), ("attention_layer_norm", True),
    ("bias_for_layer_norm", True), ("layer_norm_eps", 1e-6), ("layer_norm_type", "amd_compatible"),
    ("block_group_size", 2), ("n_heads", 3), ("mlp_hidden_size", 8191), ("embedding_size", 50000),
    ("quantization_config", {"quant_method": "bitnet"}), ("n_kv_heads", 3),
])
def test_unsupported_variants_are_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError) as e:
        normalize_config({**CONFIG_1B, key: value}, Path("config.json"))
    assert f"key '{key}'" in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_missing_keys_take_olmos_defaults():
    """hf_olmo writes every key; a config without `rope` or `include_bias` means OLMo's defaults (no RoPE, biases),
    which edgebit refuses rather than assume the published values."""
    for key in ("rope", "include_bias"):
        raw = dict(CONFIG_1B)
        del raw[key]
        with pytest.raises(ConfigError, match=f"key '{key}'.*missing"):
            normalize_config(raw, Path("config.json"))


def test_reads_its_own_tensor_names_and_refuses_others(olmo_checkpoint, tmp_path):
    from safetensors.torch import load_file, save_file

    path = olmo_checkpoint()
    with open_checkpoint(path) as ckpt:
        assert ckpt.config.family == "olmo-bitnet" and ckpt.weight_form == "master"
        assert "model.transformer.blocks.1.att_proj.weight" in ckpt.index
    state = load_file(path / "model.safetensors")
    bad = tmp_path / "bias"
    bad.mkdir()
    (bad / "config.json").write_text((path / "config.json").read_text())
    save_file({**state, "model.transformer.blocks.0.att_proj.bias": torch.zeros(384)}, bad / "model.safetensors")
    with pytest.raises(CheckpointError, match="unexpected tensor 'model.transformer.blocks.0.att_proj.bias'"):
        open_checkpoint(bad)
    del state["model.transformer.blocks.1.ff_proj.weight"]
    save_file(state, bad / "model.safetensors")
    with pytest.raises(CheckpointError, match="'model.transformer.blocks.1.ff_proj.weight' is missing"):
        open_checkpoint(bad)


def test_fused_projections_split_with_the_fused_scale(olmo_checkpoint):
    """BitLinear158 quantizes att_proj and ff_proj whole: q, k, v (and up, gate) share one absmean scale, which
    differs from each part's own; the split rows are the fused tensor's rows (up first, then gate)."""
    from safetensors.torch import load_file

    from edgebit.quant.packing import unpack_ternary

    path = olmo_checkpoint()
    state = load_file(path / "model.safetensors")
    layer = load_model_weights(path).layers[0]
    att = state["model.transformer.blocks.0.att_proj.weight"]
    w_t, gamma = absmean_ternarize(att)
    assert all(float(w.gamma) == float(gamma) for w in (layer.q, layer.k, layer.v))
    assert float(absmean_ternarize(att[:128])[1]) != float(gamma)
    assert torch.equal(unpack_ternary(layer.k.packed, 128), w_t[128:256].to(torch.int8))
    ff_t, ff_gamma = absmean_ternarize(state["model.transformer.blocks.0.ff_proj.weight"])
    assert torch.equal(unpack_ternary(layer.up.packed, 128), ff_t[:256].to(torch.int8))
    assert torch.equal(unpack_ternary(layer.gate.packed, 128), ff_t[256:].to(torch.int8))
    assert float(layer.gate.gamma) == float(ff_gamma)
    assert layer.q.input_norm_kind == "rms" and torch.equal(layer.q.input_norm, torch.ones(128))


@pytest.mark.parametrize("variant", VARIANTS)
def test_logits_and_greedy_tokens_match_the_independent_implementation(olmo_checkpoint, olmo_independent,
                                                                       transformers_parity, variant):
    path = olmo_checkpoint(**VARIANTS[variant])
    hf = olmo_independent(path)
    with torch.no_grad():
        assert hf(IDS).logits.abs().max() > 1.0  # logits large enough that 1e-4 is a real bound
        tokens = hf.generate(IDS, max_new_tokens=10, do_sample=False, eos_token_id=None,
                             pad_token_id=0)[0, IDS.shape[1]:].tolist()
    # within 1e-4 up to the first int8 rounding flip between the two float orders (see the fixture); a flip can
    # come at the first position of a prompt, so two prompts must give some exact positions between them
    ref = ReferenceModel(load_model_weights(path))
    assert sum(transformers_parity(hf, ref, ids, 5) for ids in (IDS, MORE)) > 0
    assert generate(ReferenceBackend(path, 32), IDS[0].tolist(), 10).generated_ids == tokens


def test_inspect_names_the_family_and_counts_its_parameters_exactly(olmo_checkpoint, cli):
    """Parameters as the checkpoint stores them: the four block linears are ternary; the embedding (padding rows
    included, tied head) and the norms' weights (none for non-affine norms) are float."""
    from safetensors.torch import load_file

    for variant in ("olmo-1b", "rms-affine"):
        path = olmo_checkpoint(**VARIANTS[variant])
        state = load_file(path / "model.safetensors")
        ternary = sum(t.numel() for n, t in state.items() if n.endswith(("_proj.weight", "attn_out.weight",
                                                                         "ff_out.weight")))
        r = cli("inspect", path, "--json")
        assert r.returncode == 0, r.stderr
        s = json.loads(r.stdout)
        assert s["family"] == "olmo-bitnet" and "rms norm without weight in every linear" in s["quantization"]
        assert s["ternary_params"] == ternary and s["total_params"] == sum(t.numel() for t in state.values())
        assert s["linear_shapes"]["gate_proj"] == [256, 128]


def test_config_of_the_fixture_is_hf_olmos(olmo_checkpoint):
    raw = json.loads((olmo_checkpoint() / "config.json").read_text())
    assert raw == olmo_config()


def test_gguf_export_is_refused(olmo_checkpoint, cli, tmp_path):
    """llama.cpp has OLMo's graph but not BitLinear158's norm inside every linear: refused, one line, no file."""
    r = cli("export", "gguf", olmo_checkpoint(), "-o", tmp_path / "o.gguf")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "cannot be written as GGUF" in r.stderr and "norm inside every linear" in r.stderr
    assert not (tmp_path / "o.gguf").exists()
