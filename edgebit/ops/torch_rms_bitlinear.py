"""The ternary linear after its input RMSNorm, as a PyTorch op: `torch.ops.edgebit.rms_bitlinear` and its out
variant, the schema ExecuTorch programs call and libedgebit_executorch.so implements (docs/ops.md); the ONNX
edgebit.BitLinear with its norm_weight input.

    edgebit::rms_bitlinear(Tensor x, Tensor norm_weight, float eps, Tensor w_packed, Tensor gamma) -> Tensor
    edgebit::rms_bitlinear.out(Tensor x, Tensor norm_weight, float eps, Tensor w_packed, Tensor gamma, *,
                               Tensor(a!) out) -> Tensor(a!)

= edgebit::bitlinear(rms_norm(x, norm_weight, eps), w_packed, gamma), with the reference's rms_norm (its mean of
squares summed in fp64: edgebit_rms_norm_rows computes the same floats), norm_weight float32 [K]. One call instead of
the norm's elementwise ops (mul, mean, add, rsqrt, mul, mul in ExecuTorch's portable kernels) before each linear.
Importing this module registers the op (once per process).
"""

from __future__ import annotations

import torch

from edgebit.model.reference import rms_norm
from edgebit.ops.torch_ops import bitlinear_reference, define_fragment

OP = "rms_bitlinear"
SCHEMA = "(Tensor x, Tensor norm_weight, float eps, Tensor w_packed, Tensor gamma) -> Tensor"
OUT_SCHEMA = "(Tensor x, Tensor norm_weight, float eps, Tensor w_packed, Tensor gamma, *, Tensor(a!) out) -> Tensor(a!)"


def rms_bitlinear_reference(x: torch.Tensor, norm_weight: torch.Tensor, eps: float, w_packed: torch.Tensor,
                            gamma: torch.Tensor) -> torch.Tensor:
    if norm_weight.dtype != torch.float32 or tuple(norm_weight.shape) != (x.shape[-1],):
        raise ValueError(f"edgebit::{OP}: norm_weight must be float32 [K] = [{x.shape[-1]}] (x's last dim), got "
                         f"{norm_weight.dtype}{list(norm_weight.shape)}")
    return bitlinear_reference(rms_norm(x, norm_weight, eps), w_packed, gamma)


def _out_impl(x, norm_weight, eps, w_packed, gamma, *, out):
    y = rms_bitlinear_reference(x, norm_weight, eps, w_packed, gamma)
    out.resize_(y.shape)
    return out.copy_(y)


_LIB = define_fragment(OP, SCHEMA, OUT_SCHEMA, rms_bitlinear_reference, _out_impl,
                       lambda x, norm_weight, eps, w_packed, gamma: x.new_empty((*x.shape[:-1], w_packed.shape[0])),
                       lambda x, norm_weight, eps, w_packed, gamma, *, out: out)


def rms_bitlinear(x: torch.Tensor, norm_weight: torch.Tensor, eps: float, w_packed: torch.Tensor,
                  gamma: torch.Tensor) -> torch.Tensor:
    return torch.ops.edgebit.rms_bitlinear(x, norm_weight, eps, w_packed, gamma)
