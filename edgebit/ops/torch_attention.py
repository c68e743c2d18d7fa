"""The .pte's attention over its KV cache, as a PyTorch op: `torch.ops.edgebit.attention` and its out variant, the
schema ExecuTorch programs call and libedgebit_executorch.so implements (docs/ops.md) with the kernel core's
edgebit_attention_f32 (runtime_ops/kernels/attention_api.cpp).

    edgebit::attention(Tensor q, Tensor k_cache, Tensor v_cache, Tensor input_pos, float scale) -> Tensor
    edgebit::attention.out(Tensor q, Tensor k_cache, Tensor v_cache, Tensor input_pos, float scale, *,
                           Tensor(a!) out) -> Tensor(a!)

q float32 [1, T, Hq, D]; k_cache and v_cache [1, Hkv, S, D], both float32 or both float16 (widened exactly; the
kernel core's edgebit_attention_f16kv), or both int8 [1, Hkv, S, D + 4] (rows of codes and a float32 scale, read as
code * scale: edgebit/quant/kv_int8.py, edgebit_attention_q8kv) (Hq a multiple of Hkv; query head h reads kv
head h // (Hq / Hkv)); input_pos int64 [T], each in [0, S). Query t attends to cached positions 0 .. input_pos[t]:
    out[0, t, h*D:(h+1)*D] = softmax(scale * q[0, t, h] . k[0, h', j]) over j <= input_pos[t], times v[0, h', j]
-> float32 [1, T, Hq * D], the o projection's input.

Why an op: the stock form (a product with the whole cache buffer, masked) reads and scores every one of the cache's
max_seq_len positions at every step, whatever the context; the kernel reads only positions the queries may see,
split into chunks over the threads (flash-decoding). Importing this module registers the op (once per process).
"""

from __future__ import annotations

import torch

from edgebit.ops.torch_ops import define_fragment  # the namespace's DEF library first; this op is a FRAGMENT of it

OP = "attention"
SCHEMA = "(Tensor q, Tensor k_cache, Tensor v_cache, Tensor input_pos, float scale) -> Tensor"
OUT_SCHEMA = ("(Tensor q, Tensor k_cache, Tensor v_cache, Tensor input_pos, float scale, *, Tensor(a!) out) "
              "-> Tensor(a!)")


def attention_reference(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, input_pos: torch.Tensor,
                        scale: float) -> torch.Tensor:
    """The op's meaning in stock torch (its CPU implementation, and what tests hold the kernel to)."""
    _, t, hq, d = q.shape
    hkv = k_cache.shape[1]
    s = int(input_pos.max()) + 1 if t else 0  # rows past every query's position are never read (stale ones)
    k, v = k_cache[0, :, :s], v_cache[0, :, :s]
    if k.dtype == torch.int8:
        from edgebit.quant.kv_int8 import dequantize_rows

        k, v = dequantize_rows(k), dequantize_rows(v)
    k = k.float().repeat_interleave(hq // hkv, dim=0)  # (Hq, s, D)
    v = v.float().repeat_interleave(hq // hkv, dim=0)
    scores = torch.matmul(q[0].transpose(0, 1), k.transpose(1, 2)) * scale  # (Hq, T, s)
    hidden = torch.arange(s)[None, :] > input_pos[:, None]  # (T, s): keys after the query
    scores = scores.masked_fill(hidden, float("-inf"))
    out = torch.matmul(torch.softmax(scores, dim=-1), v)  # (Hq, T, D)
    return out.transpose(0, 1).reshape(1, t, hq * d)


def _fake(q, k_cache, v_cache, input_pos, scale):
    return q.new_empty((q.shape[0], q.shape[1], q.shape[2] * q.shape[3]))


def _out_impl(q, k_cache, v_cache, input_pos, scale, *, out):
    out.resize_(q.shape[0], q.shape[1], q.shape[2] * q.shape[3]).copy_(
        attention_reference(q, k_cache, v_cache, input_pos, scale))
    return out


_LIB = define_fragment(OP, SCHEMA, OUT_SCHEMA, attention_reference, _out_impl, _fake,
                       lambda q, k_cache, v_cache, input_pos, scale, *, out: out)


def attention(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, input_pos: torch.Tensor,
              scale: float) -> torch.Tensor:
    """(see the module docstring) -> [1, T, Hq * D]"""
    return torch.ops.edgebit.attention(q, k_cache, v_cache, input_pos, scale)
