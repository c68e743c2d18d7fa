"""The ExecuTorch decoder: the reference model (edgebit/model/reference.py) as a torch nn.Module that
torch.export can trace, in the form ExecuTorch's LLM runner drives (DESIGN.md 7):

    forward(tokens int64 [1, T], input_pos int64 [T]) -> logits float32 [1, 1, V]

T is dynamic (1 .. max_seq_len): a whole prompt in one call, then one token a call. The logits are the last
position's only (manifest "logits": "last"), as ExecuTorch's own LLM export makes them without
--generate_full_logits: the head is a third of a decoded token's bytes, and over all 128 positions of a prompt it
was a quarter of the prefill. Earlier positions' logits are never sampled; verify compares them token by token.
The KV cache is one pair of mutable buffers per layer, keys and values [1, KVH, max_seq_len, D], written at
input_pos in place by edgebit::cache_write (edgebit/ops/torch_cache.py) and read by edgebit::attention
(edgebit/ops/torch_attention.py), which reads only the positions up to each query's own. The torchao baseline, which
runs without edgebit's kernel library, keeps stock ops: index_copy_ (index_put.out into a new tensor plus a
write-back copy of the whole cache in ExecuTorch), keys stored [1, KVH, D, max_seq_len] and a masked product with
the whole buffer. Either way keys past the query's position are never used, so starting over at input_pos 0 needs no
clearing. Every ternary linear is one torch.ops.edgebit.bitlinear call; q/k/v and gate/up are one call each on
concatenated weights with per-channel gamma (one activation quantization), as in the ONNX graph, unless
quantization_config.use_rms_norm gives each linear its own input norm (then one norm and one call each).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import edgebit.ops.torch_ops  # noqa: F401  (registers torch.ops.edgebit.bitlinear)
import edgebit.ops.torch_rms_bitlinear  # noqa: F401  (registers torch.ops.edgebit.rms_bitlinear)
from edgebit.model.config import ModelConfig
from edgebit.model.reference import rope_cos_sin, rope_inv_freq
from edgebit.model.weights import ModelWeights, TernaryWeight
from edgebit.ops.torch_attention import attention
from edgebit.ops.torch_cache import cache_write
from edgebit.ops.torch_qlinear import qlinear
from edgebit.ops.torch_relu2_bitlinear import relu2_bitlinear
from edgebit.ops.torch_rope import rope
from edgebit.quant.packing import padded_k
from edgebit.quant.qhead import HEAD_BITS, group_of, quantize_head


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """The reference's RMSNorm with x * x for x.pow(2): the same floats (PyTorch computes pow(x, 2) as x * x),
    but ExecuTorch's pow.out calls std::pow per element, which took 9% of a decoded 2B4T token."""
    return weight * (x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps))


