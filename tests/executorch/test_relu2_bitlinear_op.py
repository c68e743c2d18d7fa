"""edgebit::relu2_bitlinear (BitNet's ReLU^2 GLU down projection with relu(gate)^2 * up and the sub-norm fused in:
what the .pte calls between gate/up and down): the torch op is the reference model's own steps (relu(gate).square() *
up, the sub-norm, ternary_linear), and libedgebit_executorch.so through the real ExecuTorch runtime computes the same
bits; an odd gate_up width or a bad norm weight fails the call, the process carries on."""

import re

import pytest
import torch
import torch.nn.functional as F

from edgebit.model.reference import rms_norm
from edgebit.model.reference import ternary_linear as reference_linear
from edgebit.model.weights import TernaryWeight
from edgebit.ops import executorch_library
from edgebit.ops import torch_relu2_bitlinear  # noqa: F401  (registers the op)
from edgebit.quant.packing import pack_ternary

EPS = 1e-5


def weight(n: int, k: int, seed: int) -> TernaryWeight:
    g = torch.Generator().manual_seed(seed)
    w_t = torch.randint(-1, 2, (n, k), generator=g, dtype=torch.int8)
    return TernaryWeight(pack_ternary(w_t), (torch.rand(n, generator=g) + 0.01).float(), n, k)


def inputs(m: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """gate_up [m, 2k] (half of the gates negative: relu zeroes them) and a sub-norm weight [k]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, 2 * k, generator=g) * torch.logspace(-2, 2, m).unsqueeze(1)
    return x, (torch.rand(k, generator=g) * 2).float()


def expected(gate_up, norm_w, w):
    """The reference model's MLP after its gate/up linears (ReferenceModel.mlp), written out."""
    gate, up = gate_up[:, : w.in_features], gate_up[:, w.in_features:]
    return reference_linear(rms_norm(F.relu(gate).square() * up, norm_w, EPS), w)


class OneOp(torch.nn.Module):
    def forward(self, x, norm_w, w, gamma):
        return torch.ops.edgebit.relu2_bitlinear(x, norm_w, EPS, w, gamma)


@pytest.fixture(scope="module")
def method():
    from executorch.exir import to_edge

    executorch_library.load()
    from executorch.runtime import Runtime

    m, k2, n = (torch.export.Dim(name, max=8192) for name in ("M", "K2", "N"))
    k4, g, kn = torch.export.Dim("K4", max=1024), torch.export.Dim("G", max=4096), torch.export.Dim("KN", max=4096)
    w = weight(96, 384, 0)
    x, norm_w = inputs(3, 384, 0)
    ep = torch.export.export(OneOp(), (x, norm_w, w.packed, w.gamma),
                             dynamic_shapes=({0: m, 1: k2}, {0: kn}, {0: n, 1: k4}, {0: g}))
    program = to_edge(ep).to_executorch()
    assert [(op.name, op.overload) for op in program.executorch_program.execution_plan[0].operators] == [
        ("edgebit::relu2_bitlinear", "out")]
    loaded = Runtime.get().load_program(program.buffer)
    yield loaded.load_method("forward")
    del loaded


def test_torch_op_is_the_reference():
    w = weight(40, 200, 1)
    x, norm_w = inputs(5, 200, 1)
    assert torch.equal(torch.ops.edgebit.relu2_bitlinear(x, norm_w, EPS, w.packed, w.gamma), expected(x, norm_w, w))
    with pytest.raises(ValueError, match=r"gate_up must be \[\.\.\., 2K\]"):
        torch.ops.edgebit.relu2_bitlinear(x[:, 1:], norm_w, EPS, w.packed, w.gamma)


@pytest.mark.parametrize("m,n,k", [(1, 96, 384), (7, 224, 384), (33, 13, 540), (1, 130, 2560)])
def test_kernel_library_in_executorch_is_bit_exact(method, m, n, k):
    w = weight(n, k, m + n)
    x, norm_w = inputs(m, k, m)
    (y,) = method.execute([x, norm_w, w.packed, w.gamma])
    assert torch.equal(y, expected(x, norm_w, w)), (y - expected(x, norm_w, w)).abs().max()


def test_bad_inputs_fail_the_call_and_the_process_survives(method, capfd):
    w = weight(96, 384, 2)
    x, norm_w = inputs(2, 384, 2)
    with pytest.raises(RuntimeError, match="failed"):
        method.execute([x, norm_w[:-1].contiguous(), w.packed, w.gamma])
    assert re.search(r"edgebit::relu2_bitlinear\.out: norm_weight must be contiguous float32 \[K\] = \[384\]",
                     capfd.readouterr().err)
    with pytest.raises(RuntimeError, match="failed"):
        method.execute([x[:, 1:].contiguous(), norm_w, w.packed, w.gamma])
    assert re.search(r"edgebit::relu2_bitlinear\.out: gate_up must be \[\.\.\., 2K\] \(\[gate \| up\]\), got an odd "
                     r"last dim 767", capfd.readouterr().err)
    (y,) = method.execute([x, norm_w, w.packed, w.gamma])
    assert torch.equal(y, expected(x, norm_w, w))
