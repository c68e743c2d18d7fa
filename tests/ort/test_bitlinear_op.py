"""libedgebit_ort.so in a real onnxruntime.InferenceSession: one-node edgebit.BitLinear graphs, bit-exact to
the PyTorch reference (edgebit.model.reference.ternary_linear with a per-channel gamma); bad inputs are
ONNX Runtime errors that name the problem, and the process carries on."""

import shutil
import subprocess

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from edgebit.model.reference import ternary_linear as reference_linear
from edgebit.model.weights import TernaryWeight
from edgebit.errors import EdgebitError
from edgebit.ops import ort_library
from edgebit.quant.packing import pack_ternary, packed_row_bytes

K = 384
QKV = [(128, 0.021), (48, 0.7), (48, 3.5)]  # (rows, gamma) of q, k, v: N = 224, four chunks of 64 rows


def bitlinear_model(x_type=TensorProto.FLOAT, w_type=TensorProto.UINT8, g_type=TensorProto.FLOAT,
                    x_shape=("B", "T", K), w_shape=("N", "K4"), g_shape=("N",)) -> bytes:
    node = helper.make_node("BitLinear", ["X", "W", "gamma"], ["Y"], domain="edgebit", name="qkv")
    graph = helper.make_graph(
        [node], "bitlinear",
        [helper.make_tensor_value_info("X", x_type, list(x_shape) if x_shape is not None else None),
         helper.make_tensor_value_info("W", w_type, list(w_shape)),
         helper.make_tensor_value_info("gamma", g_type, list(g_shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("edgebit", 1)],
                              ir_version=10)  # onnx 1.23 writes IR 14 by default, too new for ORT 1.31
    return model.SerializeToString()


def session(model: bytes, threads: int = 1) -> ort.InferenceSession:
    return ort.InferenceSession(model, ort_library.session_options(threads), providers=["CPUExecutionProvider"])


def qkv_weight(seed: int = 0, k: int = K) -> TernaryWeight:
    """q/k/v concatenated along N, each with its own gamma, varied per channel too."""
    g = torch.Generator().manual_seed(seed)
    n = sum(rows for rows, _ in QKV)
    w_t = torch.randint(-1, 2, (n, k), generator=g, dtype=torch.int8)
    gamma = torch.cat([torch.full((rows,), scale) for rows, scale in QKV])
    gamma = gamma * (1 + torch.rand(n, generator=g))
    return TernaryWeight(pack_ternary(w_t), gamma.float(), n, k)


def activations(shape, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g) * 3
    flat = x.view(-1, shape[-1])
    if flat.shape[0] > 2:
        flat[1] = 0  # all-zero row: the 1e-5 clamp
        flat[2, min(5, shape[-1] - 1)] = 1e4  # one dominant value
    return x


def run(sess, x: torch.Tensor, w: TernaryWeight) -> torch.Tensor:
    (y,) = sess.run(None, {"X": x.numpy(), "W": w.packed.numpy(), "gamma": w.gamma.numpy()})
    return torch.from_numpy(y)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(0, K), (1, K), (5, K), (128, K), (2, 3, K), (1, 1, K), (4, 32, K), (0, 7, K)])
def test_bit_exact_to_reference(shape, threads):
    w = qkv_weight(seed=len(shape) * 1000 + shape[0])
    x = activations(shape, seed=shape[0] + threads)
    x_shape = ("B", "T", K) if len(shape) == 3 else ("M", K)
    y = run(session(bitlinear_model(x_shape=x_shape), threads), x, w)
    expected = reference_linear(x, w)
    assert y.shape == (*shape[:-1], w.out_features)
    assert torch.equal(y, expected), (y - expected).abs().max()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("k", [1, 100, 127, 129, 200, 383, 540])
