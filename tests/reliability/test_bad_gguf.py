"""Malformed GGUF files through `edgebit inspect`: each ends in one line naming the file and the field, tensor or
key, exit 2, no traceback; the ones that claim terabytes allocate nothing (peak RSS no higher than on the intact
file). Each case is a good file (written by the gguf package from a test checkpoint) re-serialized by the small
GGUF writer below with one thing wrong."""

import os
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

import gguf
import numpy as np
import pytest

Q = "blk.0.attn_q.weight"


@dataclass
class T:
    name: bytes
    ne: list
    type: int
    data: bytes
    offset: int | None = None  # None: next aligned offset
    n_dims: int | None = None


@dataclass
class G:
    kv: list  # (key bytes, value type, value, item type)
    tensors: list
    magic: bytes = b"GGUF"
    version: int = 3
    n_kv: int | None = None
    n_tensors: int | None = None
    alignment: int = 32
    tail: bytes = b""
    cut: int | None = None  # truncate the file to this many bytes
    extra: dict = field(default_factory=dict)


SCALAR = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def _val(vtype, value, item=None) -> bytes:
    if vtype not in SCALAR and vtype not in (8, 9):  # a type id GGUF does not have: some bytes after it
        return struct.pack("<I", value)
    if vtype in SCALAR:
        return struct.pack("<" + SCALAR[vtype], value)
    if vtype == 8:
        raw = value if isinstance(value, bytes) else value.encode()
        return struct.pack("<Q", len(raw)) + raw
    count = value[0] if isinstance(value, tuple) else len(value)  # (claimed count, items) to lie about the count
    items = value[1] if isinstance(value, tuple) else value
    return struct.pack("<IQ", item, count) + b"".join(_val(item, v) for v in items)