def norm(x: torch.Tensor, weight: torch.Tensor, eps: float, kind: str, groups: int = 1) -> torch.Tensor:
    """RMSNorm as above, or the reference's LayerNorm (edgebit/model/reference.py layer_norm: torch's layer_norm,
    in `groups` slices of the last dim)."""
    if kind == "rms":
        return rms_norm(x, weight, eps)
    k = x.shape[-1]
    if groups == 1:
        return F.layer_norm(x, (k,), None, None, eps) * weight
    return F.layer_norm(x.unflatten(-1, (groups, k // groups)), (k // groups,), None, None, eps).flatten(-2) * weight


class BitLinear(nn.Module):
    """Linears sharing an input, concatenated along N: packed uint8 [N, ceil(K/128)*32] (layout v2) and gamma [N].
    norm (weight [K], eps): the RMSNorm in front of them, fused in (edgebit::rms_bitlinear)."""

    def __init__(self, weights: list[TernaryWeight], norm: tuple[torch.Tensor, float] | None = None):
        super().__init__()
        self.register_buffer("w_packed", torch.cat([w.packed for w in weights]).contiguous())
        self.register_buffer("gamma", torch.cat([w.gamma.float().expand(w.out_features) for w in weights]).contiguous())
        self.norm_eps = None if norm is None else float(norm[1])
        if norm is not None:
            self.register_buffer("norm_weight", norm[0].float().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_eps is not None:
            return torch.ops.edgebit.rms_bitlinear(x, self.norm_weight, self.norm_eps, self.w_packed, self.gamma)
        return torch.ops.edgebit.bitlinear(x, self.w_packed, self.gamma)


class Normed(nn.Module):
    """A norm of the decoder's (weight, eps, kind, groups) applied to x: RMSNorm or the reference's LayerNorm."""

    def __init__(self, weight: torch.Tensor, eps: float, kind: str, groups: int = 1):
        super().__init__()
        self.register_buffer("weight", weight.float())
        self.eps, self.kind, self.groups = eps, kind, groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return norm(x, self.weight, self.eps, self.kind, self.groups)


def _input_norm(w: TernaryWeight) -> tuple | None:
    return None if w.input_norm is None else (w.input_norm, w.input_norm_eps, w.input_norm_kind, w.input_norm_groups)


class SharedInput(nn.Module):
    """Ternary linears that read the same x, as modules made by `linear` (BitLinear or the baseline's): one over
    their concatenated weights, split after, when they quantize x the same way (no input norm, or the same one,
    applied once); with different per-linear input norms (use_rms_norm's own weights) each normalizes x itself,
    so each is its own module behind its own norm. block_norm (weight, eps, kind): the block's norm in front of
    them, if any. The norm right before a quantization goes into edgebit's BitLinear when it is an RMSNorm (one
    edgebit::rms_bitlinear call, no elementwise norm ops); otherwise it is applied first (Normed)."""

    def __init__(self, weights: list[TernaryWeight], linear=BitLinear, block_norm: tuple | None = None):
        super().__init__()
        self.sizes = [w.out_features for w in weights]
        self.shared = all(w.same_input_norm(weights[0]) for w in weights)
        fuses = linear is BitLinear  # the baseline's linears take no norm

        def fusable(n) -> bool:
            return fuses and n is not None and n[2] == "rms" and (len(n) < 4 or n[3] == 1)

        # The block norm goes into the one linear below when it is the last step before its quantization and
        # fusable; otherwise it is applied first.
        block_norm = block_norm if block_norm is not None and block_norm[0] is not None else None
        self.block = None
        if block_norm is not None and not (self.shared and weights[0].input_norm is None and fusable(block_norm)):
            self.block, block_norm = Normed(*block_norm), None

        def part(ws: list[TernaryWeight], n) -> tuple[nn.Module, nn.Module | None]:
            if fusable(n):
                return BitLinear(ws, norm=(n[0], n[1])), None
            return linear(ws), None if n is None else Normed(*n)

        if self.shared:
            self.fused, self.fused_norm = part(weights, block_norm or _input_norm(weights[0]))
        else:
            pairs = [part([w], _input_norm(w)) for w in weights]
            self.parts = nn.ModuleList(p for p, _ in pairs)
            self.part_norms = nn.ModuleList(n if n is not None else nn.Identity() for _, n in pairs)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.block is not None:
            x = self.block(x)
        if self.shared:
            y = self.joined(x, block_done=True)
            return list(y.split(self.sizes, dim=-1)) if len(self.sizes) > 1 else [y]
        return [part(n(x)) for part, n in zip(self.parts, self.part_norms)]

    def joined(self, x: torch.Tensor, block_done: bool = False) -> torch.Tensor:
        """The shared linear's output unsplit ([..., sum of sizes]), for an op that reads it as one tensor."""
        if self.block is not None and not block_done:
            x = self.block(x)
        return self.fused(x if self.fused_norm is None else self.fused_norm(x))


class Layer(nn.Module):
    def __init__(self, cfg: ModelConfig, lw, max_seq_len: int, linear=BitLinear, in_place_cache: bool = True,
                 kv_dtype: torch.dtype = torch.float32):
        super().__init__()
        self.cfg = cfg
        self.in_place_cache = in_place_cache
        # Each block norm belongs to the linears it feeds (fused into edgebit's op when it is an RMSNorm).
        def block(weight):
            return None if weight is None else (weight, cfg.rms_norm_eps, cfg.norm)

        self.qkv = SharedInput([lw.q, lw.k, lw.v], linear, block(lw.attn_norm))
        self.o = SharedInput([lw.o], linear, block(lw.attn_sub_norm))
        self.gate_up = SharedInput([lw.gate, lw.up], linear, block(lw.mlp_norm))
        self.down = SharedInput([lw.down], linear, block(lw.ffn_sub_norm))
        # BitNet's ReLU^2 GLU with an RMS sub-norm (2B4T): the down projection takes gate/up's output as is and
        # computes relu(gate)^2 * up and the sub-norm in its kernel (edgebit::relu2_bitlinear), as the ONNX
        # BitLinear's relu2_gate does.
        down = self.down.fused if self.down.shared else None
        self.relu2_down = (linear is BitLinear and cfg.activation == "relu2" and self.gate_up.shared
                           and self.down.block is None and self.down.fused_norm is None
                           and isinstance(down, BitLinear) and down.norm_eps is not None)
        # The stock path stores keys transposed, (1, KVH, D, S): its score product then reads them as they lie, where
        # a transpose of a (1, KVH, S, D) cache is a copy of the whole cache in ExecuTorch every step.
        # An int8 cache's rows are D codes and the row's float32 scale (edgebit/quant/kv_int8.py).
        row = cfg.head_dim + 4 if kv_dtype == torch.int8 else cfg.head_dim
        k_shape = (cfg.head_dim, max_seq_len) if not in_place_cache else (max_seq_len, row)
        self.register_buffer("k_cache", torch.zeros(1, cfg.num_kv_heads, *k_shape, dtype=kv_dtype), persistent=False)
        self.register_buffer("v_cache", torch.zeros(1, cfg.num_kv_heads, max_seq_len, row, dtype=kv_dtype),
                             persistent=False)

    def forward(self, x, cos, sin, mask_bias, input_pos):
        x = x + self.attention(x, cos, sin, mask_bias, input_pos)  # the norms: in qkv and gate_up
        return x + self.mlp(x)

    def attention(self, x, cos, sin, mask_bias, input_pos):
        cfg = self.cfg
        q, k, v = self.qkv(x)
        if self.in_place_cache:
            out = self.edgebit_attention(q, k, v, cos, sin, input_pos)
        else:
            out = self.stock_attention(q, k, v, cos, sin, mask_bias, input_pos)
        return self.o(out)[0]

    def edgebit_attention(self, q, k, v, cos, sin, input_pos):
        """edgebit::cache_write and edgebit::attention: the new rows written in place, then only the cached
        positions each query may see read."""
        cfg = self.cfg
        t = q.shape[1]
        kvh, d = cfg.num_kv_heads, cfg.head_dim
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (T, 1, D): each query's angles, for every head
        q = rope(q.view(1, t, cfg.num_heads, d), cos, sin)  # edgebit::rope: apply_rope in one call
        cache_write(rope(k.view(1, t, kvh, d), cos, sin).transpose(1, 2), self.k_cache, input_pos, 2)
        cache_write(v.view(1, t, kvh, d).transpose(1, 2), self.v_cache, input_pos, 2)
        return attention(q, self.k_cache, self.v_cache, input_pos, d**-0.5)

    def stock_attention(self, q, k, v, cos, sin, mask_bias, input_pos):
        """The torchao baseline's: stock ops only, the whole cache buffer read and masked every step."""
        cfg = self.cfg
        t = q.shape[1]
        kvh, d, group = cfg.num_kv_heads, cfg.head_dim, cfg.num_heads // cfg.num_kv_heads
        q = apply_rope(q.view(1, t, kvh, group, d).permute(0, 2, 3, 1, 4), cos, sin)  # (1, KVH, G, T, D)
        k = apply_rope(k.view(1, t, kvh, d).transpose(1, 2), cos, sin)  # (1, KVH, T, D)
        v = v.view(1, t, kvh, d).transpose(1, 2)
        self.k_cache.index_copy_(3, input_pos, k.transpose(2, 3))
        self.v_cache.index_copy_(2, input_pos, v)
        # GQA without copying the cache: the `group` query heads of each KV head stacked along the query axis
        # (KVH, G*T, D), so one 3-D bmm per KV head reads its keys and values where they lie (a 4-D matmul
        # would become expand_copy of both caches in ExecuTorch, every step).
        s = self.k_cache.shape[3]
        q = q.contiguous().view(kvh, group * t, d)
        scores = torch.bmm(q, self.k_cache.view(kvh, d, s)) * d**-0.5  # (KVH, G*T, S)
        scores = scores + mask_bias  # (G*T, S), one row per (query head of the group, query)
        out = torch.bmm(torch.softmax(scores, dim=-1), self.v_cache.view(kvh, s, d))  # (KVH, G*T, D)
        return out.view(1, kvh, group, t, d).permute(0, 3, 1, 2, 4).reshape(1, t, cfg.q_size)

    def mlp(self, x):
        cfg = self.cfg
        if self.relu2_down:
            d = self.down.fused
            return relu2_bitlinear(self.gate_up.joined(x), d.norm_weight, d.norm_eps, d.w_packed, d.gamma)
        gate, up = self.gate_up(x)
        if cfg.activation == "relu2":
            act = F.relu(gate)
            act = act * act  # square() would be ExecuTorch's per-element std::pow (see rms_norm)
        else:
            act = F.silu(gate)
        return self.down(act * up)[0]


def apply_rope(x, cos, sin):
    """Rotate-half RoPE, pairs (i, i + D/2). The halves are taken with unflatten + select, not slices: a slice
    of a dynamic-length tensor leaves torch.export a guard it cannot prove for every length."""
    halves = x.unflatten(-1, (2, x.shape[-1] // 2))
    rotated = torch.stack((-halves.select(-2, 1), halves.select(-2, 0)), dim=-2).flatten(-2)
    return x * cos + rotated * sin


class QTable(nn.Module):
    """A table in the rows of edgebit's QLinear (edgebit/quant/qhead.py: int8 per row, or q4). As the head it is one
    edgebit::qlinear call (the kernel library's GEMV); as the embedding it gathers rows and dequantizes them with
    stock ops: int8 q = byte - 128; q4 nibbles unpacked per 64-weight chunk (low nibbles, then high), minus 8, times
    each weight's group scale; then times the row scale."""

    def __init__(self, table: torch.Tensor, head: str):
        super().__init__()
        self.bits = HEAD_BITS[head]
        self.k = table.shape[1]
        rows, scale = quantize_head(table, self.bits)
        self.register_buffer("rows", rows)
        self.register_buffer("scale", scale)
        self.register_buffer("group", group_of(padded_k(self.k)))

    def embed(self, tokens):
        r = self.rows[tokens]  # (1, T, row bytes) uint8
        kp = padded_k(self.k)
        if self.bits == 8:
            q = r.float() - 128.0
        else:
            n = r[..., : kp // 2].to(torch.int32).unflatten(-1, (kp // 64, 32))
            nibbles = torch.stack((torch.remainder(n, 16), torch.div(n, 16, rounding_mode="floor")), dim=-2)
            q = (nibbles.flatten(-3) - 8).float()
            q = q * r[..., kp // 2 :].float().index_select(-1, self.group)  # each weight's group scale
        return q[..., : self.k] * self.scale[tokens].unsqueeze(-1)

    def logits(self, x):
        return qlinear(x, self.rows, self.scale, self.bits)


class Decoder(nn.Module):
    """linear: the module of each group of ternary linears (BitLinear: edgebit's op; the torchao baseline's
    TorchaoLinear). head_linear: a module to compute the logits instead of the head below (the baseline's).
    in_place_cache: the cache written by edgebit::cache_write and read by edgebit::attention (False: stock index_copy_
    and a masked product with the whole buffer, for the baseline, which runs without edgebit's kernel library).
    kv_dtype: the cache's element type ("float16": keys and values rounded as written, attention in fp32 over them;
    "int8": rows quantized as written, read as code * scale; both the in-place cache only)."""

    def __init__(self, weights: ModelWeights, max_seq_len: int, head: str = "fp32", linear=BitLinear,
                 head_linear: nn.Module | None = None, in_place_cache: bool = True, kv_dtype: str = "float32"):
        super().__init__()
        cfg = self.cfg = weights.config
        self.head_kind = head
        self.in_place_cache = in_place_cache
        if kv_dtype not in ("float32", "float16", "int8") or (kv_dtype != "float32" and not in_place_cache):
            raise ValueError(f"kv_dtype {kv_dtype!r}: float32, or float16 or int8 with the in-place cache")
        dtype = {"float16": torch.float16, "int8": torch.int8}.get(kv_dtype, torch.float32)
        self.layers = nn.ModuleList(Layer(cfg, lw, max_seq_len, linear, in_place_cache, dtype)
                                    for lw in weights.layers)
        self.head_linear = head_linear
        self.register_buffer("final_norm", weights.final_norm.float())
        cos, sin = rope_cos_sin(rope_inv_freq(cfg.head_dim, cfg.rope), torch.arange(max_seq_len))
        self.register_buffer("rope_cos", cos)
        self.register_buffer("rope_sin", sin)
        self.register_buffer("key_pos", torch.arange(max_seq_len))
        # A tied head reads the embedding's own buffer: one copy in the program.
        self.tied = weights.lm_head is None
        if head == "fp32":
            self.register_buffer("embed", weights.embed.float())
            if not self.tied:
                self.register_buffer("lm_head", weights.lm_head.float())
        else:
            self.embed_q = QTable(weights.embed, head)
            if not self.tied:
                self.head_q = QTable(weights.lm_head, head)

    def forward(self, tokens: torch.Tensor, input_pos: torch.Tensor) -> torch.Tensor:
        """tokens (1, T), input_pos (T,) -> logits (1, 1, V): the last position's"""
        cos = self.rope_cos[input_pos]  # (T, D)
        sin = self.rope_sin[input_pos]
        # (T, S): 0 where the query may attend, -inf for a key after it. Added to the scores (the same floats as
        # masked_fill: s + 0 = s, s + -inf = -inf), built once per call: ExecuTorch's where.out, per layer,
        # took 4% of a decoded token.
        mask_bias = None  # edgebit::attention masks by input_pos itself
        if not self.in_place_cache:
            zero = torch.zeros((), dtype=torch.float32)
            mask_bias = torch.where(self.key_pos[None, :] > input_pos[:, None], zero - float("inf"), zero)
            mask_bias = mask_bias.repeat(self.cfg.num_heads // self.cfg.num_kv_heads, 1)  # rows as the queries stack
        x = self.embed[tokens] if self.head_kind == "fp32" else self.embed_q.embed(tokens)  # (1, T, H)
        for layer in self.layers:
            x = layer(x, cos, sin, mask_bias, input_pos)
        x = x[:, -1:, :]  # only the last position's logits are sampled
        x = norm(x, self.final_norm, self.cfg.rms_norm_eps, self.cfg.norm)
        if self.head_linear is not None:
            return self.head_linear(x)
        if self.head_kind == "fp32":
            return F.linear(x, self.embed if self.tied else self.lm_head)  # (1, 1, V)
        return (self.embed_q if self.tied else self.head_q).logits(x)
