"""edgebit::attention (the .pte's attention over its KV cache): the torch op is a masked softmax product in stock
torch, held to transformers-style SDPA with repeat_kv here; libedgebit_executorch.so through the real ExecuTorch
runtime computes the same within float rounding for decode steps and prompts, grouped and plain heads, a head size
that is not a multiple of 8 and a cache longer than one key chunk, and never reads cache rows past the largest
position (they hold NaN here). Bad positions or shapes fail the call with a message naming the op."""

import re

import pytest
import torch
import torch.nn.functional as F

from edgebit.ops import executorch_library, torch_attention  # noqa: F401  (registers the op)


class Attend(torch.nn.Module):
    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, q, k_cache, v_cache, input_pos):
        return torch_attention.attention(q, k_cache, v_cache, input_pos, self.scale)


def sdpa_reference(q, k_cache, v_cache, input_pos, scale):
    """Independent of the op's own reference: torch's scaled_dot_product_attention per query, over the positions
    it may see, keys repeated per query head as transformers' repeat_kv does."""
    _, t, hq, d = q.shape
    group = hq // k_cache.shape[1]
    rows = []
    for i in range(t):
        n = int(input_pos[i]) + 1
        k = k_cache[0, :, :n].repeat_interleave(group, dim=0)  # (Hq, n, D)
        v = v_cache[0, :, :n].repeat_interleave(group, dim=0)
        rows.append(F.scaled_dot_product_attention(q[0, i][:, None], k, v, scale=scale)[:, 0])  # (Hq, D)
    return torch.stack(rows).reshape(1, t, hq * d)


def case(t, hq, hkv, s, d, positions, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, t, hq, d, generator=g)
    k = torch.randn(1, hkv, s, d, generator=g)
    v = torch.randn(1, hkv, s, d, generator=g)
    last = max(positions)
    k[:, :, last + 1:] = float("nan")  # stale rows: must never be read
    v[:, :, last + 1:] = float("nan")
    return q, k, v, torch.tensor(positions)


CASES = {
    "decode-gqa": (1, 8, 2, 600, 32, [517]),      # three key chunks of 256
    "decode-mha-odd-d": (1, 3, 3, 40, 13, [21]),
    "prompt": (20, 4, 2, 600, 16, list(range(250, 270))),  # crosses a chunk boundary and a 16-query block
    "first-token": (1, 4, 1, 16, 8, [0]),
}


@pytest.fixture(scope="module")
def runtime():
    executorch_library.load()
    from executorch.runtime import Runtime

    return Runtime.get()


def lowered(runtime, example, scale, dynamic):
    from executorch.exir import EdgeCompileConfig, to_edge

    ep = torch.export.export(Attend(scale), example, dynamic_shapes=dynamic, strict=False)
    prog = to_edge(ep, compile_config=EdgeCompileConfig(_check_ir_validity=False)).to_executorch()
    ops = {op.name for op in prog.executorch_program.execution_plan[0].operators}
    assert ops == {"edgebit::attention"}, ops  # the .out kernel, named by its op
    loaded = runtime.load_program(prog.buffer)
    return loaded, loaded.load_method("forward")


