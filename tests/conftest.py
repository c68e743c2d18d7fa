"""Fixtures: tiny HF-format checkpoints built here with transformers (random weights, both weight forms,
both families), so nothing is downloaded and every test knows exactly what it loads."""

import json
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

# pytest runs with --import-mode=importlib, which puts no test directory on sys.path; helper modules shared by
# several test directories (tests/gguf_files.py) are imported from here. Appended, not prepended: tests/executorch
# would otherwise come first in the executorch namespace package (it has no __init__.py) and shadow the wheel.
sys.path.append(str(Path(__file__).parent))

TINY = dict(vocab_size=300, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=128, rms_norm_eps=1e-5, bos_token_id=256,
            eos_token_id=257, initializer_range=0.1)
LLAMA3_ROPE = {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 64}


def hf_model(family: str, tie: bool, seed: int, dims: dict | None = None, hidden_act: str = "relu2"):
    """dims: config keys merged over TINY (e.g. another hidden_size or head_dim, or K a multiple of 256 for
    GGUF's TQ blocks); hidden_act: BitNet's FFN activation."""
    from transformers import BitNetConfig, BitNetForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    shape = {**TINY, **(dims or {})}
    if family == "bitnet":
        cfg = BitNetConfig(**shape, tie_word_embeddings=tie, hidden_act=hidden_act,
                           rope_parameters={"rope_type": "default", "rope_theta": 500000.0})
        return cfg, BitNetForCausalLM(cfg)
    cfg = LlamaConfig(**shape, tie_word_embeddings=tie, hidden_act="silu", rope_parameters=LLAMA3_ROPE)
    return cfg, LlamaForCausalLM(cfg)


QUANT_DEFAULTS = {"packed": ("bitlinear", "offline"), "master": ("autobitlinear", "online"),
                  "unpacked": ("autobitlinear", "offline")}


def write_hf_checkpoint(directory: Path, family: str, form: str, tie: bool = True, seed: int = 0,
                        linear_class: str | None = None, mode: str | None = None,
                        use_rms_norm: bool = False, dims: dict | None = None, hidden_act: str = "relu2") -> Path:
    """One set of random masters written the way transformers' BitNet quantization loads it:
    - `master`: float weights (autobitlinear/online: transformers ternarizes them at every forward);
    - `packed`: uint8 codes packed by transformers' own pack_weights + weight_scale, which `bitlinear` divides by
      (weight_scale = 1/mean|W|) and offline `autobitlinear` multiplies by (weight_scale = mean|W|);
    - `unpacked`: offline autobitlinear with the ternary values stored as floats (+ weight_scale = mean|W|);
    - use_rms_norm: every linear gets its own `rms_norm.weight` (K,), as quantization_config.use_rms_norm makes
      transformers expect;
    - dims: shape keys merged over TINY (e.g. widths that are not a multiple of 128).
    Every combination computes the same network, so transformers' logits agree across them (tested)."""
    from safetensors.torch import save_file
    from transformers.integrations.bitnet import pack_weights

    default_class, default_mode = QUANT_DEFAULTS[form]
    linear_class, mode = linear_class or default_class, mode or default_mode
    cfg, model = hf_model(family, tie, seed, dims, hidden_act)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for k in state:
        if "norm" in k:  # non-trivial norms, so a norm applied in the wrong place shows
            state[k] = 1 + 0.2 * torch.randn_like(state[k])
    if tie:
        state.pop("lm_head.weight", None)
    for k in [k for k in state if k.endswith("_proj.weight")]:
        if use_rms_norm:
            state[k.removesuffix("weight") + "rms_norm.weight"] = 1 + 0.2 * torch.randn(state[k].shape[1])
        if form == "master":
            continue
        w = state[k].float()
        gamma = w.abs().mean().clamp(min=1e-5)
        w_t = (w * (1.0 / gamma)).round().clamp(-1, 1)  # transformers' WeightQuant
        state[k] = pack_weights(w_t) if form == "packed" else w_t
        scale = 1.0 / gamma if linear_class == "bitlinear" else gamma
        state[k.removesuffix("weight") + "weight_scale"] = scale.reshape(1)
    cfg.quantization_config = {"quant_method": "bitnet", "linear_class": linear_class, "quantization_mode": mode}
    if use_rms_norm:
        cfg.quantization_config.update(use_rms_norm=True, rms_norm_eps=1e-5)
    directory.mkdir(parents=True, exist_ok=True)
    cfg.save_pretrained(directory)
    save_file({k: v.contiguous() for k, v in state.items()}, directory / "model.safetensors",
              metadata={"format": "pt"})
    from edgebit.tokenizer import byte_level_tokenizer

    byte_level_tokenizer(cfg.vocab_size).save(str(directory / "tokenizer.json"))
    return directory


