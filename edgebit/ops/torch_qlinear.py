"""The LM head's own GEMV as a PyTorch op, `torch.ops.edgebit.qlinear` and its out variant: the schema ExecuTorch
programs call and libedgebit_executorch.so implements (docs/ops.md), the ONNX edgebit.QLinear's semantics.

    edgebit::qlinear(Tensor x, Tensor w, Tensor scale, int bits) -> Tensor
    edgebit::qlinear.out(Tensor x, Tensor w, Tensor scale, int bits, *, Tensor(a!) out) -> Tensor(a!)

x float32 [..., K], w uint8 [N, row_bytes(K, bits)] (edgebit/quant/qhead.py), scale float32 [N] -> float32 [..., N].
The CPU implementation here is qlinear_reference; the fake kernel gives torch.export the output's shape.
Importing this module registers the op (once per process).
"""

from __future__ import annotations

import torch

from edgebit.ops.torch_ops import define_fragment  # the namespace's DEF library first; this op is a FRAGMENT of it
from edgebit.quant.qhead import qlinear_reference

OP = "qlinear"
SCHEMA = "(Tensor x, Tensor w, Tensor scale, int bits) -> Tensor"
OUT_SCHEMA = "(Tensor x, Tensor w, Tensor scale, int bits, *, Tensor(a!) out) -> Tensor(a!)"


def _out_impl(x, w, scale, bits, *, out):
    y = qlinear_reference(x, w, scale, bits)
    out.resize_(y.shape)
    return out.copy_(y)


_LIB = define_fragment(OP, SCHEMA, OUT_SCHEMA, qlinear_reference, _out_impl,
                       lambda x, w, scale, bits: x.new_empty((*x.shape[:-1], w.shape[0])),
                       lambda x, w, scale, bits, *, out: out)


def qlinear(x: torch.Tensor, w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    return torch.ops.edgebit.qlinear(x, w, scale, bits)
