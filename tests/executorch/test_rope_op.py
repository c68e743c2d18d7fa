"""edgebit::rope (the .pte's RoPE of query and key, one call each): the torch op is the reference's apply_rope, and
libedgebit_executorch.so through the real ExecuTorch runtime computes the same bits; bad shapes fail the call."""

import re

import pytest
import torch

from edgebit.model.config import RopeConfig
from edgebit.model.reference import apply_rope, rope_cos_sin, rope_inv_freq
from edgebit.ops import executorch_library
from edgebit.ops import torch_rope  # noqa: F401  (registers the op)


def angles(t: int, d: int, start: int = 0):
    cos, sin = rope_cos_sin(rope_inv_freq(d, RopeConfig(theta=500000.0)), torch.arange(start, start + t))
    return cos.unsqueeze(1), sin.unsqueeze(1)  # (T, 1, D), as the decoder passes them


class OneOp(torch.nn.Module):
    def forward(self, x, cos, sin):
        return torch.ops.edgebit.rope(x, cos, sin)


@pytest.fixture(scope="module")
def method():
    from executorch.exir import to_edge

    executorch_library.load()
    from executorch.runtime import Runtime

    t, h, d = torch.export.Dim("T", max=512), torch.export.Dim("H", max=64), torch.export.Dim("D", max=512)
    x = torch.randn(1, 3, 4, 32)
    cos, sin = angles(3, 32)
    ep = torch.export.export(OneOp(), (x, cos, sin), dynamic_shapes=({1: t, 2: h, 3: d}, {0: t, 2: d}, {0: t, 2: d}))
    program = to_edge(ep).to_executorch()
    assert [(op.name, op.overload) for op in program.executorch_program.execution_plan[0].operators] == [
        ("edgebit::rope", "out")]
    loaded = Runtime.get().load_program(program.buffer)
    yield loaded.load_method("forward")
    del loaded


@pytest.mark.parametrize("t,h,d,start", [(1, 20, 128, 100), (7, 5, 64, 0), (33, 2, 6, 3000)])
def test_op_is_apply_rope_bit_for_bit(method, t, h, d, start):
    x = torch.randn(1, t, h, d, generator=torch.Generator().manual_seed(t)) * 4
    cos, sin = angles(t, d, start)
    expected = apply_rope(x, cos, sin)
    assert torch.equal(torch.ops.edgebit.rope(x, cos, sin), expected)
    (y,) = method.execute([x, cos, sin])
    assert torch.equal(y, expected), (y - expected).abs().max()


def test_bad_shapes_fail_the_call(method, capfd):
    x = torch.randn(1, 3, 4, 32)
    cos, sin = angles(3, 32)
    with pytest.raises(ValueError, match=r"cos, sin \[T, 1, D\]"):
        torch.ops.edgebit.rope(x, cos[:2], sin[:2])
    with pytest.raises(RuntimeError, match="failed"):
        method.execute([x, cos[:, :, :16].contiguous(), sin[:, :, :16].contiguous()])
    assert re.search(r"edgebit::rope\.out: cos and sin must be \[T, 1, D\] = \[3, 1, 32\]", capfd.readouterr().err)
