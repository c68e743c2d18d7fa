"""edgebit::cache_write (the .pte's in-place KV cache write): the torch op is index_copy_, and
libedgebit_executorch.so through the real ExecuTorch runtime, on a program holding a cache buffer as the decoder
does, writes exactly what index_copy_ writes into the buffer itself, step after step, along a middle dim (values)
and the last one (transposed keys). Positions outside the cache, or a value of the wrong shape, fail the call with a
message naming the op and leave the cache as it was. A float16 cache gets the rows rounded as torch's .half() rounds
them (to nearest even), bit for bit; an int8 cache each row's codes and float32 scale as edgebit/quant/kv_int8.py
writes them, bit for bit."""

import re

import pytest
import torch

from edgebit.ops import executorch_library, torch_cache  # noqa: F401  (registers the op)

SHAPE = (1, 2, 6, 5)  # (1, KVH, S, D): values' layout; with dim 3 it stands for keys stored (1, KVH, D, S)


class CacheHolder(torch.nn.Module):
    """A buffer written by cache_write along `dim`, then read back, as a layer writes and reads its cache."""

    def __init__(self, dim: int, dtype: torch.dtype = torch.float32, shape: tuple[int, ...] = SHAPE):
        super().__init__()
        self.dim = dim
        self.register_buffer("cache", torch.zeros(shape, dtype=dtype), persistent=False)

    def forward(self, value, input_pos):
        torch_cache.cache_write(value, self.cache, input_pos, self.dim)
        # a copy of the buffer after the write, for the test to compare (in the buffer's own type)
        return self.cache * 1.0 if self.cache.is_floating_point() else self.cache + 0


def value_shape(dim: int, t: int) -> tuple[int, ...]:
    return tuple(t if d == dim else size for d, size in enumerate(SHAPE))


@pytest.fixture(scope="module", params=[2, 3], ids=["values-dim2", "keys-dim3"])
def program(request):
    from executorch.exir import EdgeCompileConfig, to_edge

    executorch_library.load()
    from executorch.runtime import Runtime

    dim = request.param
    t = torch.export.Dim("t", min=1, max=SHAPE[dim])
    ep = torch.export.export(CacheHolder(dim), (torch.zeros(value_shape(dim, 2)), torch.arange(2)),
                             dynamic_shapes=({dim: t}, {0: t}), strict=False)
    prog = to_edge(ep, compile_config=EdgeCompileConfig(_check_ir_validity=False)).to_executorch()
    ops = {op.name for op in prog.executorch_program.execution_plan[0].operators}
    assert "edgebit::cache_write" in ops and not ops & {"aten::index_put", "aten::copy_"}, ops
    loaded = Runtime.get().load_program(prog.buffer)
    yield dim, loaded.load_method("forward")  # the Program must outlive its Method
    del loaded


def dim2_program(dtype: torch.dtype, shape: tuple[int, ...] = SHAPE):
    """(the loaded Program, its forward Method) for a CacheHolder of `dtype` written along dim 2 (keep the Program
    alive while the Method is used)."""
    from executorch.exir import EdgeCompileConfig, to_edge

    executorch_library.load()
    from executorch.runtime import Runtime

    t = torch.export.Dim("t", min=1, max=SHAPE[2])
    ep = torch.export.export(CacheHolder(2, dtype, shape), (torch.zeros(value_shape(2, 2)), torch.arange(2)),
                             dynamic_shapes=({2: t}, {0: t}), strict=False)
    loaded = Runtime.get().load_program(to_edge(ep, compile_config=EdgeCompileConfig(
        _check_ir_validity=False)).to_executorch().buffer)
    return loaded, loaded.load_method("forward")


def test_fp16_cache_rows_are_rounded_as_torch_half():
    _program, forward = dim2_program(torch.float16)
    expected = torch.zeros(SHAPE, dtype=torch.float16)
    g = torch.Generator().manual_seed(7)
    for positions in ([0, 1, 2], [3], [5]):
        pos = torch.tensor(positions)
        value = torch.randn(value_shape(2, len(positions)), generator=g) * 1000
        value.view(-1)[:4] = torch.tensor([1 + 2 ** -11, 1 + 3 * 2 ** -11, 6e-8, 65519.99])  # ties, subnormal, max
        (cache,) = forward.execute([value, pos])
        expected.index_copy_(2, pos, value.half())
        assert cache.dtype == torch.float16 and torch.equal(cache.view(torch.int16), expected.view(torch.int16))


def test_int8_cache_rows_are_the_python_codecs():
    """An int8 cache (1, KVH, S, D + 4) written along dim 2: each new row's D codes and float32 scale, bit for bit
    edgebit/quant/kv_int8.py's (ties, a zero row, a NaN row: NaN scale, zero codes)."""
    from edgebit.quant.kv_int8 import quantize_rows

    shape = SHAPE[:3] + (SHAPE[3] + 4,)
    _program, forward = dim2_program(torch.int8, shape)
    expected = torch.zeros(shape, dtype=torch.int8)
    g = torch.Generator().manual_seed(8)
    for positions in ([0, 1, 2], [3], [5]):
        pos = torch.tensor(positions)
        value = torch.randn(value_shape(2, len(positions)), generator=g) * 100
        value[0, 0, 0] = torch.tensor([2.5, -1.5, 0.5, 127.0, 3.0])  # ties against the scale 1
        value[0, 1, 0] = 0.0
        if len(positions) == 1:
            value[0, 0, 0, 2] = float("nan")
        (cache,) = forward.execute([value, pos])
        expected.index_copy_(2, pos, quantize_rows(value))
        assert cache.dtype == torch.int8 and torch.equal(cache, expected), positions


def test_torch_op_is_index_copy():
    cache, expected = torch.zeros(SHAPE), torch.zeros(SHAPE)
    value, pos = torch.randn(value_shape(3, 2)), torch.tensor([4, 1])
    torch.ops.edgebit.cache_write(value, cache, pos, 3)
    assert torch.equal(cache, expected.index_copy_(3, pos, value))


def test_steps_write_in_place_as_index_copy_does(program):
    dim, forward = program
    expected = torch.zeros(SHAPE)
    g = torch.Generator().manual_seed(dim)
    for positions in ([0, 1, 2], [3], [4], [1, 4], [0]):  # a prompt, decode steps, a rewrite of earlier rows
        pos = torch.tensor(positions)
        value = torch.randn(value_shape(dim, len(positions)), generator=g)
        (cache,) = forward.execute([value, pos])
        expected.index_copy_(dim, pos, value)
        assert torch.equal(cache, expected), positions


@pytest.mark.parametrize("case,positions,t,message", [
    ("past the end", [SHAPE[2] + 7], 1, r"input_pos\[0\] = 13 is outside the cache's \d+ positions"),
    ("negative", [0, -1], 2, r"input_pos\[1\] = -1 is outside the cache's \d+ positions"),
    ("length mismatch", [0, 1], 1, r"value's dim \d must be T = 2 \(input_pos's length\), got 1"),
])
def test_bad_positions_fail_the_call_and_leave_the_cache(program, capfd, case, positions, t, message):
    dim, forward = program
    (before,) = forward.execute([torch.zeros(value_shape(dim, 1)), torch.tensor([0])])
    with pytest.raises(RuntimeError):
        forward.execute([torch.full(value_shape(dim, t), 9.0), torch.tensor(positions)])
    assert re.search(r"edgebit::cache_write\.out: " + message, capfd.readouterr().err), case
    (after,) = forward.execute([torch.zeros(value_shape(dim, 1)), torch.tensor([0])])
    assert torch.equal(after, before) and not (after == 9.0).any()