def test_any_k_bit_exact_to_reference(k, threads):
    """Layout v2: K need not be a multiple of 128; W is [N, ceil(K/128)*32] with padded rows."""
    w = qkv_weight(seed=k, k=k)
    assert w.packed.shape == (N, packed_row_bytes(k))
    sess = session(bitlinear_model(x_shape=("M", k)), threads)
    for shape in [(1, k), (5, k), (33, k)]:
        x = activations(shape, seed=k + shape[0])
        y = run(sess, x, w)
        assert y.shape == (shape[0], N)
        assert torch.equal(y, reference_linear(x, w)), (y - reference_linear(x, w)).abs().max()


def test_static_shapes_and_inferred_output_shape():
    w = qkv_weight(seed=7)
    sess = session(bitlinear_model(x_shape=(5, K), w_shape=(w.out_features, K // 4), g_shape=(w.out_features,)))
    assert sess.get_outputs()[0].shape == [5, w.out_features]
    assert session(bitlinear_model()).get_outputs()[0].shape == ["B", "T", "N"]  # symbolic dims carried through
    x = activations((5, K), seed=3)
    assert torch.equal(run(sess, x, w), reference_linear(x, w))


def test_one_and_two_threads_agree_on_a_wide_layer():
    g = torch.Generator().manual_seed(11)
    n, k = 1000, 1280
    w = TernaryWeight(pack_ternary(torch.randint(-1, 2, (n, k), generator=g, dtype=torch.int8)),
                      torch.rand(n, generator=g) + 0.01, n, k)
    x = torch.randn(3, k, generator=g)
    model = bitlinear_model(x_shape=("M", k))
    y1, y2 = run(session(model, 1), x, w), run(session(model, 2), x, w)
    assert torch.equal(y1, y2) and torch.equal(y1, reference_linear(x, w))


def feeds(x=None, w=None, gamma=None):
    wt = qkv_weight()
    return {"X": np.zeros((2, K), np.float32) if x is None else x,
            "W": wt.packed.numpy() if w is None else w,
            "gamma": wt.gamma.numpy() if gamma is None else gamma}


N = sum(rows for rows, _ in QKV)
BAD = {  # name: (graph kwargs, feeds, regex the message must match)
    "X float64": (dict(x_type=TensorProto.DOUBLE, x_shape=("M", K)), feeds(x=np.zeros((2, K))),
                  r"input 0 'X' must be float32 \[\.\.\., K\], got float64"),
    "W int8": (dict(w_type=TensorProto.INT8, x_shape=("M", K)), feeds(w=np.zeros((N, K // 4), np.int8)),
               r"input 1 'W' must be uint8 .*got int8"),
    "gamma float16": (dict(g_type=TensorProto.FLOAT16, x_shape=("M", K)), feeds(gamma=np.ones(N, np.float16)),
                      r"input 2 'gamma' must be float32 \[N\], got float16"),
    "W 1-D": (dict(w_shape=("L",), x_shape=("M", K)), feeds(w=np.zeros(N * K // 4, np.uint8)),
              r"input 1 'W' must be 2-D \[N, ceil\(K/128\)\*32\], got rank 1"),
    "W 3-D": (dict(w_shape=("a", "b", "c"), x_shape=("M", K)), feeds(w=np.zeros((2, N, K // 8), np.uint8)),
              r"input 1 'W' must be 2-D \[N, ceil\(K/128\)\*32\], got rank 3"),
    "W second dim": (dict(x_shape=("M", K)), feeds(w=np.zeros((N, K // 4 - 1), np.uint8)),
                     rf"input 1 'W' must be \[N, ceil\(K/128\)\*32\] = \[N, {K // 4}\] for K={K} \(X's last dim; "
                     rf"packed layout v2\), got \[{N}, {K // 4 - 1}\]"),
    # Layout v1's width K/4 for a K that is not whole blocks: v2 rows are padded to 64 bytes for K=200.
    "W unpadded (v1 width)": (dict(x_shape=("M", "K")), feeds(x=np.zeros((2, 200), np.float32),
                                                            w=np.zeros((N, 50), np.uint8)),
                              rf"input 1 'W' must be \[N, ceil\(K/128\)\*32\] = \[N, 64\] for K=200.*got \[{N}, 50\]"),
    "W padded one block too far": (dict(x_shape=("M", "K")), feeds(x=np.zeros((2, 100), np.float32),
                                                                  w=np.zeros((N, 64), np.uint8)),
                                   rf"input 1 'W' must be \[N, ceil\(K/128\)\*32\] = \[N, 32\] for K=100.*"
                                   rf"got \[{N}, 64\]"),
    "K zero": (dict(x_shape=("M", "K")), feeds(x=np.zeros((2, 0), np.float32), w=np.zeros((N, 0), np.uint8)),
               r"input 0 'X' last dim K=0 must be in \[1, 4194304\]"),
    "gamma length": (dict(x_shape=("M", K), g_shape=("G",)), feeds(gamma=np.ones(N - 1, np.float32)),
                     rf"input 2 'gamma' must be \[N\] = \[{N}\].*got \[{N - 1}\]"),
    "gamma 2-D": (dict(x_shape=("M", K), g_shape=("G", "H")), feeds(gamma=np.ones((1, N), np.float32)),
                  rf"input 2 'gamma' must be \[N\] = \[{N}\].*got \[1, {N}\]"),
    "X rank 0": (dict(x_shape=()), feeds(x=np.array(1.0, np.float32)),
                 r"input 0 'X' must have rank >= 1"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_inputs_are_clear_errors(case):
    kwargs, bad_feeds, message = BAD[case]
    sess = session(bitlinear_model(**kwargs))
    with pytest.raises(Exception, match=r"edgebit\.BitLinear: " + message):
        sess.run(None, bad_feeds)
    # The process survives, and so does a session whose graph also admits good inputs.
    good = feeds()
    if kwargs.get("x_shape") == ("M", "K") or set(kwargs) == {"x_shape"}:
        (y,) = sess.run(None, good)
        assert y.shape == (2, N)
    (y,) = session(bitlinear_model(x_shape=("M", K))).run(None, good)
    assert y.shape == (2, N)


def test_model_without_the_library_fails_and_registering_it_fixes_that():
    model = bitlinear_model()
    with pytest.raises(Exception, match=r"edgebit:BitLinear.*not a registered"):
        ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    assert session(model).get_inputs()[0].name == "X"


def test_missing_library_is_an_edgebit_error(monkeypatch, tmp_path):
    monkeypatch.setattr(ort_library, "LIB_NAME", "libedgebit_ort_missing.so")
    monkeypatch.setenv("EDGEBIT_LIB_DIR", str(tmp_path))
    with pytest.raises(EdgebitError, match="fetch_ort_headers"):
        ort_library.session_options(1)


def test_only_register_custom_ops_is_exported():
    nm = shutil.which("nm")
    assert nm is not None, "nm (binutils) is needed to check the library's exports"
    out = subprocess.run([nm, "-D", "--defined-only", str(ort_library.library_path())],
                         capture_output=True, text=True, check=True).stdout
    symbols = sorted(line.split()[-1] for line in out.splitlines() if line.strip())
    assert symbols == ["RegisterCustomOps"], symbols
    undefined = subprocess.run([nm, "-D", "--undefined-only", str(ort_library.library_path())],
                               capture_output=True, text=True, check=True).stdout
    assert "OrtGetApiBase" not in undefined and "onnxruntime" not in undefined  # no -lonnxruntime


def normed_bitlinear_model(eps: float | None, relu2_gate: bool = False) -> bytes:
    """BitLinear with its optional norm_weight input (the RMSNorm in front of it, fused) and norm_eps; relu2_gate: X is
    [..., 2K] = [gate | up], the down projection of a ReLU^2 GLU."""
    attrs = ({} if eps is None else {"norm_eps": eps}) | ({"relu2_gate": 1} if relu2_gate else {})
    node = helper.make_node("BitLinear", ["X", "W", "gamma", "norm_weight"], ["Y"], domain="edgebit", **attrs)
    graph = helper.make_graph(
        [node], "bitlinear_normed",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["B", "T", "KX"]),
         helper.make_tensor_value_info("W", TensorProto.UINT8, ["N", "K4"]),
         helper.make_tensor_value_info("gamma", TensorProto.FLOAT, ["N"]),
         helper.make_tensor_value_info("norm_weight", TensorProto.FLOAT, ["K"])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("edgebit", 1)],
                              ir_version=10)
    return model.SerializeToString()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", [(1, 1, K), (2, 7, K), (1, 64, K)])
def test_fused_rms_norm_bit_exact_to_reference(shape, threads):
    """X -> the reference's rms_norm(X, norm_weight, eps) -> ternary_linear, bit for bit: the graph's norm nodes folded
    into the op (what `edgebit export` writes for every RMSNorm that feeds linears)."""
    from edgebit.model.reference import rms_norm

    w = qkv_weight(seed=shape[1])
    x = activations(shape, seed=shape[1] + threads) * torch.logspace(-2, 2, shape[1]).view(1, -1, 1)
    norm_w = (torch.rand(K, generator=torch.Generator().manual_seed(3)) * 2).float()
    sess = session(normed_bitlinear_model(1e-6), threads)
    (y,) = sess.run(None, {"X": x.numpy(), "W": w.packed.numpy(), "gamma": w.gamma.numpy(),
                           "norm_weight": norm_w.numpy()})
    expected = reference_linear(rms_norm(x, norm_w, 1e-6), w)
    assert torch.equal(torch.from_numpy(y), expected), (torch.from_numpy(y) - expected).abs().max()


def test_fused_rms_norm_bad_inputs_are_named():
    w = qkv_weight()
    x = activations((1, 2, K), seed=1).numpy()
    feeds = {"X": x, "W": w.packed.numpy(), "gamma": w.gamma.numpy()}
    with pytest.raises(Exception, match=r"BitLinear: input 3 'norm_weight' must be \[K\] = \[384\].*got \[383\]"):
        session(normed_bitlinear_model(1e-5)).run(None, {**feeds, "norm_weight": np.ones(383, np.float32)})
    with pytest.raises(Exception, match=r"BitLinear: input 3 'norm_weight' needs the float attribute norm_eps"):
        session(normed_bitlinear_model(None)).run(None, {**feeds, "norm_weight": np.ones(K, np.float32)})


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("t", [1, 9])
def test_relu2_gate_bit_exact_to_the_reference_mlp(t, threads):
    """X = [gate | up] -> the reference's F.relu(gate).square() * up -> rms_norm -> ternary_linear, bit for bit: the
    Split, Relu, Mul, Mul and norm nodes in front of a BitNet down projection folded into the op."""
    import torch.nn.functional as F

    from edgebit.model.reference import rms_norm

    w = qkv_weight(seed=t)
    gate_up = activations((1, t, 2 * K), seed=t + threads)
    gate_up[0, 0, :3] = torch.tensor([-0.0, float("-inf"), 0.0])  # relu's edges: -0, -inf gate -> 0 (times up)
    norm_w = (torch.rand(K, generator=torch.Generator().manual_seed(4)) + 0.5).float()
    model = normed_bitlinear_model(1e-5, relu2_gate=True)
    feeds = {"W": w.packed.numpy(), "gamma": w.gamma.numpy(), "norm_weight": norm_w.numpy()}
    (y,) = session(model, threads).run(None, {"X": gate_up.numpy(), **feeds})
    gate, up = gate_up[..., :K], gate_up[..., K:]
    expected = reference_linear(rms_norm(F.relu(gate).square() * up, norm_w, 1e-5), w)
    assert torch.equal(torch.from_numpy(y), expected), (torch.from_numpy(y) - expected).abs().max()
    with pytest.raises(Exception, match=r"BitLinear: input 0 'X' must be \[\.\.\., 2K\].*odd last dim"):
        session(model).run(None, {"X": gate_up[..., 1:].contiguous().numpy(), **feeds})
