"""Rotate-half RoPE as a PyTorch op: `torch.ops.edgebit.rope` and its out variant, the schema ExecuTorch programs call
and libedgebit_executorch.so implements (docs/ops.md).

    edgebit::rope(Tensor x, Tensor cos, Tensor sin) -> Tensor
    edgebit::rope.out(Tensor x, Tensor cos, Tensor sin, *, Tensor(a!) out) -> Tensor(a!)

x float32 [1, T, H, D] (D even), cos and sin float32 [T, 1, D], each position's angles -> float32 [1, T, H, D]:
the reference's apply_rope (x * cos + rotated * sin, rotated = (-x[.., D/2:], x[.., :D/2])), bit for bit
(edgebit_rope_f32). One call instead of the nine stock ops (unflatten, two selects, neg, stack, flatten, two muls,
an add) the .pte ran for each of query and key in every layer. Importing this module registers the op (once per
process).
"""

from __future__ import annotations

import torch

from edgebit.model.reference import apply_rope
from edgebit.ops.torch_ops import define_fragment  # the namespace's DEF library first; this op is a FRAGMENT of it

OP = "rope"
SCHEMA = "(Tensor x, Tensor cos, Tensor sin) -> Tensor"
OUT_SCHEMA = "(Tensor x, Tensor cos, Tensor sin, *, Tensor(a!) out) -> Tensor(a!)"


def rope_reference(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    if x.dim() != 4 or x.shape[0] != 1 or x.shape[-1] % 2 or tuple(cos.shape) != (x.shape[1], 1, x.shape[3]) \
            or cos.shape != sin.shape:
        raise ValueError(f"edgebit::{OP}: x must be [1, T, H, D] (D even) and cos, sin [T, 1, D], got "
                         f"{list(x.shape)}, {list(cos.shape)}, {list(sin.shape)}")
    return apply_rope(x, cos, sin)


def _out_impl(x, cos, sin, *, out):
    y = rope_reference(x, cos, sin)
    out.resize_(y.shape)
    return out.copy_(y)


_LIB = define_fragment(OP, SCHEMA, OUT_SCHEMA, rope_reference, _out_impl,
                       lambda x, cos, sin: torch.empty_like(x), lambda x, cos, sin, *, out: out)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return torch.ops.edgebit.rope(x, cos, sin)
