"""Fixtures: tiny HF-format checkpoints built here with transformers (random weights, both weight forms,
both families), so nothing is downloaded and every test knows exactly what it loads."""

import os
import shutil

# transformers wraps its BitNet quantizers in torch.compile; compiling them on CPU only costs test time.
os.environ.setdefault("TORCHDYNAMO_DISABLE", "1")

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

TINY = dict(vocab_size=300, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5, bos_token_id=256,
            eos_token_id=257, initializer_range=0.1)
LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 64}


def hf_model(family: str, tie: bool, seed: int, dims: dict | None = None):
    """dims: config keys merged over TINY (e.g. another hidden_size or head_dim)."""
    from transformers import BitNetConfig, BitNetForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    shape = {**TINY, **(dims or {})}
    if family == "bitnet":
        cfg = BitNetConfig(**shape, tie_word_embeddings=tie, hidden_act="relu2",
                           rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
        return cfg, BitNetForCausalLM(cfg)
    cfg = LlamaConfig(**shape, tie_word_embeddings=tie, hidden_act="silu", rope_parameters=LLAMA3_ROPE)
    return cfg, LlamaForCausalLM(cfg)


def write_hf_checkpoint(directory: Path, family: str, form: str, tie: bool = True, seed: int = 0,
                        dims: dict | None = None) -> Path:
    """Random masters -> `master` (float weights, transformers ternarizes online) or `packed` (uint8 codes
    packed by transformers' own pack_weights + weight_scale as its BitLinear expects)."""
    from safetensors.torch import save_file
    from transformers.integrations.bitnet import pack_weights

    cfg, model = hf_model(family, tie, seed, dims)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for k in state:
        if "norm" in k:  # non-trivial norms, so a norm applied in the wrong place shows
            state[k] = 1 + 0.2 * torch.randn_like(state[k])
    if tie:
        state.pop("lm_head.weight", None)
    if form == "packed":
        cfg.quantization_config = {"quant_method": "bitnet", "linear_class": "bitlinear",
                                   "quantization_mode": "offline"}
        for k in [k for k in state if k.endswith("_proj.weight")]:
            w = state[k].float()
            scale = 1.0 / w.abs().mean().clamp(min=1e-5)  # transformers' WeightQuant
            state[k] = pack_weights((w * scale).round().clamp(-1, 1))
            state[k.removesuffix("weight") + "weight_scale"] = scale.reshape(1)
    else:
        cfg.quantization_config = {"quant_method": "bitnet", "linear_class": "autobitlinear",
                                   "quantization_mode": "online"}
    directory.mkdir(parents=True, exist_ok=True)
    cfg.save_pretrained(directory)
    save_file({k: v.contiguous() for k, v in state.items()}, directory / "model.safetensors",
              metadata={"format": "pt"})
    from edgebit.tokenizer import byte_level_tokenizer

    byte_level_tokenizer(cfg.vocab_size).save(str(directory / "tokenizer.json"))
    return directory


@pytest.fixture(scope="session")
def hf_checkpoint(tmp_path_factory):
    """hf_checkpoint(family, form, tie=True, dims=None) -> a checkpoint dir, built once per session."""
    built = {}

    def make(family: str, form: str, tie: bool = True, dims: dict | None = None) -> Path:
        key = (family, form, tie, tuple(sorted((dims or {}).items())))
        if key not in built:
            built[key] = write_hf_checkpoint(tmp_path_factory.mktemp(f"{family}-{form}-{tie}"), family, form, tie,
                                             dims=dims)
        return built[key]

    return make


@pytest.fixture(scope="session")
def load_hf():
    """The transformers model for a checkpoint dir, with its BitNet quantization applied."""
    from transformers import AutoModelForCausalLM

    def load(path: Path):
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()

    return load


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """The installed `edgebit` command, as a user runs it: from outside the source tree, so the installed
    package (with its compiled libraries) is what runs."""
    return subprocess.run([sys.executable, "-m", "edgebit", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"}, cwd=tempfile.gettempdir())


@pytest.fixture(scope="session")
def cli():
    return run_cli


def _require(tool: str, why: str) -> str:
    path = shutil.which(tool)
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{tool} not found ({why}); scripts/setup.sh must install it under CI")
    pytest.skip(f"{tool} not found ({why})")


@pytest.fixture(scope="session")
def require():
    return _require