@pytest.fixture(scope="session")
def hf_checkpoint(tmp_path_factory):
    """hf_checkpoint(family, form, tie=True, dims=None, **quant) -> a checkpoint dir, built once per session
    (quant: linear_class, mode, use_rms_norm, hidden_act of write_hf_checkpoint)."""
    built = {}

    def make(family: str, form: str, tie: bool = True, dims: dict | None = None, **quant) -> Path:
        key = (family, form, tie, tuple(sorted((dims or {}).items())), repr(sorted(quant.items())))
        if key not in built:
            built[key] = write_hf_checkpoint(tmp_path_factory.mktemp(f"{family}-{form}-{tie}"), family, form, tie,
                                             dims=dims, **quant)
        return built[key]

    return make


GGUF_DIMS = dict(hidden_size=256, intermediate_size=512)  # GGUF's TQ blocks hold 256 weights along K


@pytest.fixture(scope="session")
def gguf_checkpoint(hf_checkpoint, tmp_path_factory):
    """gguf_checkpoint(family, form, tokenizer="gpt2"|"llama3", **options) -> an hf_checkpoint with K a multiple of
    256 and a trained BPE tokenizer with merges and a chat template (tests/gguf_files.py), built once per session."""
    from gguf_files import add_bpe_tokenizer

    built = {}

    def make(family: str, form: str, tokenizer: str = "gpt2", **options) -> Path:
        key = (family, form, tokenizer, repr(sorted(options.items())))
        if key not in built:
            src = hf_checkpoint(family, form, dims={**GGUF_DIMS, **options.pop("dims", {})}, **options)
            dst = tmp_path_factory.mktemp(f"gguf-{family}-{form}") / "ckpt"
            shutil.copytree(src, dst)
            built[key] = add_bpe_tokenizer(dst, tokenizer)
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


ONEBIT_TINY = dict(vocab_size=300, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                   num_attention_heads=4, max_position_embeddings=128, rms_norm_eps=1e-5, bos_token_id=256,
                   eos_token_id=257)


