"""The GGUF container, parsed strictly: every count, length, type, shape and offset is checked against the file
before anything is allocated for it, so a truncated or lying file ends in one line naming the field.

Why not the gguf package's GGUFReader: it memory-maps the file and trusts its counts (an array claiming 2^60
elements of a type past the end of the file loops without end), it stops at a ggml type it does not know (bitnet.cpp's
I2_S, type 36), and it checks neither tensor spans against the file nor overlaps. The gguf package still supplies
the format's constants (type ids, block sizes) and the block codecs; the tests read our exports with GGUFReader.

Format (GGUF v2/v3, little-endian; ggml's docs/gguf.md): magic "GGUF", u32 version, u64 tensor count, u64 metadata
count; metadata entries (string key, u32 value type, value); tensor infos (string name, u32 n_dims, u64 ne[n_dims],
u32 ggml type, u64 offset into the data section); the data section starts at the next multiple of
`general.alignment` (default 32). Strings are u64 length + UTF-8 bytes; arrays are u32 item type, u64 count, items.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from edgebit.errors import CheckpointError

MAGIC = b"GGUF"
VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_ALIGNMENT = 1 << 16
MAX_TENSORS = 1 << 16  # a 405B llama has ~1.1k tensors
MAX_KV = 1 << 16
MAX_STRING = 64 << 20  # one metadata string (chat templates are kilobytes)
MAX_ARRAY = 1 << 24  # items in one metadata array (vocabularies are ~10^5)
MAX_NAME = 256
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_ELEMENTS = 1 << 40
I2_S = 36  # bitnet.cpp's type id (its gguf-py fork: GGMLQuantizationType.I2_S = 36); unused by upstream ggml

# value type id -> (struct format, name); 8 string and 9 array are handled apart
SCALARS = {0: ("B", "u8"), 1: ("b", "i8"), 2: ("H", "u16"), 3: ("h", "i16"), 4: ("I", "u32"), 5: ("i", "i32"),
           6: ("f", "f32"), 7: ("?", "bool"), 10: ("Q", "u64"), 11: ("q", "i64"), 12: ("d", "f64")}
STRING, ARRAY = 8, 9


@dataclass(frozen=True)
class GGUFArray:
    """A metadata array, validated but not decoded: decoding a 128k-token vocabulary costs time and memory only
    for the keys that are used."""
    item_type: int
    count: int
    offset: int  # absolute offset of the first item
    nbytes: int


@dataclass(frozen=True)
class TensorInfo:
    name: str
    ggml_type: int
    type_name: str
    ne: tuple[int, ...]  # ggml order: ne[0] is the contiguous (innermost) dimension
    begin: int  # absolute file offset
    nbytes: int

    @property
    def shape(self) -> tuple[int, ...]:
        """numpy / torch order (outermost first): an [N, K] matrix has ne = (K, N)."""
        return tuple(reversed(self.ne))

    @property
    def numel(self) -> int:
        n = 1
        for d in self.ne:
            n *= d
        return n


def _f32_shortest(value: float) -> float:
    import numpy as np

    return float(str(np.float32(value)))


def type_sizes() -> dict[int, tuple[str, int, int]]:
    """ggml type id -> (name, elements per block, bytes per block), from the gguf package, plus I2_S."""
    from gguf import GGML_QUANT_SIZES

    sizes = {int(t): (t.name, block, size) for t, (block, size) in GGML_QUANT_SIZES.items()}
    sizes[I2_S] = ("I2_S", 1, 0)  # sized apart: see tensor_nbytes
    return sizes


def tensor_nbytes(ggml_type: int, numel: int, ne0: int, sizes) -> int | None:
    """Bytes of a tensor's data, None if ne[0] is not a whole number of blocks."""
    if ggml_type == I2_S:
        # bitnet.cpp: 2 bits a weight, then one fp32 scale padded to 32 bytes (quantize_i2_s returns n/4 + 32)
        return numel // 4 + 32 if numel % 128 == 0 else None
    _, block, size = sizes[ggml_type]
    if ne0 % block:
        return None
    return numel // block * size


