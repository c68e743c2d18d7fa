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

import edgebit.ops.torch_ops  # noqa: F401  (the namespace's DEF library first; this op is a FRAGMENT of it)
from edgebit.quant.qhead import qlinear_reference

NAMESPACE = "edgebit"
OP = "qlinear"
SCHEMA = "(Tensor x, Tensor w, Tensor scale, int bits) -> Tensor"
OUT_SCHEMA = "(Tensor x, Tensor w, Tensor scale, int bits, *, Tensor(a!) out) -> Tensor(a!)"


def _define() -> None:
    if hasattr(torch.ops, NAMESPACE) and hasattr(getattr(torch.ops, NAMESPACE), OP):
        return
    lib = torch.library.Library(NAMESPACE, "FRAGMENT")
    lib.define(OP + SCHEMA)
    lib.define(OP + ".out" + OUT_SCHEMA)
    lib.impl(OP, qlinear_reference, "CPU")

    def out_impl(x, w, scale, bits, *, out):
        y = qlinear_reference(x, w, scale, bits)
        out.resize_(y.shape)
        return out.copy_(y)

    lib.impl(OP + ".out", out_impl, "CPU")
    torch.library.register_fake(f"{NAMESPACE}::{OP}", lambda x, w, scale, bits: x.new_empty((*x.shape[:-1], w.shape[0])),
                                lib=lib)
    torch.library.register_fake(f"{NAMESPACE}::{OP}.out", lambda x, w, scale, bits, *, out: out, lib=lib)
    global _LIB
    _LIB = lib


_LIB = None
_define()


def qlinear(x: torch.Tensor, w: torch.Tensor, scale: torch.Tensor, bits: int) -> torch.Tensor:
    return torch.ops.edgebit.qlinear(x, w, scale, bits)
