"""edgebit::bitlinear: the pure-torch op bit-exact to the reference, and libedgebit_executorch.so through the
real ExecuTorch runtime on one-op programs, bit-exact to the reference; bad shapes fail the call, the process
carries on."""

import re
import shutil
import subprocess

import pytest
import torch

from edgebit.model.reference import ternary_linear as reference_linear
from edgebit.model.weights import TernaryWeight
from edgebit.ops import executorch_library, torch_ops
from edgebit.quant.packing import pack_ternary, packed_row_bytes

K = 384
QKV = [(128, 0.021), (48, 0.7), (48, 3.5)]  # q/k/v-like: N = 224, per-channel gamma
N = sum(rows for rows, _ in QKV)


def qkv_weight(seed=0, n=N, k=K) -> TernaryWeight:
    g = torch.Generator().manual_seed(seed)
    w_t = torch.randint(-1, 2, (n, k), generator=g, dtype=torch.int8)
    gamma = torch.cat([torch.full((rows,), scale) for rows, scale in QKV]) if n == N else torch.full((n,), 0.3)
    return TernaryWeight(pack_ternary(w_t), (gamma * (1 + torch.rand(n, generator=g))).float(), n, k)


def activations(shape, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g) * 3
    flat = x.view(-1, shape[-1])
    if flat.shape[0] > 2:
        flat[1] = 0  # all-zero row: the 1e-5 clamp
        flat[2, min(5, shape[-1] - 1)] = 1e4  # one dominant value
    return x


@pytest.mark.parametrize("shape", [(1, K), (5, K), (2, 3, K), (0, K), (3, 200), (1, 1), (2, 2, 100)])
def test_torch_op_is_the_reference(shape):
    w = qkv_weight(seed=shape[0], k=shape[-1])
    x = activations(shape, seed=len(shape))
    expected = reference_linear(x, w)
    assert torch.equal(torch.ops.edgebit.bitlinear(x, w.packed, w.gamma), expected)
    out = torch.empty(0)
    torch.ops.edgebit.bitlinear.out(x, w.packed, w.gamma, out=out)
    assert torch.equal(out, expected)


def test_torch_op_rejects_bad_shapes():
    w = qkv_weight()
    with pytest.raises(ValueError, match="gamma must be float32"):
        torch.ops.edgebit.bitlinear(torch.zeros(2, K), w.packed, w.gamma[:-1])
    with pytest.raises(ValueError, match=rf"w_packed must be \[N, ceil\(K/128\)\*32\] = \[N, {K // 2}\] for K={2 * K}"):
        torch.ops.edgebit.bitlinear(torch.zeros(2, 2 * K), w.packed, w.gamma)
    with pytest.raises(ValueError, match=r"= \[N, 64\] for K=200 \(x's last dim; packed layout v2\), got \[224, 96\]"):
        torch.ops.edgebit.bitlinear(torch.zeros(2, 200), w.packed, w.gamma)
    with pytest.raises(ValueError, match="last dim K must be positive"):
        torch.ops.edgebit.bitlinear(torch.zeros(2, 0), w.packed[:, :0], w.gamma)


class OneOp(torch.nn.Module):
    def forward(self, x, w, gamma):
        return torch.ops.edgebit.bitlinear(x, w, gamma)


@pytest.fixture(scope="module")
def method():
    """One edgebit::bitlinear.out call with every dim dynamic, so bad shapes reach the kernel."""
    from executorch.exir import to_edge

    executorch_library.load()
    from executorch.runtime import Runtime

    m, k, n = (torch.export.Dim(name, max=4096) for name in ("M", "K", "N"))
    k4, g = torch.export.Dim("K4", max=1024), torch.export.Dim("G", max=4096)
    w = qkv_weight()
    ep = torch.export.export(OneOp(), (torch.zeros(3, K), w.packed, w.gamma),
                             dynamic_shapes=({0: m, 1: k}, {0: n, 1: k4}, {0: g}))
    program = to_edge(ep).to_executorch()
    assert [(op.name, op.overload) for op in program.executorch_program.execution_plan[0].operators] == [
        ("edgebit::bitlinear", "out")]
    loaded = Runtime.get().load_program(program.buffer)
    yield loaded.load_method("forward")  # the Program must outlive its Method
    del loaded


@pytest.mark.parametrize("m,n,k", [(1, N, K), (7, N, K), (33, N, K), (1, 1000, 1280), (4, 64, 128),
                                   (1, N, 200), (7, 67, 100), (33, 13, 540), (3, 5, 1), (1, 130, 8640)])
