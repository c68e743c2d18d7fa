from pathlib import Path

import pytest

from edgebit.errors import ConfigError
from edgebit.model.config import families, normalize_config
from edgebit.model.synthetic import PRESETS, config_json

P = Path("config.json")


def test_bitnet_2b4t_config_normalizes():
    raw = config_json(PRESETS["2b4t"], "bitnet", "packed", "bfloat16")
    cfg = normalize_config(raw, P)
    assert (cfg.family, cfg.activation, cfg.sub_norms) == ("bitnet", "relu2", True)
    assert (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.q_size, cfg.kv_size) == (20, 5, 128, 2560, 640)
    assert cfg.linear_shapes()["down_proj"] == (2560, 6912)


def test_llama_style_ternary_config_normalizes_with_llama3_rope():
    raw = {"model_type": "llama", "quantization_config": {"quant_method": "bitnet"}, "hidden_size": 4096,
           "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
           "num_key_value_heads": 8, "vocab_size": 128256, "hidden_act": "silu", "tie_word_embeddings": False,
           "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                                    "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
           "eos_token_id": [128001, 128009]}
    cfg = normalize_config(raw, P)
    assert (cfg.family, cfg.activation, cfg.sub_norms, cfg.tie_word_embeddings) == ("llama-bitnet", "silu", False, False)
    assert cfg.rope.kind == "llama3" and cfg.rope.factor == 8.0 and cfg.eos_token_ids == (128001, 128009)


def test_plain_llama_without_bitnet_quantization_is_unsupported():
    raw = {"model_type": "llama", "hidden_size": 64}
    with pytest.raises(ConfigError, match="unsupported checkpoint family.*supported: bitnet.*llama-bitnet"):
        normalize_config(raw, P)


def test_registry_lists_every_family():
    assert set(families()) == {"bitnet", "bitnet-binary", "llama-bitnet", "olmo-bitnet", "1bitllm"}


@pytest.mark.parametrize("key,value,match", [
    ("hidden_size", -1, "hidden_size"),
    ("hidden_size", "128", "hidden_size"),
    ("num_key_value_heads", 3, "does not divide"),
    ("rope_scaling", {"rope_type": "yarn", "factor": 2.0}, "yarn"),
    ("hidden_act", "gelu", "hidden_act"),
    ("attention_bias", True, "biases"),
])
def test_bad_values_name_the_key(key, value, match):
    raw = config_json(PRESETS["tiny"], "bitnet", "packed", "bfloat16")
    raw[key] = value
    with pytest.raises(ConfigError, match=match):
        normalize_config(raw, P)