def write_1bitllm_checkpoint(directory: Path, seed: int = 0, **dims) -> tuple[Path, Path]:
    """A 1bitLLM-family checkpoint (bitnet_b1_58-*: model_type llama, architectures BitnetForCausalLM,
    weight_bits 1, float masters, SubLN norms named inner_attn_ln / ffn_layernorm, untied head) and, beside it,
    the same network as an independent transformers model: BitNetForCausalLM with SiLU and online autobitlinear
    quantization, whose BitLinear arithmetic (absmean ternary weights, absmax int8 activations) is the one in
    1bitLLM's published utils_quant.py. Returns (1bitLLM dir, transformers dir)."""
    from safetensors.torch import save_file
    from transformers import BitNetConfig, BitNetForCausalLM

    shape = {**ONEBIT_TINY, **dims}
    torch.manual_seed(seed)
    hf_cfg = BitNetConfig(**shape, num_key_value_heads=shape["num_attention_heads"], hidden_act="silu",
                          tie_word_embeddings=False, initializer_range=0.1,
                          rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    model = BitNetForCausalLM(hf_cfg)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for k in state:
        if "norm" in k:
            state[k] = 1 + 0.2 * torch.randn_like(state[k])
    hf_dir, onebit_dir = directory / "transformers", directory / "1bitllm"
    hf_cfg.quantization_config = {"quant_method": "bitnet", "linear_class": "autobitlinear",
                                  "quantization_mode": "online"}
    hf_dir.mkdir(parents=True, exist_ok=True)
    hf_cfg.save_pretrained(hf_dir)
    save_file({k: v.contiguous() for k, v in state.items()}, hf_dir / "model.safetensors")
    # 1bitLLM's config.json and tensor names (huggingface.co/1bitLLM/bitnet_b1_58-large's layout)
    raw = {"architectures": ["BitnetForCausalLM"], "model_type": "llama", "hidden_act": "silu", "input_bits": 8,
           "weight_bits": 1, "attention_bias": False, "num_key_value_heads": shape["num_attention_heads"],
           "rope_scaling": None, "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float32",
           "pad_token_id": None, **shape}
    renames = {"self_attn.attn_sub_norm": "self_attn.inner_attn_ln", "mlp.ffn_sub_norm": "mlp.ffn_layernorm"}
    onebit = {}
    for k, v in state.items():
        for old, new in renames.items():
            k = k.replace(old, new)
        onebit[k] = v.contiguous()
    onebit_dir.mkdir(parents=True, exist_ok=True)
    (onebit_dir / "config.json").write_text(json.dumps(raw, indent=2))
    save_file(onebit, onebit_dir / "model.safetensors", metadata={"format": "pt"})
    from edgebit.tokenizer import byte_level_tokenizer

    for d in (hf_dir, onebit_dir):
        byte_level_tokenizer(shape["vocab_size"]).save(str(d / "tokenizer.json"))
    return onebit_dir, hf_dir


@pytest.fixture(scope="session")
def onebit_checkpoint(tmp_path_factory):
    """onebit_checkpoint(**dims) -> (1bitLLM dir, transformers dir), built once per session per shape."""
    built = {}

    def make(**dims) -> tuple[Path, Path]:
        key = tuple(sorted(dims.items()))
        if key not in built:
            built[key] = write_1bitllm_checkpoint(tmp_path_factory.mktemp("1bitllm"), **dims)
        return built[key]

    return make


class _QuantTrace:
    """The int8 codes x_q of every ternary linear input, in call order, from transformers' BitNet modules (a hook
    quantizes each module's input by BitNet's rule) and from edgebit's reference (its own quantize_activations)."""

    def __init__(self):
        self.hf, self.ours = [], []

    @staticmethod
    def codes(x):
        from edgebit.quant.ternary import quantize_activations

        return quantize_activations(x.float())[0]


@pytest.fixture
def transformers_parity(monkeypatch):
    """transformers_parity(hf_model, ref_model, ids, steps, tol=1e-4): prefill `ids` and decode `steps` greedy
    tokens through both, comparing logits position by position. Two float implementations of the same arithmetic
    round differently in the last bit, and where an int8 activation sits on a rounding half-step that sends it
    to the neighbouring integer (a flip): from that position on (its keys and values stay in the cache) the logits
    may move by ~1e-2 (and then many later activations differ a little). So: every position before the first
    flip within `tol`; after it within 0.5 (an inverted scale or a misplaced norm moves them by several units); the
    first flip a single activation off by one step in one linear (a rounding, not a different computation).
    Returns the number of positions compared before the first flip."""
    import edgebit.model.reference as reference
    from transformers.integrations.bitnet import AutoBitLinear, BitLinear

    trace = _QuantTrace()
    original = reference.quantize_activations

    def recording(x):
        x_q, s = original(x)
        trace.ours.append(x_q)
        return x_q, s

    monkeypatch.setattr(reference, "quantize_activations", recording)

    def check(hf, ref, ids, steps: int, tol: float = 1e-4) -> int:
        def hook(module, args):
            x = args[0] if module.rms_norm is None else module.rms_norm(args[0])
            trace.hf.append(_QuantTrace.codes(x))

        handles = [m.register_forward_pre_hook(hook) for m in hf.modules() if isinstance(m, (AutoBitLinear, BitLinear))]
        try:
            flipped, exact_positions = False, 0
            past, cache, token = None, ref.new_cache(ids.shape[0], ids.shape[1] + steps + 1), ids
            for _ in range(steps + 1):
                trace.hf.clear()
                trace.ours.clear()
                with torch.no_grad():
                    out = hf(token, cache=past, use_cache=True)
                mine = ref.forward(token, cache)
                assert len(trace.hf) == len(trace.ours) > 0
                differ = torch.zeros(token.shape, dtype=torch.bool)
                for a, b in zip(trace.hf, trace.ours):
                    if not flipped and not bool(differ.any()) and bool((a != b).any()):
                        # the first flip: one code, one step apart, in one row
                        assert int((a != b).sum()) == 1 and (a - b).abs().max().item() == 1, (a != b).nonzero()
                    differ |= (a != b).any(-1)
                diff = (out.logits - mine).abs().amax(-1)  # (B, T)
                for t in range(token.shape[1]):
                    flipped = flipped or bool(differ[:, t].any())
                    assert diff[:, t].max().item() <= (0.5 if flipped else tol), (t, diff[:, t], flipped)
                    exact_positions += not flipped
                past, token = out.past_key_values, out.logits[:, -1:].argmax(-1)
            return exact_positions
        finally:
            for h in handles:
                h.remove()

    return check
