"""edgebit::rms_bitlinear (the ternary linear after its RMSNorm, fused: what the .pte calls for every RMSNorm in front
of linears) and edgebit::relu2_bitlinear (BitNet's ReLU^2 GLU down projection: gate/up's output read unsplit,
relu(gate)^2 * up and the sub-norm fused in): each torch op is the reference's own steps (rms_norm, or
relu(gate).square() * up then rms_norm, then ternary_linear), and libedgebit_executorch.so through the real
ExecuTorch runtime computes the same bits; a bad norm weight or an odd gate/up width fails the call, the process
carries on."""

import re

import pytest
import torch
import torch.nn.functional as F

from edgebit.model.reference import rms_norm
from edgebit.model.reference import ternary_linear as reference_linear
from edgebit.model.weights import TernaryWeight
from edgebit.ops import executorch_library
from edgebit.ops import torch_relu2_bitlinear, torch_rms_bitlinear  # noqa: F401  (register the ops)
from edgebit.quant.packing import pack_ternary

EPS = 1e-6
# x's last dim in units of the linear's K: the norm's input as is, or [gate | up].
WIDTH = {"rms_bitlinear": 1, "relu2_bitlinear": 2}


def weight(n: int, k: int, seed: int) -> TernaryWeight:
    g = torch.Generator().manual_seed(seed)
    w_t = torch.randint(-1, 2, (n, k), generator=g, dtype=torch.int8)
    return TernaryWeight(pack_ternary(w_t), (torch.rand(n, generator=g) + 0.01).float(), n, k)


def inputs(op: str, m: int, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x [m, K] or gate_up [m, 2K] (half of the gates negative: relu zeroes them), rows over four decades, and a norm
    weight [K]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, WIDTH[op] * k, generator=g) * torch.logspace(-2, 2, m).unsqueeze(1)
    return x, (torch.rand(k, generator=g) * 2).float()


def expected(op: str, x, norm_w, w):
    """The reference model's steps (ReferenceModel's norms, and its mlp after the gate/up linear), written out."""
    if op == "relu2_bitlinear":
        gate, up = x[:, : w.in_features], x[:, w.in_features:]
        x = F.relu(gate).square() * up
    return reference_linear(rms_norm(x, norm_w, EPS), w)


def call(op: str, x, norm_w, w_packed, gamma):
    return getattr(torch.ops.edgebit, op)(x, norm_w, EPS, w_packed, gamma)


class OneOp(torch.nn.Module):
    def __init__(self, op: str):
        super().__init__()
        self.op = op

    def forward(self, x, norm_w, w, gamma):
        return call(self.op, x, norm_w, w, gamma)


@pytest.fixture(scope="module", params=list(WIDTH))
def method(request):
    """(op, the loaded ExecuTorch method calling it once with dynamic shapes)."""
    from executorch.exir import to_edge

    executorch_library.load()
    from executorch.runtime import Runtime

    op = request.param
    m, kx, n = (torch.export.Dim(name, max=8192) for name in ("M", "KX", "N"))
    k4, g, kn = torch.export.Dim("K4", max=1024), torch.export.Dim("G", max=4096), torch.export.Dim("KN", max=4096)
    w = weight(96, 384, 0)
    x, norm_w = inputs(op, 3, 384, 0)
    ep = torch.export.export(OneOp(op), (x, norm_w, w.packed, w.gamma),
                             dynamic_shapes=({0: m, 1: kx}, {0: kn}, {0: n, 1: k4}, {0: g}))
    program = to_edge(ep).to_executorch()
    assert [(o.name, o.overload) for o in program.executorch_program.execution_plan[0].operators] == [
        (f"edgebit::{op}", "out")]
    loaded = Runtime.get().load_program(program.buffer)
    yield op, loaded.load_method("forward")
    del loaded


@pytest.mark.parametrize("op", list(WIDTH))
def test_torch_op_is_the_reference(op):
    w = weight(40, 200, 1)
    x, norm_w = inputs(op, 5, 200, 1)
    assert torch.equal(call(op, x, norm_w, w.packed, w.gamma), expected(op, x, norm_w, w))
    with pytest.raises(ValueError, match=r"norm_weight must be float32 \[K\] = \[200\]"):
        call(op, x, norm_w[:-1], w.packed, w.gamma)
    if op == "relu2_bitlinear":
        with pytest.raises(ValueError, match=r"gate_up must be \[\.\.\., 2K\]"):
            call(op, x[:, 1:], norm_w, w.packed, w.gamma)


@pytest.mark.parametrize("m,n,k", [(1, 96, 384), (7, 224, 384), (33, 13, 540), (1, 130, 2560)])
def test_kernel_library_in_executorch_is_bit_exact(method, m, n, k):
    op, run = method
    w = weight(n, k, m + n)
    x, norm_w = inputs(op, m, k, m)
    (y,) = run.execute([x, norm_w, w.packed, w.gamma])
    assert torch.equal(y, expected(op, x, norm_w, w)), (y - expected(op, x, norm_w, w)).abs().max()


def test_bad_inputs_fail_the_call_and_the_process_survives(method, capfd):
    op, run = method
    w = weight(96, 384, 2)
    x, norm_w = inputs(op, 2, 384, 2)
    with pytest.raises(RuntimeError, match="failed"):
        run.execute([x, norm_w[:-1].contiguous(), w.packed, w.gamma])
    assert re.search(rf"edgebit::{op}\.out: norm_weight must be contiguous float32 \[K\] = \[384\]",
                     capfd.readouterr().err)
    if op == "relu2_bitlinear":
        with pytest.raises(RuntimeError, match="failed"):
            run.execute([x[:, 1:].contiguous(), norm_w, w.packed, w.gamma])
        assert re.search(r"edgebit::relu2_bitlinear\.out: gate_up must be \[\.\.\., 2K\] \(\[gate \| up\]\), got an "
                         r"odd last dim 767", capfd.readouterr().err)
    (y,) = run.execute([x, norm_w, w.packed, w.gamma])
    assert torch.equal(y, expected(op, x, norm_w, w))
