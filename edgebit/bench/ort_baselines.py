"""ONNX Runtime's own paths for the same products, as benchmark baselines: MatMulInteger (int8 x int8) and
MatMulNBits (com.microsoft, 2-bit and 4-bit weights, block-quantized) on one-node-per-matrix graphs."""

from __future__ import annotations

import numpy as np

MATMULNBITS_BLOCK = 128


def _pack_nbits(q: np.ndarray, bits: int) -> np.ndarray:
    """q uint8 [N, K] with values < 2^bits -> MatMulNBits B [N, K/block, block*bits/8], low bits first."""
    n, k = q.shape
    per_byte = 8 // bits
    q = q.reshape(n, k // per_byte, per_byte).astype(np.uint8)
    packed = np.zeros((n, k // per_byte), dtype=np.uint8)
    for i in range(per_byte):
        packed |= q[:, :, i] << (bits * i)
    return packed.reshape(n, k // MATMULNBITS_BLOCK, MATMULNBITS_BLOCK * bits // 8)


def _session(graph, threads: int):
    import onnx
    import onnxruntime as ort

    model = onnx.helper.make_model(graph, ir_version=10, opset_imports=[onnx.helper.make_opsetid("", 21),
                                                         onnx.helper.make_opsetid("com.microsoft", 1)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # The decode sweep runs one session per layer: 30 pools of spinning threads on 2 cores would measure
    # the spinning, not the kernels.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def matmul_nbits_session(weights: list[tuple[np.ndarray, float]], bits: int, threads: int):
    """One MatMulNBits node per ternary matrix (w_t int8 [N, K], gamma); each node reads input x_<K>.
    Ternary values sit exactly on the grid: q = w + zero point (2^(bits-1), ORT's default), scale = gamma."""
    from onnx import TensorProto, helper, numpy_helper

    inputs, nodes, outputs, inits = {}, [], [], []
    for i, (w_t, gamma) in enumerate(weights):
        n, k = w_t.shape
        if k not in inputs:
            inputs[k] = helper.make_tensor_value_info(f"x_{k}", TensorProto.FLOAT, ["M", k])
        q = (w_t.astype(np.int16) + (1 << (bits - 1))).astype(np.uint8)
        inits.append(numpy_helper.from_array(_pack_nbits(q, bits), f"b{i}"))
        inits.append(numpy_helper.from_array(np.full(n * (k // MATMULNBITS_BLOCK), gamma, np.float32), f"s{i}"))
        nodes.append(helper.make_node("MatMulNBits", [f"x_{k}", f"b{i}", f"s{i}"], [f"y{i}"], domain="com.microsoft",
                                      K=k, N=n, bits=bits, block_size=MATMULNBITS_BLOCK, accuracy_level=4))
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, ["M", n]))
    graph = helper.make_graph(nodes, f"matmulnbits{bits}", list(inputs.values()), outputs, inits)
    return _session(graph, threads)


def matmul_integer_session(weights: list[tuple[np.ndarray, float]], threads: int):
    """One MatMulInteger node per matrix: uint8 activations (zero point 128) x int8 weights [K, N] -> int32.
    Unsigned activations take MLAS's fast U8S8 path on x86; int8 x int8 runs a far slower one."""
    from onnx import TensorProto, helper, numpy_helper

    inputs, nodes, outputs, inits = {}, [], [], []
    for i, (w_t, _) in enumerate(weights):
        n, k = w_t.shape
        if k not in inputs:
            inputs[k] = helper.make_tensor_value_info(f"x_{k}", TensorProto.UINT8, ["M", k])
        inits.append(numpy_helper.from_array(np.ascontiguousarray(w_t.T.astype(np.int8)), f"b{i}"))
        nodes.append(helper.make_node("MatMulInteger", [f"x_{k}", f"b{i}", "zp128"], [f"y{i}"]))
        outputs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.INT32, ["M", n]))
    inits.append(numpy_helper.from_array(np.array(128, np.uint8), "zp128"))
    graph = helper.make_graph(nodes, "matmulinteger", list(inputs.values()), outputs, inits)
    return _session(graph, threads)