def test_kernel_library_in_executorch_is_bit_exact(method, m, n, k):
    """Any K (layout v2 pads the packed rows to ceil(K/128)*32 bytes)."""
    w = qkv_weight(seed=m * n, n=n, k=k)
    assert w.packed.shape == (n, packed_row_bytes(k))
    x = activations((m, k), seed=m)
    (y,) = method.execute([x, w.packed, w.gamma])
    assert y.shape == (m, n)
    assert torch.equal(y, reference_linear(x, w)), (y - reference_linear(x, w)).abs().max()


@pytest.mark.parametrize("case,x,w,gamma,message", [
    ("W unpadded (v1 width)", torch.zeros(2, 200), torch.zeros(N, 50, dtype=torch.uint8), torch.ones(N),
     r"w_packed must be \[N, ceil\(K/128\)\*32\] = \[N, 64\] for K=200 \(x's last dim; packed layout v2\), "
     r"got \[224, 50\]"),
    ("W padded one block too far", torch.zeros(2, 100), torch.zeros(N, 64, dtype=torch.uint8), torch.ones(N),
     r"w_packed must be .* = \[N, 32\] for K=100 .*got \[224, 64\]"),
    ("W second dim", torch.zeros(2, K), torch.zeros(N, K // 4 - 1, dtype=torch.uint8), torch.ones(N),
     r"w_packed must be .* = \[N, 96\] for K=384 .*got \[224, 95\]"),
    ("K zero", torch.zeros(2, 0), torch.zeros(N, 0, dtype=torch.uint8), torch.ones(N),
     r"x's last dim K=0 must be in \[1, 4194304\]"),
    ("gamma length", torch.zeros(2, K), torch.zeros(N, K // 4, dtype=torch.uint8), torch.ones(N - 1),
     r"gamma must be \[N\] = \[224\]"),
])
def test_bad_inputs_fail_the_call_and_the_process_survives(method, capfd, case, x, w, gamma, message):
    with pytest.raises(RuntimeError, match="failed"):
        method.execute([x, w, gamma])
    assert re.search(r"edgebit::bitlinear\.out: " + message, capfd.readouterr().err)
    good = qkv_weight()
    x = activations((2, K), seed=1)
    (y,) = method.execute([x, good.packed, good.gamma])
    assert torch.equal(y, reference_linear(x, good))


def test_one_copy_per_process(tmp_path):
    first = executorch_library.load()
    assert executorch_library.load(shutil.copy2(first, tmp_path / first.name)) == first  # identical copy: no-op
    other = tmp_path / "other" / first.name
    other.parent.mkdir()
    other.write_bytes(first.read_bytes() + b"\0")
    with pytest.raises(executorch_library.ExecutorchLibraryError, match="already loaded"):
        executorch_library.load(other)


def test_only_the_registration_is_linked_in():
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) not installed")
    path = executorch_library.library_path()
    defined = subprocess.run([nm, "-D", "--defined-only", str(path)], capture_output=True, text=True,
                             check=True).stdout
    assert [line for line in defined.splitlines() if line.strip()] == []  # nothing exported
    undefined = subprocess.run([nm, "-D", "--undefined-only", "-C", str(path)], capture_output=True, text=True,
                               check=True).stdout
    assert "register_kernel" in undefined and "parallel_for" in undefined


def test_permuted_dim_order_is_refused_not_misread():
    """A program whose x is channels-last (dim order 0,2,3,1) hands the kernel memory that is not row-major
    [..., K]. The kernel used to read it as row-major and return wrong numbers; it now fails the call
    (found by runtime_ops/fuzz/fuzz_et_op, which also feeds permuted w_packed, gamma and out)."""
    from executorch.exir import to_edge

    executorch_library.load()
    from executorch.runtime import Runtime

    w = qkv_weight(seed=5, n=8, k=128)
    x = activations((1, 2, 3, 128), seed=5).to(memory_format=torch.channels_last)
    program = to_edge(torch.export.export(OneOp(), (x, w.packed, w.gamma))).to_executorch()
    assert list(program.executorch_program.execution_plan[0].values[0].val.dim_order) == [0, 2, 3, 1]
    loaded = Runtime.get().load_program(program.buffer)
    method = loaded.load_method("forward")
    with pytest.raises(RuntimeError, match="failed"):
        method.execute([x, w.packed, w.gamma])
