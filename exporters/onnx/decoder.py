"""The ONNX decoder graph: the reference model (edgebit/model/reference.py), op for op, with a KV cache in
the form onnxruntime-genai drives.

Inputs:  input_ids [B, T] int64, attention_mask [B, P+T] int64, position_ids [B, T] int64,
         past_key_values.{i}.key / .value [B, KVH, L, D] float
Outputs: logits [B, min(T, logits_to_keep), V] float, present.{i}.key / .value [B, KVH, max(L, P+T), D] float
(logits_to_keep int64 [1]: an input with a default, every position; edgebit's engine feeds 1.)
With edgebit's ops attention is edgebit.Attention (an fp32 or fp16 cache; q, k, v and its output fp32), which takes
the cache either way genai passes it:
a past of L = P positions and a new present of P+T (copied), or one buffer of L = max_seq_len bound as both past and
present, into which the T new keys and values are written in place (no copy of the cache per step; edgebit's engine
and genai with past_present_share_buffer do this). With ops="standard" it is the Concat form (L = P), the baseline.
Ternary linears are edgebit.BitLinear nodes (activation quantization fused in, and the RMSNorm in front of them:
the block's attn/mlp norm, a sub-norm or a linear's own input norm, as its norm_weight input, so a graph has no
norm nodes before a linear); q/k/v and gate/up are each
one node over concatenated weights with per-channel gamma, so they share one quantization of their input
(unless quantization_config.use_rms_norm gives each linear its own input norm: then one node each; a norm that
is the same for all of them, OLMo-Bitnet's or the binary BitNet's, is applied once before the one node).
Norms are RMSNorm or LayerNorm (ModelConfig.norm; a linear's input_norm_kind).
With ops="standard" they are standard ONNX activation quantization + com.microsoft MatMulNBits (bits=2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from edgebit.model.config import ModelConfig
from edgebit.model.reference import rope_cos_sin, rope_inv_freq
from edgebit.model.weights import ModelWeights, TernaryWeight
from edgebit.quant.head import quantize_rows_int8
from edgebit.quant.qhead import HEAD_BITS, group_of, quantize_head
from edgebit.quant.packing import unpack_ternary
from .builder import EDGEBIT_DOMAIN, FLOAT, FLOAT16, INT8, INT64, MS_DOMAIN, GraphBuilder

NBITS_BLOCK = 128


def in_place_cache(ops: str) -> bool:
    """Whether the graph updates its cache in place: with edgebit's ops, through edgebit.Attention (an fp32 or fp16
    cache, any head dim). The standard-ops baseline keeps the fp32 Concat form it was measured with (issue 19's
    ratios are to that artifact)."""
    return ops == "edgebit"


@dataclass(frozen=True)
class ExportOptions:
    max_seq_len: int
    head: str = "fp32"  # "fp32" | "int8" | "q4"
    ops: str = "edgebit"  # "edgebit" | "standard"
    kv_dtype: str = "float32"  # "float32" | "float16" | "int8" (float16, int8: the in-place cache only, edgebit.Attention)


def _concat(weights: list[TernaryWeight]) -> tuple[np.ndarray, np.ndarray]:
    """Packed rows of several linears sharing an input, and their per-channel gamma [N]."""
    packed = torch.cat([w.packed for w in weights]).numpy()
    gamma = torch.cat([w.gamma.expand(w.out_features) for w in weights]).numpy().astype(np.float32)
    return packed, gamma


def _pad_columns(t: torch.Tensor, width: int, value: int) -> torch.Tensor:
    """[R, C] -> [R, width] with columns C.. set to `value` (MatMulNBits' whole blocks)."""
    if t.shape[1] == width:
        return t
    out = torch.full((t.shape[0], width), value, dtype=t.dtype)
    out[:, : t.shape[1]] = t
    return out


@dataclass(frozen=True)
class Norm:
    """A norm in front of a linear: weight [K], its initializer's name, eps, kind ("rms" | "layer"), groups."""
    weight: torch.Tensor
    name: str
    eps: float
    kind: str
    groups: int = 1


def input_norm(w: TernaryWeight, name: str) -> Norm:
    """A linear's own input norm (quantization_config.use_rms_norm, OLMo-Bitnet's, the binary BitNet's)."""
    return Norm(w.input_norm, name, w.input_norm_eps, w.input_norm_kind, w.input_norm_groups)


class DecoderGraph:
    def __init__(self, weights: ModelWeights, opts: ExportOptions, data_path=None):
        self.w = weights
        self.cfg: ModelConfig = weights.config
        self.opts = opts
        self.g = GraphBuilder(data_path)
        self.uses_ms = opts.ops == "standard"
        # With edgebit's ops a quantized head is an edgebit.QLinear node; the embedding gathers the same rows.
        self.own_head = opts.ops == "edgebit" and opts.head in HEAD_BITS
        self.in_place_cache = in_place_cache(opts.ops)

    # ---- building blocks -------------------------------------------------------------------------
    def norm(self, x: str, weight: torch.Tensor, name: str, eps: float | None = None, kind: str | None = None,
             groups: int = 1) -> str:
        """The block norms (ModelConfig.norm, eps rms_norm_eps) or a linear's input norm (kind, eps, groups given)."""
        eps = self.cfg.rms_norm_eps if eps is None else eps
        if (kind or self.cfg.norm) == "rms":
            return self.rms_norm(x, weight, name, eps)
        return self.layer_norm(x, weight, name, eps, groups)

    def layer_norm(self, x: str, weight: torch.Tensor, name: str, eps: float, groups: int) -> str:
        """ONNX's LayerNormalization (opset 17; the reference's torch layer_norm computes its moments in another
        order, so an int8 activation may round the other way now and then: docs/verify.md), with the weight as its
        Scale; `groups` > 1 normalizes each of that many equal slices of the last dim on its own."""
        g = self.g
        w = g.initializer(name, weight.float().numpy())
        if groups == 1:
            return g.op("LayerNormalization", [x, w], axis=-1, epsilon=float(eps), hint="normed")
        k = weight.shape[0]
        ones = g.initializer(name + ".group_scale", np.ones(k // groups, np.float32))
        grouped = g.op("Reshape", [x, g.const([0, 0, groups, k // groups])])
        normed = g.op("LayerNormalization", [grouped, ones], axis=-1, epsilon=float(eps))
        return g.op("Mul", [w, g.op("Reshape", [normed, g.const([0, 0, k])])], hint="normed")

    def rms_norm(self, x: str, weight: torch.Tensor, name: str, eps: float) -> str:
        g = self.g
        w = g.initializer(name, weight.float().numpy())
        # The reference's own op sequence, not ONNX's one-node RMSNormalization (opset 23): that one rounds
        # differently (x / sqrt), which flips int8 activation roundings (max logit diff 0.097 on the shipped model).
        mean_sq = g.op("ReduceMean", [g.op("Mul", [x, x]), g.const([-1])], keepdims=1)
        inv = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [mean_sq, g.const(eps, np.float32)])])])
        return g.op("Mul", [w, g.op("Mul", [x, inv])], hint="normed")

    def linears(self, x: str, weights: list[TernaryWeight], names: list[str], prefix: str,
                fused: str | None = None, block_norm: tuple[torch.Tensor | None, str] | None = None,
                split: bool = True) -> list[str]:
        """The outputs of ternary linears that read the same x: one node over their concatenated weights, split
        after, when they quantize x the same way (no input norm, or the same one, applied once); with different
        per-linear input norms (use_rms_norm's own weights) each normalizes x itself: one norm and one node each.
        block_norm (weight, name): the block's norm (ModelConfig.norm, rms_norm_eps) in front of them, if any. The
        norm right before a quantization is fused into its BitLinear when it is an RMSNorm (Norm.fusable). split=False:
        the one node's output as is (shared input norms only)."""
        shared = all(w.same_input_norm(weights[0]) for w in weights)
        block = None if block_norm is None or block_norm[0] is None else Norm(block_norm[0], block_norm[1],
                                                                               self.cfg.rms_norm_eps, self.cfg.norm)
        if block is not None and (not shared or weights[0].input_norm is not None or not self.fusable(block)):
            x, block = self.apply(x, block), None  # another norm comes after it, or it cannot be fused
        if shared:
            w0 = weights[0]
            own = None if w0.input_norm is None else input_norm(w0, f"{prefix}{fused or names[0]}.input_norm")
            out = self.ternary(x, weights, prefix + (fused or names[0]), block or own)
            if len(weights) == 1 or not split:
                return [out]
            return list(self.g.op("Split", [out, self.g.const([w.out_features for w in weights])],
                                  n_out=len(weights), axis=-1))
        return [self.ternary(x, [w], prefix + n,
                             None if w.input_norm is None else input_norm(w, f"{prefix}{n}.input_norm"))
                for w, n in zip(weights, names)]

    def relu2_gate_fusable(self, layer) -> bool:
        """Whether the down projection can take gate/up's output as is (BitLinear relu2_gate): edgebit's ops, a ReLU^2
        GLU whose gate and up are one node (the same input norm), no input norm of down's own, and a sub-norm (if
        any) the op can fuse too."""
        sub_ok = layer.ffn_sub_norm is None or self.cfg.norm == "rms"
        return (self.opts.ops == "edgebit" and self.cfg.activation == "relu2" and layer.gate.same_input_norm(layer.up)
                and layer.down.input_norm is None and sub_ok)

    def fusable(self, norm: "Norm") -> bool:
        """Whether BitLinear takes this norm as its norm_weight input: an RMSNorm, with edgebit's ops."""
        return self.opts.ops == "edgebit" and norm.kind == "rms" and norm.groups == 1

    def apply(self, x: str, norm: "Norm") -> str:
        return self.norm(x, norm.weight, norm.name, norm.eps, norm.kind, norm.groups)

    def ternary(self, x: str, weights: list[TernaryWeight], name: str, norm: "Norm | None" = None,
                relu2_gate: bool = False) -> str:
        """One BitLinear node (or the standard ops) over the linears' concatenated weights, after `norm` if given:
        fused into the node when it can be (fusable), else applied as nodes before it. relu2_gate: x is [gate | up]
        and the node reads relu(gate)^2 * up (edgebit's ops; relu2_gate_fusable)."""
        if norm is not None and not self.fusable(norm):
            x, norm = self.apply(x, norm), None
        packed, gamma = _concat(weights)
        if self.opts.ops == "edgebit":
            g = self.g
            inputs = [x, g.initializer(name + ".packed", packed), g.initializer(name + ".gamma", gamma)]
            attrs = {"relu2_gate": 1} if relu2_gate else {}
            if norm is not None:
                inputs.append(g.initializer(norm.name, norm.weight.float().numpy()))
                attrs["norm_eps"] = float(norm.eps)
            return g.op("BitLinear", inputs, hint=name.split(".")[-1], domain=EDGEBIT_DOMAIN, **attrs)
        return self.standard_ternary(x, weights, name)

    def standard_ternary(self, x: str, weights: list[TernaryWeight], name: str) -> str:
        """BitNet's per-token int8 activation quantization in standard ops, then MatMulNBits on the ternary
        weights as 2-bit codes (q = w + 2, ORT's default zero point) with gamma as every block's scale."""
        g = self.g
        absmax = g.op("Max", [g.op("ReduceMax", [g.op("Abs", [x]), g.const([-1])], keepdims=1),
                              g.const(1e-5, np.float32)])
        s = g.op("Div", [g.const(127.0, np.float32), absmax])
        x_q = g.op("Clip", [g.op("Round", [g.op("Mul", [x, s])]), g.const(-128.0, np.float32),
                            g.const(127.0, np.float32)])
        x_dq = g.op("Div", [x_q, s])
        w_t = torch.cat([unpack_ternary(w.packed, w.in_features) for w in weights])
        n, k = w_t.shape
        blocks = -(-k // NBITS_BLOCK)
        # MatMulNBits stores whole blocks, [N, ceil(K/block), block*bits/8], and reads only A's K columns: the
        # padding codes are never used; they hold 2 (weight 0) so the blob is what it means.
        q = _pad_columns((w_t.to(torch.int16) + 2).to(torch.uint8), blocks * NBITS_BLOCK, 2).reshape(n, -1, 4)
        blob = (q[..., 0] | (q[..., 1] << 2) | (q[..., 2] << 4) | (q[..., 3] << 6)).reshape(n, blocks, -1)
        _, gamma = _concat(weights)
        scales = np.repeat(gamma, blocks).astype(np.float32)
        return g.op("MatMulNBits", [x_dq, g.initializer(name + ".nbits", blob.numpy()),
                                    g.initializer(name + ".scales", scales)],
                    hint=name.split(".")[-1], domain=MS_DOMAIN, K=k, N=n, bits=2, block_size=NBITS_BLOCK,
                    accuracy_level=4)

    def heads(self, n: int, t: str) -> str:
        """[B, T, n*D] -> [B, n, T, D]"""
        g = self.g
        return g.op("Transpose", [g.op("Reshape", [t, g.const([0, 0, n, self.cfg.head_dim])])], perm=[0, 2, 1, 3])

    def rope(self, x: str, cos: str, sin: str) -> str:
        g = self.g
        half = self.cfg.head_dim // 2
        x1, x2 = g.op("Split", [x, g.const([half, half])], n_out=2, axis=-1)
        rotated = g.op("Concat", [g.op("Neg", [x2]), x1], axis=-1)
        return g.op("Add", [g.op("Mul", [x, cos]), g.op("Mul", [rotated, sin])], hint="roped")

    # ---- the model ---------------------------------------------------------------------------------
    def build(self):
        cfg, g = self.cfg, self.g
        ids = g.input("input_ids", INT64, ["batch", "seq"])
        mask = g.input("attention_mask", INT64, ["batch", "total_seq"])
        positions = g.input("position_ids", INT64, ["batch", "seq"])

        # RoPE tables computed exactly as the reference computes them, gathered by position: [B, 1, T, D]
        cos_t, sin_t = rope_cos_sin(rope_inv_freq(cfg.head_dim, cfg.rope), torch.arange(self.opts.max_seq_len))
        cos_bt = g.op("Gather", [g.initializer("rope.cos", cos_t.numpy()), positions])  # [B, T, D]
        sin_bt = g.op("Gather", [g.initializer("rope.sin", sin_t.numpy()), positions])
        # [B, 1, T, S] for the Concat form; edgebit.Attention masks by positions itself
        bias = None if self.in_place_cache else self.attention_bias(ids, mask, np.float32)
        if self.in_place_cache:
            cos = sin = None
            self.rope_bt = (cos_bt, sin_bt)  # [B, T, D]: edgebit.Attention applies RoPE itself
            total = g.op("Shape", [mask], start=1, end=2)
            # edgebit.Attention's: total_len [1] (P+T) and each row's first real key, after its left padding
            # (genai pads on the left): the mask's width minus its ones.
            ones = g.op("ReduceSum", [mask, g.const([1])], keepdims=0)  # [B]
            self.attention_inputs = (total, g.op("Sub", [total, ones]))
        else:
            cos, sin = (g.op("Unsqueeze", [t, g.const([1])]) for t in (cos_bt, sin_bt))  # [B, 1, T, D]
            bias = g.op("Unsqueeze", [bias, g.const([1])])  # [B, 1, 1, T, S]: over KV heads and their groups

        x = self.embed(ids)  # [B, T, H]
        for i, layer in enumerate(self.w.layers):  # the block norms are applied by (or fused into) the linears
            x = g.op("Add", [x, self.attention(i, layer, x, cos, sin, bias)], hint="resid")
            x = g.op("Add", [x, self.mlp(i, layer, x)], hint="resid")
        x = self.norm(self.last_positions(x, ids), self.w.final_norm, "final_norm")
        g.output(self.logits(x), "logits", FLOAT, ["batch", "logits_seq", cfg.vocab_size])
        return g.model("edgebit_decoder", self.uses_ms)

    def attention_bias(self, ids: str, mask: str, dtype=np.float32) -> str:
        """[B, 1, T, S]: query t (absolute index P+t) sees keys j <= P+t that are not padding."""
        g = self.g
        total = g.op("Gather", [g.op("Shape", [mask]), g.const(1)])
        new = g.op("Gather", [g.op("Shape", [ids]), g.const(1)])
        key_idx = g.op("Range", [g.const(0), total, g.const(1)])
        query_idx = g.op("Range", [g.op("Sub", [total, new]), total, g.const(1)])
        causal = g.op("LessOrEqual", [key_idx, g.op("Unsqueeze", [query_idx, g.const([1])])])  # [T, S]
        not_pad = g.op("Unsqueeze", [g.op("Cast", [mask], to=9), g.const([1])])  # [B, 1, S] bool
        allowed = g.op("And", [causal, not_pad])  # [B, T, S]
        # The type's own lowest value, not -inf: a fully padded row then softmaxes to uniform, not NaN (and fp32's
        # lowest would round to -inf in fp16)
        bias = g.op("Where", [allowed, g.const(0.0, dtype), g.const(np.finfo(dtype).min, dtype)])
        return g.op("Unsqueeze", [bias, g.const([1])], hint="attn_bias")

    def last_positions(self, x: str, ids: str) -> str:
        """The last logits_to_keep positions of x [B, T, H]: a graph input with a default of max_seq_len (every
        position: what onnxruntime-genai, verify and perplexity read); edgebit's engine feeds 1, so a prefill computes
        the head (a third of a 2B model's bytes, and a GEMM over the whole prompt) for its last position only."""
        g = self.g
        keep = g.input("logits_to_keep", INT64, [1])
        g.initializer(keep, np.array([self.opts.max_seq_len], np.int64))  # the default: an overridable initializer
        # T - keep, at least 0: a negative start would count from the end (T=45, keep=64 -> the last 19 positions).
        # T read off input_ids, a graph input, not off x: ONNX Runtime's constant folding once folded Shape(x) and
        # with it this start, ignoring a fed logits_to_keep (the binary BitNet graph, after edgebit.Attention, whose
        # outputs have no inferred shape).
        start = g.op("Max", [g.op("Sub", [g.op("Shape", [ids], start=1, end=2), keep]), g.const([0])])
        return g.op("Slice", [x, start, g.const([np.iinfo(np.int64).max]), g.const([1])], hint="kept")

    def attention(self, i: int, layer, x: str, cos: str, sin: str, bias: str) -> str:
        cfg, g = self.cfg, self.g
        kvh, group, d = cfg.num_kv_heads, cfg.num_heads // cfg.num_kv_heads, cfg.head_dim
        q, k, v = self.linears(x, [layer.q, layer.k, layer.v], ["q_proj", "k_proj", "v_proj"], f"layers.{i}.", "qkv",
                               (layer.attn_norm, f"layers.{i}.attn_norm"))
        sub_norm = (layer.attn_sub_norm, f"layers.{i}.attn_sub_norm")
        if self.in_place_cache:
            out = self.grouped_query_attention(i, q, k, v)
            return self.linears(out, [layer.o], ["o_proj"], f"layers.{i}.", block_norm=sub_norm)[0]
        q = self.rope(self.heads(cfg.num_heads, q), cos, sin)  # [B, NH, T, D]
        k = self.rope(self.heads(kvh, k), cos, sin)  # [B, KVH, T, D]
        v = self.heads(kvh, v)
        past_k = g.input(f"past_key_values.{i}.key", FLOAT, ["batch", kvh, "past_seq", d])
        past_v = g.input(f"past_key_values.{i}.value", FLOAT, ["batch", kvh, "past_seq", d])
        k = g.op("Concat", [past_k, k], axis=2)  # [B, KVH, S, D]
        v = g.op("Concat", [past_v, v], axis=2)
        k = g.output(k, f"present.{i}.key", FLOAT, ["batch", kvh, "total_seq", d])
        v = g.output(v, f"present.{i}.value", FLOAT, ["batch", kvh, "total_seq", d])

        # GQA without copying the cache: queries grouped per KV head, keys broadcast over the group.
        q5 = g.op("Reshape", [q, g.const([0, kvh, group, -1, d])])  # [B, KVH, G, T, D]
        k5 = g.op("Transpose", [g.op("Unsqueeze", [k, g.const([2])])], perm=[0, 1, 2, 4, 3])  # [B, KVH, 1, D, S]
        v5 = g.op("Unsqueeze", [v, g.const([2])])  # [B, KVH, 1, S, D]
        scores = g.op("Mul", [g.op("MatMul", [q5, k5]), g.const(d ** -0.5, np.float32)])
        probs = g.op("Softmax", [g.op("Add", [scores, bias])], axis=-1)
        out = g.op("MatMul", [probs, v5])  # [B, KVH, G, T, D]
        out = g.op("Transpose", [g.op("Reshape", [out, g.const([0, cfg.num_heads, -1, d])])], perm=[0, 2, 1, 3])
        out = g.op("Reshape", [out, g.const([0, 0, cfg.q_size])])  # [B, T, NH*D]
        return self.linears(out, [layer.o], ["o_proj"], f"layers.{i}.", block_norm=sub_norm)[0]

    def grouped_query_attention(self, i: int, q: str, k: str, v: str) -> str:
        """edgebit.Attention: RoPE on q and k inside the op (its cos, sin inputs: the angles of each position, gathered
        once per call for all layers; the reference's apply_rope, edgebit_rope_f32), then attention over the cache: it
        writes the new keys and values at positions P.. of present (in place when present is past's buffer) and attends
        causally over the first P+T. edgebit.Attention for an fp32 cache (only the positions each query sees, split
        over the threads: docs/ops.md), over an fp32, fp16 or int8 cache (the new rows rounded to fp16, or quantized
        to int8 rows, as they are written; q, k, v and the output stay fp32). [B, T, NH*D] out."""
        cfg, g = self.cfg, self.g
        kvh, d = cfg.num_kv_heads, cfg.head_dim
        kind = {"float16": FLOAT16, "int8": INT8}.get(self.opts.kv_dtype, FLOAT)
        row = d + 4 if kind == INT8 else d  # int8 rows: D codes and the row's float32 scale (edgebit/quant/kv_int8.py)
        past_k = g.input(f"past_key_values.{i}.key", kind, ["batch", kvh, "past_seq", row])
        past_v = g.input(f"past_key_values.{i}.value", kind, ["batch", kvh, "past_seq", row])
        out, present_k, present_v = g.op(
            "Attention", [q, k, v, past_k, past_v, *self.attention_inputs, *self.rope_bt], n_out=3,
            domain=EDGEBIT_DOMAIN, hint="attn", num_heads=cfg.num_heads, kv_num_heads=kvh, scale=float(d ** -0.5))
        g.output(present_k, f"present.{i}.key", kind, ["batch", kvh, "present_seq", row])
        g.output(present_v, f"present.{i}.value", kind, ["batch", kvh, "present_seq", row])
        return out

    def mlp(self, i: int, layer, x: str) -> str:
        cfg, g = self.cfg, self.g
        mlp_norm = (layer.mlp_norm, f"layers.{i}.mlp_norm")
        if self.relu2_gate_fusable(layer):
            # gate/up's one node, unsplit, straight into the down projection, which computes relu(gate)^2 * up and
            # the sub-norm itself before its quantization (BitLinear relu2_gate): no Split, Relu, Mul, Mul between.
            (gate_up,) = self.linears(x, [layer.gate, layer.up], ["gate_proj", "up_proj"], f"layers.{i}.", "gate_up",
                                      mlp_norm, split=False)
            sub = None if layer.ffn_sub_norm is None else Norm(layer.ffn_sub_norm, f"layers.{i}.ffn_sub_norm",
                                                                cfg.rms_norm_eps, cfg.norm)
            return self.ternary(gate_up, [layer.down], f"layers.{i}.down_proj", sub, relu2_gate=True)
        gate, up = self.linears(x, [layer.gate, layer.up], ["gate_proj", "up_proj"], f"layers.{i}.", "gate_up",
                                mlp_norm)
        if cfg.activation == "relu2":
            r = g.op("Relu", [gate])
            act = g.op("Mul", [r, r])
        else:
            act = g.op("Mul", [gate, g.op("Sigmoid", [gate])])
        h = g.op("Mul", [act, up])
        return self.linears(h, [layer.down], ["down_proj"], f"layers.{i}.",
                            block_norm=(layer.ffn_sub_norm, f"layers.{i}.ffn_sub_norm"))[0]

    # ---- embedding and head ------------------------------------------------------------------------
    def _int8_table(self, table: torch.Tensor, name: str) -> tuple[str, str, str]:
        """Per-row int8 [V, H] stored as MatMulNBits' 8-bit blob (uint8 = q + 128, ORT's default zero point),
        which the embedding Gather reads too; the per-row scale [V]; and the same scale per block for the head.
        The blob holds whole blocks, [V, ceil(H/128), 128]: an H that is not a multiple of 128 is padded with
        zeros (128) that MatMulNBits never reads and the embedding slices off."""
        q, scale = quantize_rows_int8(table)
        v, h = q.shape
        blocks = -(-h // NBITS_BLOCK)
        rows = _pad_columns((q.to(torch.int16) + 128).to(torch.uint8), blocks * NBITS_BLOCK, 128)
        blob = rows.reshape(v, blocks, NBITS_BLOCK).numpy()
        g = self.g
        return (g.initializer(name + ".int8", blob), g.initializer(name + ".scale", scale.numpy()),
                g.initializer(name + ".block_scales", np.repeat(scale.numpy(), blocks)))

    def embed(self, ids: str) -> str:
        g = self.g
        if self.opts.head == "fp32":
            self.embed_table = g.initializer("embed_tokens", self.w.embed.float().numpy())
            return g.op("Gather", [self.embed_table, ids], hint="embedded")
        if self.own_head:
            return self.embed_own(ids)
        self.embed_int8 = self._int8_table(self.w.embed, "embed_tokens")
        blob, scale, _ = self.embed_int8
        h = self.cfg.hidden_size
        padded = -(-h // NBITS_BLOCK) * NBITS_BLOCK
        rows = g.op("Reshape", [g.op("Gather", [blob, ids]), g.const([0, 0, padded])])
        if padded != h:
            rows = g.op("Slice", [rows, g.const([0]), g.const([h]), g.const([-1])])
        centered = g.op("Sub", [g.op("Cast", [rows], to=FLOAT), g.const(128.0, np.float32)])
        row_scale = g.op("Unsqueeze", [g.op("Gather", [scale, ids]), g.const([-1])])
        return g.op("Mul", [centered, row_scale], hint="embedded")

    def _own_table(self, table: torch.Tensor, name: str) -> tuple[str, str]:
        """The QLinear rows of a table (edgebit/quant/qhead.py) and their per-row scale."""
        rows, scale = quantize_head(table, HEAD_BITS[self.opts.head])
        suffix = ".int8" if self.opts.head == "int8" else ".q4"
        return self.g.initializer(name + suffix, rows.numpy()), self.g.initializer(name + ".scale", scale.numpy())

    def embed_own(self, ids: str) -> str:
        """Embedding rows gathered from the head's own QLinear table and dequantized: int8 q * scale, or for q4 the
        nibbles unpacked (chunks of 64: low nibbles then high), minus 8, times each weight's group scale and the row
        scale."""
        g, h = self.g, self.cfg.hidden_size
        self.embed_own_table = self._own_table(self.w.embed, "embed_tokens")
        table, scale = self.embed_own_table
        kp = -(-h // NBITS_BLOCK) * NBITS_BLOCK
        rows = g.op("Gather", [table, ids])  # [B, T, row bytes] uint8
        if self.opts.head == "int8":
            q = g.op("Sub", [g.op("Cast", [rows], to=FLOAT), g.const(128.0, np.float32)])
        else:
            nib = g.op("Slice", [rows, g.const([0]), g.const([kp // 2]), g.const([-1])])
            lo = g.op("BitwiseAnd", [nib, g.const(np.uint8(15), np.uint8)])
            hi = g.op("BitShift", [nib, g.const(np.uint8(4), np.uint8)], direction="RIGHT")
            halves = [g.op("Reshape", [t, g.const([0, 0, kp // 64, 1, 32])]) for t in (lo, hi)]
            q = g.op("Sub", [g.op("Cast", [g.op("Concat", halves, axis=3)], to=FLOAT), g.const(8.0, np.float32)])
            q = g.op("Reshape", [q, g.const([0, 0, kp])])
            sub = g.op("Cast", [g.op("Slice", [rows, g.const([kp // 2]), g.const([kp // 2 + kp // 32]),
                                                g.const([-1])])], to=FLOAT)
            # Each weight's group scale: group 2c + (k % 8) // 4 (edgebit/quant/qhead.py), gathered per weight.
            q = g.op("Mul", [q, g.op("Gather", [sub, g.const(group_of(kp).numpy())], axis=-1)])
        if kp != h:
            q = g.op("Slice", [q, g.const([0]), g.const([h]), g.const([-1])])
        row_scale = g.op("Unsqueeze", [g.op("Gather", [scale, ids]), g.const([-1])])
        return g.op("Mul", [q, row_scale], hint="embedded")

    def logits(self, x: str) -> str:
        cfg, g = self.cfg, self.g
        if self.opts.head == "fp32":
            table = self.embed_table if self.w.lm_head is None else g.initializer("lm_head", self.w.lm_head.float().numpy())
            flat = g.op("Reshape", [x, g.const([-1, cfg.hidden_size])])
            out_shape = g.op("Concat", [g.op("Shape", [x], start=0, end=2), g.const([cfg.vocab_size])], axis=0)
            return g.op("Reshape", [g.op("Gemm", [flat, table], transB=1), out_shape], hint="logits")
        if self.own_head:
            table, scale = self.embed_own_table if self.w.lm_head is None else self._own_table(self.w.lm_head, "lm_head")
            return g.op("QLinear", [x, table, scale], hint="logits", domain=EDGEBIT_DOMAIN,
                        bits=HEAD_BITS[self.opts.head])
        blob, _, block_scales = self.embed_int8 if self.w.lm_head is None else self._int8_table(self.w.lm_head, "lm_head")
        return g.op("MatMulNBits", [x, blob, block_scales], hint="logits", domain=MS_DOMAIN, K=cfg.hidden_size,
                    N=cfg.vocab_size, bits=8, block_size=NBITS_BLOCK, accuracy_level=4)
