"""BitNet's ReLU^2 GLU down projection with what precedes its quantization fused in, as a PyTorch op:
`torch.ops.edgebit.relu2_bitlinear` and its out variant, the schema ExecuTorch programs call and
libedgebit_executorch.so implements (docs/ops.md) with the kernel core's edgebit_ternary_linear_f32_relu2; the ONNX
edgebit.BitLinear with relu2_gate=1.

    edgebit::relu2_bitlinear(Tensor gate_up, Tensor norm_weight, float eps, Tensor w_packed, Tensor gamma) -> Tensor
    edgebit::relu2_bitlinear.out(Tensor gate_up, Tensor norm_weight, float eps, Tensor w_packed, Tensor gamma, *,
                                 Tensor(a!) out) -> Tensor(a!)

gate_up float32 [..., 2K] is the gate/up linear's output as it comes ([gate | up]); h = relu(gate)^2 * up (float
steps: r * r, then * up, as the reference's relu(gate).square() * up), then the sub-norm rms_norm(h, norm_weight,
eps) (norm_weight float32 [K]), then edgebit::bitlinear(., w_packed, gamma). One call instead of the split, relu,
two muls and the norm between the two linears (ExecuTorch's portable kernels over the 2B4T's 6912-wide rows).
Importing this module registers the op (once per process).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgebit.ops.torch_ops import define_fragment
from edgebit.ops.torch_rms_bitlinear import rms_bitlinear_reference

OP = "relu2_bitlinear"
SCHEMA = "(Tensor gate_up, Tensor norm_weight, float eps, Tensor w_packed, Tensor gamma) -> Tensor"
OUT_SCHEMA = ("(Tensor gate_up, Tensor norm_weight, float eps, Tensor w_packed, Tensor gamma, *, Tensor(a!) out) "
              "-> Tensor(a!)")


def relu2_bitlinear_reference(gate_up: torch.Tensor, norm_weight: torch.Tensor, eps: float, w_packed: torch.Tensor,
                              gamma: torch.Tensor) -> torch.Tensor:
    if gate_up.shape[-1] % 2 != 0:
        raise ValueError(f"edgebit::{OP}: gate_up must be [..., 2K] ([gate | up]), got an odd last dim "
                         f"{gate_up.shape[-1]}")
    gate, up = gate_up.chunk(2, dim=-1)
    r = F.relu(gate)
    return rms_bitlinear_reference((r * r) * up, norm_weight, eps, w_packed, gamma)


def _out_impl(gate_up, norm_weight, eps, w_packed, gamma, *, out):
    y = relu2_bitlinear_reference(gate_up, norm_weight, eps, w_packed, gamma)
    out.resize_(y.shape)
    return out.copy_(y)


_LIB = define_fragment(OP, SCHEMA, OUT_SCHEMA, relu2_bitlinear_reference, _out_impl,
                       lambda gate_up, norm_weight, eps, w_packed, gamma:
                       gate_up.new_empty((*gate_up.shape[:-1], w_packed.shape[0])),
                       lambda gate_up, norm_weight, eps, w_packed, gamma, *, out: out)


def relu2_bitlinear(gate_up: torch.Tensor, norm_weight: torch.Tensor, eps: float, w_packed: torch.Tensor,
                    gamma: torch.Tensor) -> torch.Tensor:
    return torch.ops.edgebit.relu2_bitlinear(gate_up, norm_weight, eps, w_packed, gamma)
