"""OLMo-Bitnet checkpoints written the way hf_olmo writes them, and the independent implementation they are held
to: transformers' own OLMo model (OlmoForCausalLM) with every linear replaced by transformers' BitNet quantized
linear (AutoBitLinear, online quantization, use_rms_norm with a weight of ones: BitLinear158's RMSLayerNorm without
affine, eps 1e-5), the weights re-laid out from OLMo's fused tensors. Not edgebit's reference."""

import json
from pathlib import Path

import pytest
import torch
from torch import nn

# A scaled-down OLMo-1B config (OLMo's configs/official/OLMo-1B.yaml shape keys; embedding rows padded past the
# vocabulary as OLMo pads 50280 to 50304).
OLMO_TINY = dict(d_model=128, n_heads=4, n_layers=2, mlp_ratio=4, vocab_size=300, embedding_size=384,
                 max_sequence_length=128, eos_token_id=299, pad_token_id=1)
# Every field of OLMo's ModelConfig, as hf_olmo's OLMoConfig(**ModelConfig.asdict()) saves them, with OLMo-1B's
# values for the ones that are not shape.
OLMO_KEYS = dict(n_kv_heads=None, clip_qkv=None, mlp_hidden_size=None, activation_type="swiglu",
                 block_type="sequential", block_group_size=1, alibi=False, alibi_bias_max=8.0, rope=True,
                 rope_full_precision=True, flash_attention=True, attention_dropout=0.0, multi_query_attention=False,
                 attention_layer_norm=False, residual_dropout=0.0, embedding_dropout=0.0, layer_norm_type="default",
                 layer_norm_with_affine=False, attention_layer_norm_with_affine=False, include_bias=False,
                 bias_for_layer_norm=False, scale_logits=False, weight_tying=True, init_device="meta",
                 init_fn="mitchell", init_std=0.02, init_cutoff_factor=None, precision="amp_bf16")
HF_KEYS = dict(architectures=["OLMoForCausalLM"], model_type="olmo", use_cache=True, torch_dtype="float32",
               auto_map={"AutoConfig": "configuration_olmo.OLMoConfig",
                         "AutoModelForCausalLM": "modeling_olmo.OLMoForCausalLM"},
               transformers_version="4.39.3")
NORM_EPS = 1e-5


def olmo_config(**overrides) -> dict:
    return {**OLMO_KEYS, **OLMO_TINY, **HF_KEYS, **overrides}


