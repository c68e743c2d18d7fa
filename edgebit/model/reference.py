"""The reference model: BitNet b1.58 inference in plain PyTorch, the golden truth every artifact is held to.

Read it top to bottom. Every ternary linear is W1.58A8 as BitNet was trained:
    x_q, s = per-token int8 quantization of x        (edgebit/quant/ternary.py)
    acc    = x_q . W_t                               integer-exact (see ternary_linear)
    y      = acc / s * gamma
Binary weights (BitNet 2023) are the codes -1 and +1 of the same arithmetic, with gamma = beta.
Everything else (RMSNorm or LayerNorm, RoPE, attention, the head) runs in fp32; fp16 overflows on ReLU^2
activations.
Shapes: B batch, T new tokens, S cached + new positions, H hidden, F ffn, D head dim, V vocab.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from edgebit.model.config import ModelConfig, RopeConfig
from edgebit.model.weights import LayerWeights, ModelWeights, TernaryWeight
from edgebit.quant.packing import unpack_ternary
from edgebit.quant.ternary import quantize_activations

HEAD_CHUNK_ROWS = 16384  # vocab rows of a bf16 head converted to fp32 at a time


def ternary_linear(x: torch.Tensor, w: TernaryWeight) -> torch.Tensor:
    """(..., K) fp32 -> (..., N) fp32. The fp32 matmul of integers is exact: every partial sum is an
    integer of magnitude <= 128 * K <= 2^24 (K <= 131072, which ModelConfig enforces). A linear with its own
    input norm (quantization_config.use_rms_norm, OLMo-Bitnet's BitLinear158, the binary BitNet's LayerNorm)
    normalizes x first. gamma is one number, or one per output (grouped binary weights)."""
    if w.input_norm is not None:
        x = norm(x, w.input_norm, w.input_norm_eps, w.input_norm_kind, w.input_norm_groups)
    x_q, s = quantize_activations(x)
    w_t = unpack_ternary(w.packed, w.in_features).float()  # (N, K)
    acc = x_q @ w_t.T
    return acc / s * w.gamma


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """weight * (x / sqrt(mean(x^2) + eps)) as edgebit's kernels compute it (edgebit_rms_norm_rows, the norm fused
    into BitLinear): the mean of the squares summed in fp64, where each square of an fp32 is exact, and rounded once to
    fp32, so no summation order (torch's, a kernel's) changes it short of an fp64 rounding landing on an fp32 rounding
    boundary (~1e-7 of rows); then fp32 throughout. transformers sums in fp32 (a few ulps apart: verify's bound).
    torch.rsqrt is 1 / sqrt with both steps correctly rounded (1.0f / sqrtf in C); torch.sqrt is not (Sleef's, off by
    an ulp in ~17% of floats), so 1.0 / torch.sqrt(v) would not be the kernels' float."""
    mean_sq = (x.double().square().sum(-1, keepdim=True) / x.shape[-1]).float()
    return weight * (x * torch.rsqrt(mean_sq + eps))


def layer_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, groups: int = 1) -> torch.Tensor:
    """LayerNorm (mean subtracted, biased variance) over the last dim, or over each of `groups` equal slices of it
    (the binary BitNet's group normalization), then the weight. torch's own layer_norm: the floats of OLMo's and
    transformers' LayerNorm (with no weight, then * weight: bit-identical to passing the weight in)."""
    k = x.shape[-1]
    if groups == 1:
        return F.layer_norm(x, (k,), None, None, eps) * weight
    return F.layer_norm(x.unflatten(-1, (groups, k // groups)), (k // groups,), None, None, eps).flatten(-2) * weight


def norm(x: torch.Tensor, weight: torch.Tensor, eps: float, kind: str = "rms", groups: int = 1) -> torch.Tensor:
    """kind "rms" (RMSNorm) or "layer" (LayerNorm), ModelConfig.norm / TernaryWeight.input_norm_kind."""
    return rms_norm(x, weight, eps) if kind == "rms" else layer_norm(x, weight, eps, groups)


def rope_inv_freq(head_dim: int, rope: RopeConfig) -> torch.Tensor:
    """(D/2,) inverse frequencies; "llama3" rescales the low frequencies as Llama 3.1 does."""
    inv_freq = 1.0 / (rope.theta ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))
    if rope.kind == "default":
        return inv_freq
    old_len = rope.original_max_position_embeddings
    low_wavelen = old_len / rope.low_freq_factor
    high_wavelen = old_len / rope.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_wavelen, inv_freq / rope.factor, inv_freq)
    smooth = (old_len / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor)
    smoothed = (1 - smooth) * scaled / rope.factor + smooth * scaled
    is_medium = ~(wavelen < high_wavelen) & ~(wavelen > low_wavelen)
    return torch.where(is_medium, smoothed, scaled)


def rope_cos_sin(inv_freq: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    freqs = positions[:, None].float() * inv_freq[None, :]  # (T, D/2)
    emb = torch.cat((freqs, freqs), dim=-1)  # (T, D): rotate-half order
    return emb.cos(), emb.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (B, heads, T, D); rotate-half: pairs are (i, i + D/2)."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class KVCache:
    """Keys and values of every layer for positions [0, length): (B, KVH, max_seq_len, D) each."""

    def __init__(self, cfg: ModelConfig, batch: int, max_seq_len: int):
        shape = (batch, cfg.num_kv_heads, max_seq_len, cfg.head_dim)
        self.k = [torch.zeros(shape) for _ in range(cfg.num_layers)]
        self.v = [torch.zeros(shape) for _ in range(cfg.num_layers)]
        self.max_seq_len = max_seq_len
        self.length = 0


# kv_dtype -> (how k and v are rounded as the cache holds them, q and the attention output rounded to fp16 too)
KV_ROUNDING = {"float32": (None, False), "float16": ("float16", False), "float16-qkvo": ("float16", True),
               "int8": ("int8", False)}


class ReferenceModel:
    """head "fp32" computes the checkpoint's embedding and head in fp32; "int8" or "q4" computes what an artifact with
    that head computes (edgebit/quant/qhead.py): the embedding from the dequantized rows and the logits as QLinear."""

    def __init__(self, weights: ModelWeights, head: str = "fp32", kv_dtype: str = "float32"):
        """kv_dtype "float16": what an artifact with an fp16 cache computes: k and v rounded to fp16 after RoPE (the
        cache holds them), attention in fp32 over them (edgebit.Attention); "float16-qkvo": what fp16-cache artifacts
        of earlier edgebit versions compute (ONNX Runtime's GroupQueryAttention in fp16): q rounded too, and the
        attention's output; "int8": k and v through the int8 cache's rows (edgebit/quant/kv_int8.py: code * scale,
        max|row| / 127 a row)."""
        if kv_dtype not in KV_ROUNDING:
            raise ValueError(f"kv_dtype {kv_dtype!r} is not one of {', '.join(KV_ROUNDING)}")
        self.w = weights
        self.kv_round, self.qo_half = KV_ROUNDING[kv_dtype]
        self.cfg = weights.config
        self.inv_freq = rope_inv_freq(self.cfg.head_dim, self.cfg.rope)
        self.head = head
        if head != "fp32":
            from edgebit.quant.qhead import HEAD_BITS, quantize_head

            self.bits = HEAD_BITS[head]
            self.embed_q = quantize_head(weights.embed, self.bits)
            self.head_q = self.embed_q if weights.lm_head is None else quantize_head(weights.lm_head, self.bits)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.head == "fp32":
            return self.w.embed[input_ids].float()
        from edgebit.quant.qhead import dequantize_head

        rows, scale = self.embed_q
        flat = input_ids.reshape(-1)
        return dequantize_head(rows[flat], scale[flat], self.cfg.hidden_size, self.bits).view(*input_ids.shape, -1)

    def new_cache(self, batch: int = 1, max_seq_len: int | None = None) -> KVCache:
        return KVCache(self.cfg, batch, max_seq_len or self.cfg.max_position_embeddings)

    @torch.no_grad()
    def forward(self, input_ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """input_ids (B, T) -> logits (B, T, V). With a cache, the T tokens follow the cached ones
        (prefill when the cache is empty, one-token decode when T == 1) and the cache is extended."""
        cfg = self.cfg
        batch, t = input_ids.shape
        cache = cache or self.new_cache(batch, t)
        start = cache.length
        if start + t > cache.max_seq_len:
            raise ValueError(f"sequence of {start + t} tokens exceeds the cache's {cache.max_seq_len}")
        positions = torch.arange(start, start + t)
        cos, sin = rope_cos_sin(self.inv_freq, positions)

        x = self.embed(input_ids)  # (B, T, H)
        for i, layer in enumerate(self.w.layers):
            x = x + self.attention(i, layer, norm(x, layer.attn_norm, cfg.rms_norm_eps, cfg.norm), cos, sin, cache,
                                   start)
            x = x + self.mlp(layer, norm(x, layer.mlp_norm, cfg.rms_norm_eps, cfg.norm))
        cache.length = start + t
        return self.logits(norm(x, self.w.final_norm, cfg.rms_norm_eps, cfg.norm))

    def attention(self, i: int, layer: LayerWeights, x: torch.Tensor, cos, sin, cache: KVCache, start: int):
        cfg = self.cfg
        batch, t, _ = x.shape
        q = ternary_linear(x, layer.q).view(batch, t, cfg.num_heads, cfg.head_dim).transpose(1, 2)
        k = ternary_linear(x, layer.k).view(batch, t, cfg.num_kv_heads, cfg.head_dim).transpose(1, 2)
        v = ternary_linear(x, layer.v).view(batch, t, cfg.num_kv_heads, cfg.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)  # (B, heads, T, D)
        if self.kv_round == "float16":
            k, v = k.half().float(), v.half().float()
        elif self.kv_round == "int8":
            from edgebit.quant.kv_int8 import round_trip

            k, v = round_trip(k), round_trip(v)
        if self.qo_half:
            q = q.half().float()

        end = start + t
        cache.k[i][:, :, start:end] = k
        cache.v[i][:, :, start:end] = v
        group = cfg.num_heads // cfg.num_kv_heads  # GQA: each KV head serves `group` query heads
        keys = cache.k[i][:, :, :end].repeat_interleave(group, dim=1)  # (B, heads, S, D)
        values = cache.v[i][:, :, :end].repeat_interleave(group, dim=1)

        scores = (q @ keys.transpose(2, 3)) * cfg.head_dim**-0.5  # (B, heads, T, S)
        # query at position start+r may see keys at positions <= start+r
        causal = torch.arange(end)[None, :] > (torch.arange(t)[:, None] + start)
        scores = scores.masked_fill(causal, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ values  # (B, heads, T, D)
        if self.qo_half:
            out = out.half().float()
        out = out.transpose(1, 2).reshape(batch, t, cfg.q_size)
        if layer.attn_sub_norm is not None:
            out = norm(out, layer.attn_sub_norm, cfg.rms_norm_eps, cfg.norm)
        return ternary_linear(out, layer.o)

    def mlp(self, layer: LayerWeights, x: torch.Tensor) -> torch.Tensor:
        gate = ternary_linear(x, layer.gate)  # (B, T, F)
        act = F.relu(gate).square() if self.cfg.activation == "relu2" else F.silu(gate)
        h = act * ternary_linear(x, layer.up)
        if layer.ffn_sub_norm is not None:
            h = norm(h, layer.ffn_sub_norm, self.cfg.rms_norm_eps, self.cfg.norm)
        return ternary_linear(h, layer.down)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if self.head != "fp32":
            from edgebit.quant.qhead import qlinear_reference

            return qlinear_reference(x, *self.head_q, self.bits)
        head = self.w.head  # (V, H)
        if head.dtype == torch.float32:
            return x @ head.T
        # A bf16 head of a real model is ~0.7 GB; converting it whole to fp32 would double that.
        chunks = [x @ head[r : r + HEAD_CHUNK_ROWS].float().T for r in range(0, head.shape[0], HEAD_CHUNK_ROWS)]
        return torch.cat(chunks, dim=-1)
