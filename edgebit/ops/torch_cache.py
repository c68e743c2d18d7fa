"""The .pte KV cache written in place, as a PyTorch op: `torch.ops.edgebit.cache_write` and its out variant, the
schema ExecuTorch programs call and libedgebit_executorch.so implements (docs/ops.md).

    edgebit::cache_write(Tensor value, Tensor(a!) cache, Tensor input_pos, int dim) -> Tensor
    edgebit::cache_write.out(Tensor value, Tensor(a!) cache, Tensor input_pos, int dim, *, Tensor(b!) out)
        -> Tensor(b!)

cache float32 or float16 of any rank, value float32 of the same shape except T = input_pos.numel() along `dim`,
input_pos int64 [T], every entry in [0, cache.size(dim)): cache.index_copy_(dim, input_pos, value) (value rounded to
the cache's type: to nearest even for float16), and nothing else. An int8 cache (`--kv-cache int8`) holds rows along
its last dim, written along dim = rank - 2: each row of value becomes its D codes and float32 scale
(edgebit/quant/kv_int8.py), so the cache's last dim is value's + 4. The returned
tensor is a one-element placeholder (the op's result is the mutation).

Why an op: the stock form (index_copy_ on the cache buffer) becomes index_put.out into a fresh tensor plus a
write-back copy_ into the buffer in ExecuTorch, i.e. every layer's whole cache copied twice per step. A mutating
custom op comes out of to_executorch as one call on the buffer itself (torch.export functionalizes it; ExecuTorch
removes the functionalization again and inserts no write-back for a buffer whose last writer mutates it in place).
ExecuTorch's own run_reinplace_pass gave wrong logits on our programs (decoder.py). Importing this module registers
the op (once per process).
"""

from __future__ import annotations

import torch

from edgebit.ops.torch_ops import define_fragment  # the namespace's DEF library first; this op is a FRAGMENT of it

OP = "cache_write"
SCHEMA = "(Tensor value, Tensor(a!) cache, Tensor input_pos, int dim) -> Tensor"
OUT_SCHEMA = "(Tensor value, Tensor(a!) cache, Tensor input_pos, int dim, *, Tensor(b!) out) -> Tensor(b!)"


def _write(value: torch.Tensor, cache: torch.Tensor, input_pos: torch.Tensor, dim: int) -> None:
    if cache.dtype == torch.int8:
        from edgebit.quant.kv_int8 import quantize_rows

        if dim != cache.dim() - 2:
            raise ValueError(f"edgebit::cache_write: an int8 cache is written along dim {cache.dim() - 2}, got {dim}")
        value = quantize_rows(value)
    cache.index_copy_(dim, input_pos, value.to(cache.dtype))


def _impl(value, cache, input_pos, dim):
    _write(value, cache, input_pos, dim)
    return value.new_zeros((1,))


def _out_impl(value, cache, input_pos, dim, *, out):
    _write(value, cache, input_pos, dim)
    return out


_LIB = define_fragment(OP, SCHEMA, OUT_SCHEMA, _impl, _out_impl,
                       lambda value, cache, input_pos, dim: value.new_empty((1,)),
                       lambda value, cache, input_pos, dim, *, out: out)


def cache_write(value: torch.Tensor, cache: torch.Tensor, input_pos: torch.Tensor, dim: int) -> None:
    """cache[..., input_pos, ...] = value along dim, in place (see the module docstring)."""
    torch.ops.edgebit.cache_write(value, cache, input_pos, dim)