class GGUFFile:
    """A validated GGUF file: `kv` (key -> value, arrays as GGUFArray), `tensors` (name -> TensorInfo), and
    `read(name)`, which reads one tensor's bytes into memory it owns."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self._file = open(self.path, "rb")
        except OSError as e:
            raise CheckpointError(f"{self.path}: cannot open ({e.strerror})") from None
        try:
            self.size = os.fstat(self._file.fileno()).st_size
            if self.size < 24:
                raise self._fail(f"truncated: {self.size} bytes is shorter than the 24-byte GGUF header")
            self._mm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            self._parse()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if getattr(self, "_mm", None) is not None:
            self._mm.close()
            self._mm = None
        self._file.close()

    def __enter__(self) -> "GGUFFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: {what}")

    # -- primitive reads, each bounds-checked against the file ------------------------------------------------
    def _need(self, pos: int, n: int, what: str) -> None:
        if n < 0 or pos + n > self.size:
            raise self._fail(f"{what} at byte {pos} runs past the end of the file ({self.size} bytes): truncated "
                             "or not a GGUF file")

    def _unpack(self, fmt: str, pos: int, what: str):
        n = struct.calcsize("<" + fmt)
        self._need(pos, n, what)
        return struct.unpack_from("<" + fmt, self._mm, pos)[0], pos + n

    def _string(self, pos: int, what: str, limit: int = MAX_STRING) -> tuple[str, int]:
        length, pos = self._unpack("Q", pos, what + " length")
        if length > limit:
            raise self._fail(f"{what}: length {length} exceeds the {limit}-byte limit")
        self._need(pos, length, what)
        try:
            return self._mm[pos:pos + length].decode("utf-8"), pos + length
        except UnicodeDecodeError:
            raise self._fail(f"{what} at byte {pos} is not UTF-8") from None

    def _skip_string(self, pos: int, what: str) -> int:
        length, pos = self._unpack("Q", pos, what + " length")
        if length > MAX_STRING:
            raise self._fail(f"{what}: length {length} exceeds the {MAX_STRING}-byte limit")
        self._need(pos, length, what)
        return pos + length

    # -- structure ---------------------------------------------------------------------------------------------
    def _parse(self) -> None:
        if self._mm[:4] != MAGIC:
            raise self._fail(f"bad magic {bytes(self._mm[:4])!r}: not a GGUF file (expected b'GGUF')")
        version, pos = self._unpack("I", 4, "version")
        if version & 0xFFFF == 0 and version:
            raise self._fail("big-endian GGUF (version bytes swapped); edgebit reads little-endian GGUF")
        if version not in VERSIONS:
            raise self._fail(f"GGUF version {version} is not supported (2 or 3)")
        self.version = version
        n_tensors, pos = self._unpack("Q", pos, "tensor count")
        n_kv, pos = self._unpack("Q", pos, "metadata count")
        # Each metadata entry takes >= 13 bytes (key length, type, one byte) and each tensor info >= 24: a count
        # that cannot fit in the rest of the file is refused before any loop or allocation.
        if n_kv > MAX_KV or n_kv * 13 > self.size - pos:
            raise self._fail(f"metadata count {n_kv} cannot fit in a {self.size}-byte file (or exceeds {MAX_KV})")
        if n_tensors > MAX_TENSORS or n_tensors * 24 > self.size - pos:
            raise self._fail(f"tensor count {n_tensors} cannot fit in a {self.size}-byte file (or exceeds "
                             f"{MAX_TENSORS})")
        self.kv: dict = {}
        for i in range(n_kv):
            key, pos = self._string(pos, f"metadata key #{i}", MAX_NAME)
            if key in self.kv:
                raise self._fail(f"metadata key '{key}' appears more than once")
            vtype, pos = self._unpack("I", pos, f"metadata '{key}' type")
            self.kv[key], pos = self._value(vtype, pos, f"metadata '{key}'")
        self.alignment = self._alignment()
        infos = [self._tensor_info(pos_i) for pos_i in self._tensor_positions(pos, n_tensors)]
        end = self._info_end
        self.data_start = -(-end // self.alignment) * self.alignment
        self.tensors: dict[str, TensorInfo] = {}
        sizes = type_sizes()
        for name, ne, ggml_type, offset in infos:
            if name in self.tensors:
                raise self._fail(f"tensor '{name}' appears more than once")
            self.tensors[name] = self._check_tensor(name, ne, ggml_type, offset, sizes)
        spans = sorted((t.begin, t.begin + t.nbytes, t.name) for t in self.tensors.values())
        for (_, end_a, first), (begin_b, _, second) in zip(spans, spans[1:]):
            if begin_b < end_a:
                raise self._fail(f"tensors '{first}' and '{second}' overlap in the data section")

    def _value(self, vtype: int, pos: int, what: str, in_array: bool = False):
        if vtype == 6:
            # An f32 holds 1e-5 as 9.99999975e-06; the shortest decimal that rounds to the same f32 is what the
            # publisher wrote (config.json's number), and equal to it in the fp32 arithmetic that uses it.
            value, pos = self._unpack("f", pos, what)
            return _f32_shortest(value), pos
        if vtype in SCALARS:
            return self._unpack(SCALARS[vtype][0], pos, what)
        if vtype == STRING:
            return self._string(pos, what)
        if vtype == ARRAY and not in_array:
            item_type, pos = self._unpack("I", pos, what + " item type")
            count, pos = self._unpack("Q", pos, what + " item count")
            if item_type == ARRAY:
                raise self._fail(f"{what}: arrays of arrays are not supported")
            if item_type not in SCALARS and item_type != STRING:
                raise self._fail(f"{what}: unknown array item type {item_type}")
            min_item = 8 if item_type == STRING else struct.calcsize("<" + SCALARS[item_type][0])
            if count > MAX_ARRAY or count * min_item > self.size - pos:
                raise self._fail(f"{what}: {count} items cannot fit in the rest of the file (or exceed {MAX_ARRAY})")
            start = pos
            if item_type == STRING:
                for j in range(count):
                    pos = self._skip_string(pos, f"{what}[{j}]")
            else:
                pos += count * min_item
            return GGUFArray(item_type, count, start, pos - start), pos
        raise self._fail(f"{what}: unknown value type {vtype}")

    def _alignment(self) -> int:
        value = self.kv.get("general.alignment", DEFAULT_ALIGNMENT)
        if isinstance(value, (GGUFArray, str, float)) or not 0 < int(value) <= MAX_ALIGNMENT \
                or int(value) & (int(value) - 1):
            raise self._fail(f"metadata 'general.alignment': expected a power of two up to {MAX_ALIGNMENT}, "
                             f"got {value!r}")
        return int(value)

    def _tensor_positions(self, pos: int, count: int):
        """Yields the start of each tensor info once all of it is known to lie inside the file."""
        for i in range(count):
            start = pos
            _, pos = self._string(pos, f"tensor #{i} name", MAX_NAME)
            n_dims, pos = self._unpack("I", pos, f"tensor #{i} n_dims")
            if not 1 <= n_dims <= MAX_DIMS:
                raise self._fail(f"tensor #{i}: n_dims {n_dims} is outside 1..{MAX_DIMS}")
            self._need(pos, 8 * n_dims + 12, f"tensor #{i} info")
            pos += 8 * n_dims + 12
            yield start
        self._info_end = pos

    def _tensor_info(self, pos: int):
        name, pos = self._string(pos, "tensor name", MAX_NAME)
        n_dims, pos = self._unpack("I", pos, f"tensor '{name}' n_dims")
        ne = struct.unpack_from(f"<{n_dims}Q", self._mm, pos)
        pos += 8 * n_dims
        ggml_type, offset = struct.unpack_from("<IQ", self._mm, pos)
        return name, ne, ggml_type, offset

    def _check_tensor(self, name: str, ne, ggml_type: int, offset: int, sizes) -> TensorInfo:
        where = f"tensor '{name}'"
        numel = 1
        for d in ne:
            if not 1 <= d <= MAX_ELEMENTS:
                raise self._fail(f"{where}: dimension {d} in {list(ne)} is outside 1..2^40")
            numel *= d
        if numel > MAX_ELEMENTS:
            raise self._fail(f"{where}: {list(ne)} holds {numel} elements, more than 2^40")
        if ggml_type not in sizes:
            raise self._fail(f"{where}: unknown ggml type {ggml_type}")
        type_name = sizes[ggml_type][0]
        nbytes = tensor_nbytes(ggml_type, numel, ne[0], sizes)
        if nbytes is None:
            raise self._fail(f"{where}: {type_name}{list(ne)}: ne[0] is not a whole number of {type_name} blocks")
        if offset % self.alignment:
            raise self._fail(f"{where}: data offset {offset} is not a multiple of the alignment {self.alignment}")
        begin = self.data_start + offset
        if begin + nbytes > self.size:
            raise self._fail(f"{where}: {type_name}{list(ne)} needs bytes {begin}..{begin + nbytes} but the file "
                             f"has {self.size} (truncated file or lying offset)")
        return TensorInfo(name, ggml_type, type_name, tuple(ne), begin, nbytes)

    # -- values ------------------------------------------------------------------------------------------------
    def array(self, key: str):
        """The metadata array KEY decoded: a list of str for string arrays, a numpy array otherwise."""
        import numpy as np

        ref = self.kv[key]
        if ref.item_type == STRING:
            out, pos = [], ref.offset
            for j in range(ref.count):
                s, pos = self._string(pos, f"metadata '{key}'[{j}]")
                out.append(s)
            return out
        dtype = np.dtype("<" + SCALARS[ref.item_type][0])
        return np.frombuffer(self._mm, dtype=dtype, count=ref.count, offset=ref.offset).copy()

    def read(self, name: str):
        """The raw bytes of tensor NAME as a uint8 numpy array that owns its memory (read, not mapped)."""
        import numpy as np

        info = self.tensors[name]
        buf = np.empty(info.nbytes, dtype=np.uint8)
        self._file.seek(info.begin)
        got = self._file.readinto(memoryview(buf))
        if got != info.nbytes:
            raise self._fail(f"tensor '{name}': read {got} of {info.nbytes} bytes (file truncated while open)")
        return buf
