"""The training model: BitNet b1.58 as edgebit/model/reference.py runs it, with latent fp32 weights.

Every linear is a BitLinear whose forward pass uses exactly the quantizers the reference and the exported
checkpoint use (absmean ternary weights, per-token absmax int8 activations, edgebit/quant/ternary.py), with
a straight-through estimator: the forward value is the quantized one, the gradient flows to the latent
weight and activation as if quantization were the identity. quant=False gives the unquantized "fp16 twin"
(trained in fp32) of the same architecture. RMSNorm, RoPE (rotate-half), GQA, SubLN and the tied head are
reference.py's own functions or the same expressions.
weights="binary" trains the same model with the original BitNet's linear (2023; edgebit/quant/binary.py): a
LayerNorm without weight inside every linear (in `groups` groups of its inputs), then the same int8 activations,
and weights sign(W - mean W) scaled by mean|W| per group of rows, with the same straight-through gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgebit.model.config import RopeConfig
from edgebit.model.reference import apply_rope, layer_norm, rms_norm, rope_cos_sin, rope_inv_freq
from edgebit.quant.binary import WEIGHT_EPS as BINARY_EPS
from edgebit.quant.ternary import ACT_EPS, ACT_MAX, WEIGHT_EPS

WEIGHTS = ("ternary", "binary")
BINARY_NORM_EPS = 1e-5  # the LayerNorm inside every binary linear


@dataclass(frozen=True)
class Shape:
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    max_position_embeddings: int
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


# in_features of every linear are multiples of 128 (whole blocks of edgebit's packed layout, no padding to read);
# vocab comes from the tokenizer.
PRESETS = {
    "tiny": Shape(128, 256, 2, 4, 2, 256),  # tests: trains in seconds
    "small": Shape(256, 768, 4, 4, 2, 512),  # the shipped model: ~3M ternary + ~1M float parameters
}


def ste_ternary_weight(w: torch.Tensor) -> torch.Tensor:
    """absmean_ternarize(w) as W_t * gamma, with the straight-through gradient."""
    gamma = w.abs().mean().clamp(min=WEIGHT_EPS)
    q = (w * gamma.reciprocal()).round().clamp(-1, 1) * gamma
    return w + (q - w).detach()


def ste_binary_weight(w: torch.Tensor, groups: int) -> torch.Tensor:
    """binarize(w, groups) as W_b * beta (per row: its group's), with the straight-through gradient."""
    g = w.reshape(groups, -1)  # (G, rows/G * K)
    alpha = g.mean(dim=1, keepdim=True)
    beta = g.abs().mean(dim=1, keepdim=True).clamp(min=BINARY_EPS)
    q = (torch.where(g - alpha > 0, 1.0, -1.0) * beta).reshape(w.shape)
    return w + (q - w).detach()


def ste_int8_activations(x: torch.Tensor) -> torch.Tensor:
    """quantize_activations(x) as x_q / s, with the straight-through gradient."""
    absmax = x.abs().amax(dim=-1, keepdim=True).clamp(min=ACT_EPS)
    s = torch.full_like(absmax, ACT_MAX) / absmax
    q = (x * s).round().clamp(-128.0, 127.0) / s
    return x + (q - x).detach()


class BitLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, quant: bool, weights: str = "ternary", groups: int = 1):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.quant, self.binary, self.groups = quant, weights == "binary", groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.quant:
            return F.linear(x, self.weight)
        if self.binary:
            x = layer_norm(x, torch.ones((), dtype=x.dtype), BINARY_NORM_EPS, self.groups)
            return F.linear(ste_int8_activations(x), ste_binary_weight(self.weight, self.groups))
        return F.linear(ste_int8_activations(x), ste_ternary_weight(self.weight))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return rms_norm(x, self.weight, self.eps)


