"""A thin helper over onnx.helper for building graphs node by node with unique names."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 21
IR_VERSION = 10  # onnx 1.23 defaults to IR 14, which onnxruntime 1.31 refuses (it reads up to 13)
EDGEBIT_DOMAIN = "edgebit"
MS_DOMAIN = "com.microsoft"


EXTERNAL_MIN_BYTES = 1024
ALIGN = 64
# Tensors of at least PAGE_ALIGN_MIN_BYTES start on a 64 KiB boundary of the data file (any page size: 4 KiB, the
# 16 KiB of newer Android and Apple devices, Windows' 64 KiB mapping granularity), so ONNX Runtime maps them from
# the file (mmap) rather than reading them into its own memory. At most 64 KiB of padding per such tensor.
PAGE_ALIGN = 1 << 16
PAGE_ALIGN_MIN_BYTES = 1 << 20


class GraphBuilder:
    """With `data_path`, every initializer of EXTERNAL_MIN_BYTES or more is streamed to that file as it is
    added (ONNX external data) instead of being held in the protobuf: a multi-GB model never exists twice
    in memory, the model may pass protobuf's 2 GB limit, and ONNX Runtime maps the weights from the file
    instead of copying them out of a parsed protobuf (docs/performance.md, memory)."""

    def __init__(self, data_path=None):
        self.data_path = data_path
        self._data = open(data_path, "wb") if data_path is not None else None
        self._data_bytes = 0
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[onnx.ValueInfoProto] = []
        self._count = 0
        self._consts: dict[tuple, str] = {}

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, n_out: int = 1,
           domain: str = "", **attrs) -> str | list[str]:
        outs = [self.fresh(hint or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.fresh(op_type), domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs

    def initializer(self, name: str, array: np.ndarray) -> str:
        array = np.ascontiguousarray(array)
        if self._data is None or array.nbytes < EXTERNAL_MIN_BYTES:
            self.initializers.append(numpy_helper.from_array(array, name))
            return name
        align = PAGE_ALIGN if array.nbytes >= PAGE_ALIGN_MIN_BYTES else ALIGN
        self._data.write(b"\0" * (-self._data.tell() % align))
        offset = self._data.tell()
        self._data.write(memoryview(array).cast("B"))
        self._data_bytes = self._data.tell()
        tensor = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(array.dtype),
                             dims=array.shape, data_location=TensorProto.EXTERNAL)
        for key, value in (("location", self.data_path.name), ("offset", str(offset)), ("length", str(array.nbytes))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        self.initializers.append(tensor)
        return name

    def external_bytes(self) -> int:
        return self._data_bytes

    def const(self, value, dtype=np.int64) -> str:
        """A small constant, deduplicated by value."""
        array = np.asarray(value, dtype=dtype)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:
            self._consts[key] = self.initializer(self.fresh("const"), array)
        return self._consts[key]

    def input(self, name: str, elem_type: int, shape: list) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def output(self, value: str, name: str, elem_type: int, shape: list) -> str:
        """Make `value` the graph output `name` and return that name, which later nodes must use instead.
        The node that computes it writes the output directly: an Identity would copy it (the KV cache, every
        step) and cost a node dispatch."""
        producer = next((n for n in reversed(self.nodes) if value in n.output), None)
        if producer is None or any(value in n.input for n in self.nodes):
            self.nodes.append(helper.make_node("Identity", [value], [name], name=self.fresh("out")))
        else:
            producer.output[list(producer.output).index(value)] = name
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, shape))
        return name

    def model(self, name: str, uses_ms_domain: bool) -> onnx.ModelProto:
        if self._data is not None:
            self._data.close()
        graph = helper.make_graph(self.nodes, name, self.inputs, self.outputs, self.initializers)
        opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid(EDGEBIT_DOMAIN, 1)]
        if uses_ms_domain:
            opsets.append(helper.make_opsetid(MS_DOMAIN, 1))
        return helper.make_model(graph, ir_version=IR_VERSION, opset_imports=opsets, producer_name="edgebit")


FLOAT = TensorProto.FLOAT
FLOAT16 = TensorProto.FLOAT16
INT8 = TensorProto.INT8
INT64 = TensorProto.INT64
