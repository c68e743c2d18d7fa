"""libedgebit_ort.so's edgebit.QLinear (the LM head's own GEMV, 8- or 4-bit rows x int8 activations per token) in a
real onnxruntime.InferenceSession: bit-exact to edgebit.quant.qhead.qlinear_reference for every K (whole 128-blocks or
not) and thread count; the quantized rows stand for the table within the format's step; bad inputs and attributes are
errors naming the input or attribute."""

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from edgebit.ops import ort_library
from edgebit.quant.qhead import dequantize_head, qlinear_reference, quantize_head, row_bytes


def qlinear_model(bits: int | None, k: int) -> bytes:
    attrs = {} if bits is None else {"bits": bits}
    node = helper.make_node("QLinear", ["X", "W", "scale"], ["Y"], domain="edgebit", name="head", **attrs)
    graph = helper.make_graph(
        [node], "qlinear",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["B", "T", k]),
         helper.make_tensor_value_info("W", TensorProto.UINT8, ["N", "RB"]),
         helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["N"])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("edgebit", 1)],
                              ir_version=10)
    return model.SerializeToString()


def session(model: bytes, threads: int = 1) -> ort.InferenceSession:
    return ort.InferenceSession(model, ort_library.session_options(threads), providers=["CPUExecutionProvider"])


def table(v: int, k: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(v, k, generator=g) * torch.rand(v, 1, generator=g) * 0.1
    t[0] = 0  # an all-zero row: scale 0
    if v > 2:
        t[1, : k // 2] *= 100  # one loud half: small groups get small sub-scales
    return t


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("k", [64, 128, 200, 384, 2560])
def test_bit_exact_to_reference(bits, k, threads):
    w, scale = quantize_head(table(131, k, seed=k + bits), bits)
    assert tuple(w.shape) == (131, row_bytes(k, bits))
    x = torch.randn(2, 3, k, generator=torch.Generator().manual_seed(k)) * 2
    (y,) = session(qlinear_model(bits, k), threads).run(None, {"X": x.numpy(), "W": w.numpy(), "scale": scale.numpy()})
    expected = qlinear_reference(x, w, scale, bits)
    assert y.shape == (2, 3, 131)
    assert torch.equal(torch.from_numpy(y), expected), np.abs(y - expected.numpy()).max()


@pytest.mark.parametrize("bits", [8, 4])
def test_rows_stand_for_the_table(bits):
    """Each weight is within half its step of the original (int8), or 1.5 steps (4-bit: step sub * scale, searched
    between the group's amax / 8.5 and amax / 6.5, so the loudest weight may be clipped); the table's relative error
    stays at the format's level."""
    t = table(300, 200, seed=3)
    w, scale = quantize_head(t, bits)
    back = dequantize_head(w, scale, 200, bits)
    if bits == 8:
        step = scale[:, None].expand(-1, 200)
    else:
        from edgebit.quant.qhead import dequantized_int_rows

        ones = w.clone()
        ones[:, : 256 // 2] = 0x99  # q = 1 in every nibble, the group scales kept: q * sub = sub
        step = dequantized_int_rows(ones, 200, 4).float() * scale[:, None]
    bound = 0.5 if bits == 8 else 1.5
    assert ((back - t).abs() <= step * bound * 1.0001 + 1e-12).all()
    rel = (back - t).norm() / t.norm()
    assert rel < (0.01 if bits == 8 else 0.12), rel


def test_bad_inputs_are_named():
    k = 200
    w, scale = quantize_head(table(10, k, 1), 4)
    x = np.ones((1, 1, k), np.float32)
    with pytest.raises(Exception, match="bits"):
        session(qlinear_model(None, k)).run(None, {"X": x, "W": w.numpy(), "scale": scale.numpy()})
    with pytest.raises(Exception, match="bits"):
        session(qlinear_model(5, k)).run(None, {"X": x, "W": w.numpy(), "scale": scale.numpy()})
    with pytest.raises(Exception, match=r"input 1 'W' must be \[N, 136\]"):
        session(qlinear_model(4, k)).run(None, {"X": x, "W": w[:, :-1].contiguous().numpy(), "scale": scale.numpy()})
    with pytest.raises(Exception, match="input 2 'scale'"):
        session(qlinear_model(4, k)).run(None, {"X": x, "W": w.numpy(), "scale": scale[:-1].numpy()})