class Attention(nn.Module):
    def __init__(self, s: Shape, linear):
        super().__init__()
        self.s = s
        q, kv = s.num_heads * s.head_dim, s.num_kv_heads * s.head_dim
        self.q_proj = linear(s.hidden_size, q)
        self.k_proj = linear(s.hidden_size, kv)
        self.v_proj = linear(s.hidden_size, kv)
        self.attn_sub_norm = RMSNorm(q, s.rms_norm_eps)
        self.o_proj = linear(q, s.hidden_size)

    def forward(self, x, cos, sin):
        s = self.s
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, s.num_heads, s.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, s.num_kv_heads, s.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, s.num_kv_heads, s.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        group = s.num_heads // s.num_kv_heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # scale head_dim**-0.5, as reference
        out = out.transpose(1, 2).reshape(b, t, -1)
        return self.o_proj(self.attn_sub_norm(out))


class MLP(nn.Module):
    def __init__(self, s: Shape, linear):
        super().__init__()
        self.gate_proj = linear(s.hidden_size, s.intermediate_size)
        self.up_proj = linear(s.hidden_size, s.intermediate_size)
        self.ffn_sub_norm = RMSNorm(s.intermediate_size, s.rms_norm_eps)
        self.down_proj = linear(s.intermediate_size, s.hidden_size)

    def forward(self, x):
        h = F.relu(self.gate_proj(x)).square() * self.up_proj(x)  # ReLU^2 gated FFN
        return self.down_proj(self.ffn_sub_norm(h))


class Layer(nn.Module):
    def __init__(self, s: Shape, linear):
        super().__init__()
        self.input_layernorm = RMSNorm(s.hidden_size, s.rms_norm_eps)
        self.self_attn = Attention(s, linear)
        self.post_attention_layernorm = RMSNorm(s.hidden_size, s.rms_norm_eps)
        self.mlp = MLP(s, linear)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        return x + self.mlp(self.post_attention_layernorm(x))


class Body(nn.Module):
    def __init__(self, s: Shape, vocab_size: int, linear):
        super().__init__()
        self.embed_tokens = nn.Embedding(vocab_size, s.hidden_size)
        self.layers = nn.ModuleList(Layer(s, linear) for _ in range(s.num_layers))
        self.norm = RMSNorm(s.hidden_size, s.rms_norm_eps)


class TrainModel(nn.Module):
    """Parameter names are the HF checkpoint's ("model.layers.0.self_attn.q_proj.weight"), so export is a
    rename-free walk over named_parameters(). The head is tied to the embedding."""

    def __init__(self, s: Shape, vocab_size: int, quant: bool = True, weights: str = "ternary", groups: int = 1):
        super().__init__()
        self.shape, self.vocab_size, self.quant, self.weights, self.groups = s, vocab_size, quant, weights, groups
        self.model = Body(s, vocab_size, lambda k, n: BitLinear(k, n, quant, weights, groups))
        self.register_buffer("inv_freq", rope_inv_freq(s.head_dim, RopeConfig(theta=s.rope_theta)), persistent=False)

    def init_weights(self, seed: int) -> None:
        """Deterministic init: N(0, 0.02) embedding, N(0, 1/sqrt(in)) linears scaled down on the residual
        outputs (o_proj, down_proj) by sqrt(2 * layers), ones for norms."""
        gen = torch.Generator().manual_seed(seed)
        depth_scale = 1.0 / math.sqrt(2 * self.shape.num_layers)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("norm.weight"):
                    p.fill_(1.0)
                elif "embed_tokens" in name:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
                else:
                    std = p.shape[1] ** -0.5 * (depth_scale if ("o_proj" in name or "down_proj" in name) else 1.0)
                    p.copy_(torch.randn(p.shape, generator=gen) * std)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1]
        cos, sin = rope_cos_sin(self.inv_freq, torch.arange(t))
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            x = layer(x, cos, sin)
        x = self.model.norm(x)
        return x @ self.model.embed_tokens.weight.T  # tied head

    def loss(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = self(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