def olmo_state(raw: dict, seed: int, embed_std: float = 1.0) -> dict[str, torch.Tensor]:
    """Random float masters under hf_olmo's names (OLMoForCausalLM.model = OLMo: model.transformer.*). embed_std
    sets the logits' scale (the head is wte): 1.0 gives logits of ~10, where 1e-4 parity is a real bound; an
    artifact test wants a smaller one, as a trained model has, where an int8 rounding flip moves the logits by a
    few hundredths rather than by half a unit (edgebit/verify.py)."""
    gen = torch.Generator().manual_seed(seed)
    d, heads, layers = raw["d_model"], raw["n_heads"], raw["n_layers"]
    kv = (raw.get("n_kv_heads") or heads) * (d // heads)
    hidden = raw.get("mlp_hidden_size") or raw["mlp_ratio"] * d
    rows = raw.get("embedding_size") or raw["vocab_size"]

    def rand(*shape, std=0.1):
        return torch.randn(shape, generator=gen) * std

    state = {"model.transformer.wte.weight": rand(rows, d, std=embed_std)}
    for i in range(layers):
        p = f"model.transformer.blocks.{i}."
        state[p + "att_proj.weight"] = rand(d + 2 * kv, d)
        state[p + "attn_out.weight"] = rand(d, d)
        state[p + "ff_proj.weight"] = rand(hidden, d)
        state[p + "ff_out.weight"] = rand(d, hidden // 2)
        if raw["layer_norm_with_affine"]:
            state[p + "attn_norm.weight"] = 1 + 0.2 * rand(d, std=1.0)
            state[p + "ff_norm.weight"] = 1 + 0.2 * rand(d, std=1.0)
    if raw["layer_norm_with_affine"]:
        state["model.transformer.ln_f.weight"] = 1 + 0.2 * rand(d, std=1.0)
    return state


def write_olmo_checkpoint(directory: Path, seed: int = 0, tokenizer: Path | None = None, embed_std: float = 1.0,
                          **overrides) -> Path:
    from safetensors.torch import save_file

    raw = olmo_config(**overrides)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(raw, indent=2))
    save_file(olmo_state(raw, seed, embed_std), directory / "model.safetensors", metadata={"format": "pt"})
    if tokenizer is None:
        from edgebit.tokenizer import byte_level_tokenizer

        byte_level_tokenizer(raw["vocab_size"]).save(str(directory / "tokenizer.json"))
    else:
        (directory / "tokenizer.json").write_bytes(tokenizer.read_bytes())
    return directory


class FusedPart(nn.Module):
    """Rows lo:hi of a fused BitNet linear's output: q, k, v of att_proj and the two halves of ff_proj. The fused
    linear quantizes its whole weight (one absmean scale) and its input once, as OLMo-Bitnet's BitLinear158 does."""

    def __init__(self, fused: nn.Module, lo: int, hi: int):
        super().__init__()
        self.fused, self.lo, self.hi = fused, lo, hi

    def forward(self, x):
        return self.fused(x)[..., self.lo : self.hi]


def _bit_linear(weight: torch.Tensor) -> nn.Module:
    from transformers.integrations.bitnet import AutoBitLinear

    n, k = weight.shape
    lin = AutoBitLinear(k, n, bias=False, online_quant=True, use_rms_norm=True, rms_norm_eps=NORM_EPS)
    with torch.no_grad():
        lin.weight.copy_(weight)
        lin.rms_norm.weight.fill_(1.0)  # RMSLayerNorm(config, elementwise_affine=False): no weight
    return lin


def independent_model(path: Path):
    """transformers' OlmoForCausalLM computing the checkpoint at `path` with transformers' BitNet linears."""
    from safetensors.torch import load_file
    from transformers import OlmoConfig, OlmoForCausalLM
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    raw = json.loads((path / "config.json").read_text())
    state = load_file(path / "model.safetensors")
    d, heads = raw["d_model"], raw["n_heads"]
    kv_heads = raw.get("n_kv_heads") or heads
    hidden = raw.get("mlp_hidden_size") or raw["mlp_ratio"] * d
    cfg = OlmoConfig(vocab_size=raw.get("embedding_size") or raw["vocab_size"], hidden_size=d,
                     intermediate_size=hidden // 2, num_hidden_layers=raw["n_layers"], num_attention_heads=heads,
                     num_key_value_heads=kv_heads, max_position_embeddings=raw["max_sequence_length"],
                     hidden_act="silu", attention_bias=False, clip_qkv=None, tie_word_embeddings=True,
                     rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, pad_token_id=None,
                     bos_token_id=None, eos_token_id=None)
    model = OlmoForCausalLM(cfg).eval()
    kv = kv_heads * (d // heads)
    rms = raw["layer_norm_type"] == "rms"

    def block_norm(weight_name):
        # OLMo's "rms" type is RMSLayerNorm (an RMSNorm, weight when affine); transformers' Olmo has LayerNorm only
        norm = LlamaRMSNorm(d, eps=NORM_EPS)
        with torch.no_grad():
            norm.weight.copy_(state.get(weight_name, torch.ones(d)))
        return norm

    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(state["model.transformer.wte.weight"])
        for i, layer in enumerate(model.model.layers):
            p = f"model.transformer.blocks.{i}."
            att, ff = _bit_linear(state[p + "att_proj.weight"]), _bit_linear(state[p + "ff_proj.weight"])
            attn = layer.self_attn
            attn.q_proj, attn.k_proj, attn.v_proj = FusedPart(att, 0, d), FusedPart(att, d, d + kv), \
                FusedPart(att, d + kv, d + 2 * kv)
            attn.o_proj = _bit_linear(state[p + "attn_out.weight"])
            f = hidden // 2  # SwiGLU: x, gate = ff_proj(x).chunk(2); silu(gate) * x
            layer.mlp.up_proj, layer.mlp.gate_proj = FusedPart(ff, 0, f), FusedPart(ff, f, 2 * f)
            layer.mlp.down_proj = _bit_linear(state[p + "ff_out.weight"])
            if rms:
                layer.input_layernorm = block_norm(p + "attn_norm.weight")
                layer.post_attention_layernorm = block_norm(p + "ff_norm.weight")
        if rms:
            model.model.norm = block_norm("model.transformer.ln_f.weight")
    return model.eval()


@pytest.fixture(scope="session")
def olmo_checkpoint(tmp_path_factory):
    """olmo_checkpoint(**config overrides) -> checkpoint dir, built once per session per variant."""
    built = {}

    def make(tokenizer: Path | None = None, embed_std: float = 1.0, **overrides) -> Path:
        key = (str(tokenizer), embed_std, tuple(sorted((k, json.dumps(v)) for k, v in overrides.items())))
        if key not in built:
            built[key] = write_olmo_checkpoint(tmp_path_factory.mktemp("olmo"), tokenizer=tokenizer,
                                               embed_std=embed_std, **overrides)
        return built[key]

    return make


@pytest.fixture(scope="session")
def olmo_independent():
    return independent_model


# GPT-NeoX's whitespace tokens: runs of 2..24 spaces, added (not special, matched after normalization) at the end of
# the vocabulary; OLMo's tokenizer (allenai/gpt-neox-olmo-dolma-v1_5) adds PII placeholders, its EOS among them.
NEOX_SPACES = [" " * n for n in range(24, 1, -1)]
OLMO_PII = ["|||EMAIL_ADDRESS|||", "|||PHONE_NUMBER|||", "|||IP_ADDRESS|||"]


def gpt_neox_tokenizer(path: Path, texts: list[str], vocab_size: int = 400) -> Path:
    """A tokenizer.json with the structure of GPT-NeoX-20B's (and OLMo's): NFC normalizer; ByteLevel pre-tokenizer
    (add_prefix_space false, trim_offsets true, GPT-2 regex), ByteLevel post-processor and decoder; byte-level BPE;
    <|endoftext|> (id 0) and <|padding|> (id 1) special and not normalized; the whitespace-run tokens normalized and
    not special; OLMo's PII tokens. Trained with `tokenizers` on `texts` (nothing downloaded)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True)
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|padding|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.add_tokens([AddedToken(s, normalized=True, special=False) for s in NEOX_SPACES])
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in OLMO_PII])
    tok.save(str(path))
    return path
