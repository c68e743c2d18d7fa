"""Run in its own process by test_memory.py: open an artifact through the engine's C API with
edgebit_engine_config.max_memory_mb, print {"opened", "error", "memory"} as JSON (memory after a short generation)."""

import ctypes
import json
import sys


class Config(ctypes.Structure):
    _fields_ = [("threads", ctypes.c_int32), ("op_library", ctypes.c_char_p), ("profile_prefix", ctypes.c_char_p),
                ("verify", ctypes.c_int32), ("max_memory_mb", ctypes.c_int64)]


def main(lib_path: str, artifact: str, max_memory_mb: int) -> None:
    lib = ctypes.CDLL(lib_path)
    assert lib.edgebit_engine_abi_version() == 3
    lib.edgebit_engine_config_init.argtypes = [ctypes.POINTER(Config)]
    lib.edgebit_engine_open.restype = ctypes.c_void_p
    lib.edgebit_engine_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(Config), ctypes.c_char_p, ctypes.c_size_t]
    lib.edgebit_engine_generate_ids.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t,
                                                ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.edgebit_engine_memory_json.restype = ctypes.c_char_p
    lib.edgebit_engine_memory_json.argtypes = [ctypes.c_void_p]
    lib.edgebit_engine_close.argtypes = [ctypes.c_void_p]
    cfg = Config()
    lib.edgebit_engine_config_init(ctypes.byref(cfg))
    assert cfg.max_memory_mb == 0  # no limit unless asked
    cfg.max_memory_mb = max_memory_mb
    err = ctypes.create_string_buffer(1024)
    engine = lib.edgebit_engine_open(artifact.encode(), ctypes.byref(cfg), err, len(err))
    out = {"opened": bool(engine), "error": err.value.decode(), "memory": None}
    if engine:
        prompt = (ctypes.c_int32 * 3)(1, 2, 3)
        assert lib.edgebit_engine_generate_ids(engine, prompt, 3, None, None, None) == 0
        out["memory"] = json.loads(lib.edgebit_engine_memory_json(engine))
        lib.edgebit_engine_close(engine)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
