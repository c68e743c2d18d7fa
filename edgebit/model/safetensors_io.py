"""Reading and writing the safetensors format, one tensor at a time.

We parse the format ourselves instead of mmap-ing the file with the safetensors package for two reasons:
every offset, dtype and shape in the header is checked against the file before a byte is allocated (a
header that claims a terabyte allocates nothing), and each tensor is read with readinto into memory we
own, so the pages of the file never count towards the process's resident memory while loading.
The writer streams: it writes the header from shapes alone, then each tensor as it is produced, so a
multi-GB checkpoint never exists in memory at once. The output is a plain safetensors file that the
safetensors package and transformers read.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from edgebit.errors import CheckpointError

MAX_HEADER_BYTES = 100 << 20  # the safetensors package's own limit

# safetensors dtype name -> (bytes per element, torch dtype name)
DTYPES: dict[str, tuple[int, str]] = {
    "F64": (8, "float64"),
    "F32": (4, "float32"),
    "F16": (2, "float16"),
    "BF16": (2, "bfloat16"),
    "I64": (8, "int64"),
    "I32": (4, "int32"),
    "I16": (2, "int16"),
    "I8": (1, "int8"),
    "U8": (1, "uint8"),
    "BOOL": (1, "bool"),
}
TORCH_TO_ST = {torch_name: st for st, (_, torch_name) in DTYPES.items()}


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list) -> dict:
    """json.loads keeps the last of duplicate keys silently; a header naming a tensor twice is malformed
    (which of the two spans is the tensor?), as the safetensors package itself rules."""
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


@dataclass(frozen=True)
class TensorInfo:
    name: str
    dtype: str  # safetensors name, e.g. "BF16"
    shape: tuple[int, ...]
    begin: int  # absolute file offset of the first byte
    nbytes: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


class SafetensorsFile:
    """A validated safetensors file whose tensors are read on demand."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            self._file = open(self.path, "rb")
        except OSError as e:
            raise CheckpointError(f"{self.path}: cannot open ({e.strerror})") from None
        self.size = os.fstat(self._file.fileno()).st_size
        self.tensors = self._read_header()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "SafetensorsFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: {what}")

    def _read_header(self) -> dict[str, TensorInfo]:
        head = self._file.read(8)
        if len(head) < 8:
            raise self._fail(f"truncated: {self.size} bytes is shorter than the 8-byte safetensors header length")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > MAX_HEADER_BYTES or header_len > self.size - 8:
            raise self._fail(
                f"header length {header_len} exceeds the file size ({self.size} bytes) or the "
                f"{MAX_HEADER_BYTES >> 20} MiB limit: truncated or not a safetensors file"
            )
        try:
            header = json.loads(self._file.read(header_len).decode("utf-8"), object_pairs_hook=_no_duplicates)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise self._fail("header is not valid UTF-8 JSON: not a safetensors file") from None
        except _DuplicateKey as e:
            raise self._fail(f"tensor '{e.args[0]}' appears more than once in the header") from None
        if not isinstance(header, dict):
            raise self._fail("header is not a JSON object: not a safetensors file")
        data_start = 8 + header_len
        data_len = self.size - data_start
        tensors: dict[str, TensorInfo] = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            tensors[name] = self._check_entry(name, entry, data_start, data_len)
        spans = sorted((t.begin, t.begin + t.nbytes, t.name) for t in tensors.values() if t.nbytes)
        for (_, end, first), (begin, _, second) in zip(spans, spans[1:]):
            if begin < end:
                raise self._fail(f"tensors '{first}' and '{second}' overlap in the data section")
        return tensors

    def _check_entry(self, name: str, entry, data_start: int, data_len: int) -> TensorInfo:
        if not isinstance(entry, dict):
            raise self._fail(f"tensor '{name}': header entry is not an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in DTYPES:
            raise self._fail(f"tensor '{name}': dtype {dtype!r} is not one of {sorted(DTYPES)}")
        if not isinstance(shape, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 40 for d in shape
        ):
            raise self._fail(f"tensor '{name}': shape {shape!r} is not a list of non-negative integers")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        ):
            raise self._fail(f"tensor '{name}': data_offsets {offsets!r} is not a pair of integers")
        begin, end = offsets
        expected = math.prod(shape) * DTYPES[dtype][0]
        if not 0 <= begin <= end:
            raise self._fail(f"tensor '{name}': data_offsets {offsets} are not ordered")
        if end > data_len:
            raise self._fail(
                f"tensor '{name}': data ends at byte {end} but the data section has {data_len} bytes (truncated file)"
            )
        if end - begin != expected:
            raise self._fail(
                f"tensor '{name}': {end - begin} bytes for {dtype}{shape}, expected {expected}"
            )
        return TensorInfo(name, dtype, tuple(shape), data_start + begin, expected)

    def read(self, name: str):
        """The tensor `name` as a torch.Tensor that owns its memory (no mmap)."""
        import torch

        info = self.tensors.get(name)
        if info is None:
            raise self._fail(f"tensor '{name}' is not in this file")
        buf = torch.empty(info.nbytes, dtype=torch.uint8)
        if info.nbytes:
            self._file.seek(info.begin)
            got = self._file.readinto(memoryview(buf.numpy()))
            if got != info.nbytes:
                raise self._fail(f"tensor '{name}': read {got} of {info.nbytes} bytes (truncated file)")
        return buf.view(getattr(torch, DTYPES[info.dtype][1])).reshape(info.shape)


def write_safetensors(path: Path, specs: Iterable[tuple[str, str, tuple[int, ...]]], tensors: Iterator,
                      metadata: dict[str, str] | None = None) -> None:
    """Stream tensors into `path`. `specs` lists (name, torch dtype name, shape) in order; `tensors` yields
    the matching torch tensors one at a time. Written to a temp name and renamed, so a crash leaves no
    half-written file under `path`."""
    import torch

    specs = list(specs)
    header: dict = {"__metadata__": metadata} if metadata else {}
    offset = 0
    for name, dtype_name, shape in specs:
        st = TORCH_TO_ST[dtype_name]
        nbytes = math.prod(shape) * DTYPES[st][0]
        header[name] = {"dtype": st, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)  # the format aligns the data section to 8 bytes
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        for (name, dtype_name, shape), tensor in zip(specs, tensors, strict=True):
            if str(tensor.dtype).removeprefix("torch.") != dtype_name or tuple(tensor.shape) != tuple(shape):
                raise ValueError(f"tensor '{name}': got {tensor.dtype}{tuple(tensor.shape)}, declared {dtype_name}{shape}")
            f.write(memoryview(tensor.contiguous().view(-1).view(torch.uint8).numpy()))
    os.replace(tmp, path)