@pytest.mark.parametrize("name", list(CASES))
def test_torch_op_is_sdpa_over_the_visible_positions(name):
    q, k, v, pos = case(*CASES[name], seed=1)
    got = torch.ops.edgebit.attention(q, k, v, pos, 0.3)
    assert torch.allclose(got, sdpa_reference(q, k, v, pos, 0.3), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", list(CASES))
def test_kernel_in_executorch_matches_sdpa(runtime, name):
    q, k, v, pos = case(*CASES[name], seed=2)
    _keep, forward = lowered(runtime, (q, k, v, pos), 0.25, None)
    (got,) = forward.execute([q, k, v, pos])
    assert not got.isnan().any()
    assert torch.allclose(got, sdpa_reference(q, k, v, pos, 0.25), atol=2e-5, rtol=1e-4)


def test_dynamic_length_steps(runtime):
    """One program, as the decoder uses it: a prompt, then single steps at growing positions."""
    q, k, v, _ = case(5, 4, 2, 64, 16, [40], seed=3)
    t = torch.export.Dim("t", min=1, max=64)
    _keep, forward = lowered(runtime, (q, k, v, torch.arange(5)), 0.25, ({1: t}, None, None, {0: t}))
    for positions in (list(range(5)), [5], [6], list(range(7, 30))):
        pos = torch.tensor(positions)
        qi = torch.randn(1, len(positions), 4, 16)
        (got,) = forward.execute([qi, k, v, pos])
        assert torch.allclose(got, sdpa_reference(qi, k, v, pos, 0.25), atol=2e-5, rtol=1e-4), positions


@pytest.mark.parametrize("positions,message", [
    ([64], r"input_pos\[0\] = 64 is outside the cache's 64 positions"),
    ([-3], r"input_pos\[0\] = -3 is outside the cache's 64 positions"),
    ([1, 2], r"input_pos must have T = 1 entries \(q's dim 1\), got 2"),
])
def test_bad_positions_fail_the_call(runtime, capfd, positions, message):
    q, k, v, _ = case(1, 4, 2, 64, 16, [63], seed=4)
    t, n = torch.export.Dim("t", min=1, max=64), torch.export.Dim("n", min=1, max=64)  # unrelated on purpose
    _keep, forward = lowered(runtime, (torch.cat([q, q], 1), k, v, torch.tensor([3, 4])), 0.25,
                             ({1: t}, None, None, {0: n}))
    with pytest.raises(RuntimeError):
        forward.execute([q, k, v, torch.tensor(positions)])
    assert re.search(r"edgebit::attention\.out: " + message, capfd.readouterr().err), positions
    (ok,) = forward.execute([q, k, v, torch.tensor([3])])  # the program still runs
    assert torch.allclose(ok, sdpa_reference(q, k, v, torch.tensor([3]), 0.25), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ["decode-gqa", "decode-mha-odd-d", "prompt"])
def test_fp16_caches_give_the_fp32_kernels_bits_on_the_widened_caches(runtime, name):
    """float16 caches (the .pte's --kv-cache float16): widened exactly, so the kernel's output equals, bit for bit,
    its own output on the same caches in float32; the torch op agrees with SDPA on them."""
    q, k, v, pos = case(*CASES[name], seed=4)
    k16, v16 = k.half(), v.half()
    _keep16, forward16 = lowered(runtime, (q, k16, v16, pos), 0.25, None)
    _keep32, forward32 = lowered(runtime, (q, k16.float(), v16.float(), pos), 0.25, None)
    (got,) = forward16.execute([q, k16, v16, pos])
    (want,) = forward32.execute([q, k16.float(), v16.float(), pos])
    assert not got.isnan().any() and torch.equal(got, want)
    ref = torch.ops.edgebit.attention(q, k16, v16, pos, 0.25)
    assert torch.allclose(ref, sdpa_reference(q, k16.float(), v16.float(), pos, 0.25), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["decode-gqa", "decode-mha-odd-d", "prompt"])
def test_int8_caches_give_the_fp32_kernels_bits_on_the_dequantized_caches(runtime, name):
    """int8 caches (the .pte's --kv-cache int8: rows of codes and a float32 scale, edgebit/quant/kv_int8.py): the
    kernel's output equals, bit for bit, its own output on the dequantized caches in float32 (the stale rows quantize
    to NaN scales and stay unread); the torch op agrees with SDPA on them."""
    from edgebit.quant.kv_int8 import dequantize_rows, quantize_rows

    q, k, v, pos = case(*CASES[name], seed=5)
    k8, v8 = quantize_rows(k), quantize_rows(v)
    kd, vd = dequantize_rows(k8), dequantize_rows(v8)
    _keep8, forward8 = lowered(runtime, (q, k8, v8, pos), 0.25, None)
    _keep32, forward32 = lowered(runtime, (q, kd, vd, pos), 0.25, None)
    (got,) = forward8.execute([q, k8, v8, pos])
    (want,) = forward32.execute([q, kd, vd, pos])
    assert not got.isnan().any() and torch.equal(got, want)
    ref = torch.ops.edgebit.attention(q, k8, v8, pos, 0.25)
    assert torch.allclose(ref, sdpa_reference(q, kd, vd, pos, 0.25), atol=1e-5, rtol=1e-5)
