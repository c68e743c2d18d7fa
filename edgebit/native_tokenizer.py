"""The engine's C++ tokenizer (runtime_ops/engine, libedgebit_tokenizer.so) from Python through ctypes: what the
device runs, held to `tokenizers` in the tests and timed against it by `edgebit bench tokenizer`."""

from __future__ import annotations

import ctypes
from pathlib import Path

from edgebit.errors import EdgebitError
from edgebit.ops.libpath import find_library

_lib = None


def _library():
    global _lib
    if _lib is None:
        lib = ctypes.CDLL(str(find_library("libedgebit_tokenizer.so", "reinstall edgebit (pip install .) to build it")))
        lib.edgebit_tokenizer_open.restype = ctypes.c_void_p
        lib.edgebit_tokenizer_open.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.edgebit_tokenizer_close.argtypes = [ctypes.c_void_p]
        lib.edgebit_tokenizer_last_error.restype = ctypes.c_char_p
        lib.edgebit_tokenizer_last_error.argtypes = [ctypes.c_void_p]
        lib.edgebit_tokenizer_encode.restype = ctypes.c_int64
        lib.edgebit_tokenizer_encode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int,
                                                 ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t]
        lib.edgebit_tokenizer_decode.restype = ctypes.c_int64
        lib.edgebit_tokenizer_decode.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t,
                                                 ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
        _lib = lib
    return _lib


class NativeTokenizer:
    def __init__(self, tokenizer_json: str | Path):
        lib = _library()
        err = ctypes.create_string_buffer(1024)
        self._h = lib.edgebit_tokenizer_open(str(tokenizer_json).encode(), err, len(err))
        if not self._h:
            raise EdgebitError(err.value.decode(errors="replace"))

    def __del__(self):
        if getattr(self, "_h", None):
            _library().edgebit_tokenizer_close(self._h)
            self._h = None

    def _error(self) -> str:
        return _library().edgebit_tokenizer_last_error(self._h).decode(errors="replace")

    def encode_bytes(self, data: bytes, add_special: bool = True) -> list[int]:
        lib = _library()
        cap = len(data) + 16  # byte-level BPE: at most one token per byte, plus the template's specials
        buf = (ctypes.c_int32 * cap)()
        n = lib.edgebit_tokenizer_encode(self._h, data, len(data), int(add_special), buf, cap)
        if n < 0:
            raise EdgebitError(self._error())
        if n > cap:
            buf = (ctypes.c_int32 * n)()
            n = lib.edgebit_tokenizer_encode(self._h, data, len(data), int(add_special), buf, n)
        return list(buf[:n])

    def encode(self, text: str, add_special: bool = True) -> list[int]:
        return self.encode_bytes(text.encode("utf-8"), add_special)

    def decode(self, ids: list[int], skip_special: bool = True) -> str:
        lib = _library()
        arr = (ctypes.c_int32 * len(ids))(*ids)
        n = lib.edgebit_tokenizer_decode(self._h, arr, len(ids), int(skip_special), None, 0)
        if n < 0:
            raise EdgebitError(self._error())
        out = ctypes.create_string_buffer(max(n, 1))
        lib.edgebit_tokenizer_decode(self._h, arr, len(ids), int(skip_special), out, n)
        return out.raw[:n].decode("utf-8")
