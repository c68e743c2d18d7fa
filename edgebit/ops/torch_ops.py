"""The edgebit ternary linear as a PyTorch op, defined once: `torch.ops.edgebit.bitlinear` and its out variant,
the schema ExecuTorch programs call and libedgebit_executorch.so implements (docs/ops.md).

    edgebit::bitlinear(Tensor x, Tensor w_packed, Tensor gamma) -> Tensor
    edgebit::bitlinear.out(Tensor x, Tensor w_packed, Tensor gamma, *, Tensor(a!) out) -> Tensor(a!)

x float32 [..., K] (any K >= 1), w_packed uint8 [N, ceil(K/128)*32] (layout v2: rows padded to whole 128-weight
blocks), gamma float32 [N] -> float32 [..., N],
the same semantics as the ONNX edgebit.BitLinear. The CPU implementation here IS the reference's
ternary_linear (edgebit/model/reference.py), so it is bit-exact to it by construction; the fake kernel gives
torch.export the output's shape. `to_executorch` swaps each call for the .out variant.

Importing this module registers the op (once per process).
"""

from __future__ import annotations

import torch

from edgebit.model.reference import ternary_linear
from edgebit.model.weights import TernaryWeight
from edgebit.quant.packing import LAYOUT_VERSION, packed_row_bytes

NAMESPACE = "edgebit"
OP = "bitlinear"
SCHEMA = "(Tensor x, Tensor w_packed, Tensor gamma) -> Tensor"
OUT_SCHEMA = "(Tensor x, Tensor w_packed, Tensor gamma, *, Tensor(a!) out) -> Tensor(a!)"


def _check(x: torch.Tensor, w_packed: torch.Tensor, gamma: torch.Tensor) -> tuple[int, int]:
    """(N, K), or a ValueError naming the argument and what was expected (the kernel library's checks)."""
    where = f"{NAMESPACE}::{OP}"
    if x.dtype != torch.float32 or x.dim() < 1:
        raise ValueError(f"{where}: x must be float32 [..., K], got {x.dtype} of rank {x.dim()}")
    k = x.shape[-1]
    if k < 1:
        raise ValueError(f"{where}: x's last dim K must be positive, got {k}")
    if w_packed.dtype != torch.uint8 or w_packed.dim() != 2:
        raise ValueError(f"{where}: w_packed must be uint8 [N, ceil(K/128)*32], got {w_packed.dtype}"
                         f"{list(w_packed.shape)}")
    n = w_packed.shape[0]
    if w_packed.shape[1] != packed_row_bytes(k):
        raise ValueError(f"{where}: w_packed must be [N, ceil(K/128)*32] = [N, {packed_row_bytes(k)}] for K={k} "
                         f"(x's last dim; packed layout v{LAYOUT_VERSION}), got {list(w_packed.shape)}")
    if gamma.dtype != torch.float32 or tuple(gamma.shape) != (n,):
        raise ValueError(f"{where}: gamma must be float32 [N] = [{n}], got {gamma.dtype}{list(gamma.shape)}")
    return n, k


def bitlinear_reference(x: torch.Tensor, w_packed: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    n, k = _check(x, w_packed, gamma)
    return ternary_linear(x, TernaryWeight(w_packed, gamma, n, k))


def _define() -> None:
    if hasattr(torch.ops, NAMESPACE) and hasattr(getattr(torch.ops, NAMESPACE), OP):
        return  # already registered in this process (the module imported under another name)
    lib = torch.library.Library(NAMESPACE, "DEF")
    lib.define(OP + SCHEMA)
    lib.define(OP + ".out" + OUT_SCHEMA)
    lib.impl(OP, bitlinear_reference, "CPU")

    def out_impl(x, w_packed, gamma, *, out):
        y = bitlinear_reference(x, w_packed, gamma)
        out.resize_(y.shape)
        return out.copy_(y)

    lib.impl(OP + ".out", out_impl, "CPU")

    def fake(x, w_packed, gamma):  # shapes are checked by the kernels, at run time, with messages
        return x.new_empty((*x.shape[:-1], w_packed.shape[0]))

    torch.library.register_fake(f"{NAMESPACE}::{OP}", fake, lib=lib)

    def fake_out(x, w_packed, gamma, *, out):
        return out

    torch.library.register_fake(f"{NAMESPACE}::{OP}.out", fake_out, lib=lib)
    global _LIB
    _LIB = lib  # the registrations live as long as this object


_LIB = None
_define()


def define_fragment(op: str, schema: str, out_schema: str, impl, out_impl, fake, fake_out):
    """Another op of the namespace and its out variant (CPU implementations and fake kernels), in a FRAGMENT library
    (this module's DEF one made the namespace). Returns the library, which must be kept alive, or None when the op is
    already registered in this process (its module imported under another name)."""
    if hasattr(getattr(torch.ops, NAMESPACE), op):
        return None
    lib = torch.library.Library(NAMESPACE, "FRAGMENT")
    lib.define(op + schema)
    lib.define(op + ".out" + out_schema)
    lib.impl(op, impl, "CPU")
    lib.impl(op + ".out", out_impl, "CPU")
    torch.library.register_fake(f"{NAMESPACE}::{op}", fake, lib=lib)
    torch.library.register_fake(f"{NAMESPACE}::{op}.out", fake_out, lib=lib)
    return lib


def bitlinear(x: torch.Tensor, w_packed: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    return torch.ops.edgebit.bitlinear(x, w_packed, gamma)