def serialize(g: G) -> bytes:
    out = g.magic + struct.pack("<I", g.version)
    out += struct.pack("<QQ", len(g.tensors) if g.n_tensors is None else g.n_tensors,
                       len(g.kv) if g.n_kv is None else g.n_kv)
    for key, vtype, value, item in g.kv:
        out += _val(8, key) + struct.pack("<I", vtype) + _val(vtype, value, item)
    offset, offsets = 0, []  # tensors with an explicit (lying) offset take no room in the data section
    for t in g.tensors:
        offsets.append(offset if t.offset is None else t.offset)
        if t.offset is None:
            offset = -(-(offset + len(t.data)) // g.alignment) * g.alignment
    for t, off in zip(g.tensors, offsets):
        n_dims = len(t.ne) if t.n_dims is None else t.n_dims
        out += _val(8, t.name) + struct.pack("<I", n_dims) + struct.pack(f"<{len(t.ne)}Q", *t.ne)
        out += struct.pack("<IQ", t.type, off)
    out += b"\0" * (-len(out) % g.alignment)
    data = bytearray(offset)
    for t, off in zip(g.tensors, offsets):
        if t.offset is None:
            data[off:off + len(t.data)] = t.data
    out += bytes(data) + g.tail
    return out[: g.cut] if g.cut is not None else out


def parse_good(path) -> G:
    """The good file as a G, through the gguf package's reader."""
    r = gguf.GGUFReader(path)
    kv = []
    for name, f in r.fields.items():
        if name.startswith("GGUF."):
            continue
        vtype = f.types[0]
        item = f.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        value = f.contents()
        kv.append((name.encode(), int(vtype), value, int(item) if item is not None else None))
    tensors = [T(t.name.encode(), [int(d) for d in t.shape], int(t.tensor_type), t.data.tobytes()) for t in r.tensors]
    return G(kv, tensors)


def kv_index(g: G, key: str) -> int:
    return next(i for i, (k, *_rest) in enumerate(g.kv) if k == key.encode())


def tensor(g: G, name: str) -> T:
    return next(t for t in g.tensors if t.name == name.encode())


def set_kv(g: G, key: str, vtype: int, value, item=None):
    g.kv[kv_index(g, key)] = (key.encode(), vtype, value, item)


# -- the cases: each edits the good file and returns fragments the one-line error must contain ----------------------
def _bad_magic(g):
    g.magic = b"GGML"
    return ["bad magic", "not a GGUF file"]


def _version_1(g):
    g.version = 1
    return ["GGUF version 1"]


def _future_version(g):
    g.version = 4
    return ["GGUF version 4"]


def _big_endian(g):
    g.version = 3 << 24
    return ["big-endian"]


def _tensor_count_lies(g):
    g.n_tensors = 1 << 40
    return ["tensor count 1099511627776", "cannot fit"]


def _kv_count_lies(g):
    g.n_kv = 1 << 50
    return ["metadata count", "cannot fit"]


def _string_length_lies(g):
    key, vtype, value, item = g.kv[0]
    g.kv[0] = (key, 8, b"", None)
    g.tail = b""
    g.extra["patch_len"] = True  # patched in bytes below
    return ["metadata", "length", "limit"]


def _array_count_lies(g):
    key = "tokenizer.ggml.tokens"
    _, vtype, value, item = g.kv[kv_index(g, key)]
    set_kv(g, key, vtype, (1 << 40, value[:3]), item)
    return [key, "cannot fit"]


def _unknown_value_type(g):
    key, _vtype, _value, _item = g.kv[1]
    g.kv[1] = (key, 99, 0, None)
    return ["unknown value type 99"]


def _array_of_arrays(g):
    set_kv(g, "tokenizer.ggml.token_type", 9, [], 9)
    return ["arrays of arrays"]


def _duplicate_key(g):
    g.kv.append(g.kv[0])
    return ["appears more than once"]


def _non_utf8_key(g):
    g.kv[0] = (b"general.\xff\xfe", *g.kv[0][1:])
    return ["not UTF-8"]


def _bad_alignment(g):
    g.kv.append((b"general.alignment", 4, 3, None))
    return ["general.alignment", "power of two"]


def _unknown_ggml_type(g):
    tensor(g, Q).type = 99
    return [Q, "unknown ggml type 99"]


def _offset_past_eof(g):
    tensor(g, Q).offset = 1 << 40
    return [Q, "truncated file or lying offset"]


def _truncated_data(g):
    g.cut = -1000
    return ["truncated file or lying offset"]


def _truncated_header(g):
    g.extra["cut_in_infos"] = True  # cut inside the tensor infos (make_bad finds where)
    return ["runs past the end of the file"]


def _overlapping(g):
    tensor(g, "blk.0.attn_k.weight").offset = 0
    return ["overlap"]


def _misaligned_offset(g):
    tensor(g, Q).offset = 3
    return [Q, "multiple of the alignment"]


def _huge_dims(g):
    tensor(g, Q).ne = [1 << 30, 1 << 30]
    return [Q, "more than 2^40"]


def _zero_dim(g):
    tensor(g, Q).ne = [256, 0]
    return [Q, "dimension 0"]


def _five_dims(g):
    tensor(g, Q).ne = [1, 1, 1, 1, 256]
    return ["n_dims 5"]


def _duplicate_tensor(g):
    g.tensors.append(T(Q.encode(), tensor(g, Q).ne, tensor(g, Q).type, tensor(g, Q).data))
    return [Q, "more than once"]


def _type_lies_about_size(g):
    tensor(g, "token_embd.weight").type = int(gguf.GGMLQuantizationType.F32)  # F16 bytes, F32 claimed
    return ["token_embd.weight"]


def _not_whole_blocks(g):
    tensor(g, Q).ne = [200, 256]
    return [Q, "whole number of TQ2_0 blocks"]


def _wrong_shape(g):
    t = tensor(g, Q)
    t.ne = list(reversed(t.ne)) if t.ne[0] != t.ne[1] else [t.ne[0] * 2, t.ne[1] // 2]
    return [Q, "expected"]


def _missing_tensor(g):
    g.tensors.remove(tensor(g, Q))
    return [Q, "missing"]


def _unexpected_tensor(g):
    g.tensors.append(T(b"blk.7.bonus.weight", [4], 0, b"\0" * 16))
    return ["blk.7.bonus.weight", "unexpected"]


def _unknown_architecture(g):
    set_kv(g, "general.architecture", 8, "gpt2")
    return ["general.architecture", "'gpt2'"]


def _missing_key(g):
    del g.kv[kv_index(g, "bitnet-25.block_count")]
    return ["bitnet-25.block_count", "missing"]


def _key_wrong_type(g):
    set_kv(g, "bitnet-25.embedding_length", 8, "256")
    return ["bitnet-25.embedding_length", "integer"]


def _code_three(g):
    t = tensor(g, Q)
    data = bytearray(t.data)
    data[5] = 0xFF
    t.data = bytes(data)
    return [Q, "code 3"]


def _block_scales_differ(g):
    t = tensor(g, Q)
    blocks = np.frombuffer(t.data, dtype=np.uint8).reshape(-1, 66).copy()
    blocks[1, 64:] = np.array([0.5], dtype=np.float16).view(np.uint8)
    blocks[2, 64:] = np.array([0.25], dtype=np.float16).view(np.uint8)
    t.data = blocks.tobytes()
    return [Q, "different scales"]


def _scale_not_finite(g):
    tensor(g, "blk.0.attn_q.scale").data = np.array([np.nan], dtype=np.float32).tobytes()
    return ["blk.0.attn_q.scale", "positive finite"]


def _rope_scaling(g):
    set_kv(g, "bitnet-25.rope.scaling.type", 8, "yarn")
    return ["rope.scaling.type", "yarn"]


CASES = {f.__name__.lstrip("_"): f for f in [
    _bad_magic, _version_1, _future_version, _big_endian, _tensor_count_lies, _kv_count_lies, _string_length_lies,
    _array_count_lies, _unknown_value_type, _array_of_arrays, _duplicate_key, _non_utf8_key, _bad_alignment,
    _unknown_ggml_type, _offset_past_eof, _truncated_data, _truncated_header, _overlapping, _misaligned_offset,
    _huge_dims, _zero_dim, _five_dims, _duplicate_tensor, _type_lies_about_size, _not_whole_blocks, _wrong_shape,
    _missing_tensor, _unexpected_tensor, _unknown_architecture, _missing_key, _key_wrong_type, _code_three,
    _block_scales_differ, _scale_not_finite, _rope_scaling,
]}


@pytest.fixture(scope="module")
def good_gguf(gguf_checkpoint, tmp_path_factory):
    from gguf_files import write_gguf

    return write_gguf(gguf_checkpoint("bitnet", "packed"), tmp_path_factory.mktemp("good") / "good.gguf", "TQ2_0",
                      scales="tensor")


def make_bad(good, case, path):
    g = parse_good(good)
    expected = CASES[case](g)
    data = serialize(g)
    if g.extra.get("patch_len"):  # the first key's string value: claim 2^50 bytes
        key = g.kv[0][0]
        at = 24 + 8 + len(key) + 4
        data = data[:at] + struct.pack("<Q", 1 << 50) + data[at + 8:]
    if g.extra.get("cut_in_infos"):
        from edgebit.model.gguf.reader import GGUFFile

        with GGUFFile(good) as f:
            data = data[: f.data_start - 40]
    path.write_bytes(data)
    return expected


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBIT_CACHE_DIR", str(tmp_path / "cache"))


def test_the_good_file_reads(good_gguf, tmp_path, cli):
    copy = tmp_path / "good.gguf"
    copy.write_bytes(serialize(parse_good(good_gguf)))  # the test's own writer gives a valid file
    assert cli("inspect", copy).returncode == 0


@pytest.mark.parametrize("case", CASES)
def test_bad_gguf_is_one_clear_line(case, good_gguf, tmp_path, cli):
    bad = tmp_path / "bad.gguf"
    expected = make_bad(good_gguf, case, bad)
    result = cli("inspect", bad)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bad.gguf" in lines[0], lines[0]
    for fragment in expected:
        assert fragment in lines[0], (fragment, lines[0])


def peak_rss_mib(*args) -> tuple[int, float]:
    proc = subprocess.Popen([sys.executable, "-m", "edgebit", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    _, status, usage = os.wait4(proc.pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024


@pytest.mark.parametrize("case", ["tensor_count_lies", "kv_count_lies", "string_length_lies", "array_count_lies",
                                  "huge_dims", "offset_past_eof"])
def test_huge_claims_allocate_nothing(case, good_gguf, tmp_path):
    bad = tmp_path / "bad.gguf"
    make_bad(good_gguf, case, bad)
    code_good, rss_good = peak_rss_mib("inspect", good_gguf)
    code_bad, rss_bad = peak_rss_mib("inspect", bad)
    assert code_good == 0 and code_bad == 2
    print(f"{case}: peak RSS {rss_bad:.0f} MiB vs {rss_good:.0f} MiB on the intact file")
    assert rss_bad < rss_good + 64, (rss_bad, rss_good)
