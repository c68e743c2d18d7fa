"""Run in its own process by test_runner_text.py: load libedgebit_engine.so with ctypes (nothing else of the
runtimes in this process), generate from ids with a callback, print each run's pieces (as byte lists) and ids."""

import ctypes
import json
import sys

CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_char), ctypes.c_size_t, ctypes.c_int32, ctypes.c_void_p)


class Sampling(ctypes.Structure):
    _fields_ = [("max_new_tokens", ctypes.c_int32), ("temperature", ctypes.c_float), ("top_k", ctypes.c_int32),
                ("top_p", ctypes.c_float), ("repetition_penalty", ctypes.c_float), ("seed", ctypes.c_uint64),
                ("ignore_eos", ctypes.c_int32)]


def main(lib_path: str, artifact: str) -> None:
    lib = ctypes.CDLL(lib_path)
    lib.edgebit_engine_open.restype = ctypes.c_void_p
    lib.edgebit_engine_open.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.edgebit_engine_generate_ids.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int32), ctypes.c_size_t,
                                                ctypes.POINTER(Sampling), CB, ctypes.c_void_p]
    lib.edgebit_engine_last_error.restype = ctypes.c_char_p
    lib.edgebit_engine_last_error.argtypes = [ctypes.c_void_p]
    lib.edgebit_sampling_init.argtypes = [ctypes.POINTER(Sampling)]
    lib.edgebit_engine_close.argtypes = [ctypes.c_void_p]
    err = ctypes.create_string_buffer(512)
    engine = lib.edgebit_engine_open(artifact.encode(), None, err, len(err))
    if not engine:
        sys.exit(f"open: {err.value.decode()}")
    runs = []
    for seed in range(6):
        pieces, ids = [], []

        def on_token(text, n, token, _user):
            pieces.append(list(ctypes.string_at(text, n)))
            if token >= 0:
                ids.append(token)
            return 0

        s = Sampling()
        lib.edgebit_sampling_init(ctypes.byref(s))
        s.max_new_tokens, s.temperature, s.seed = 120, 1.5, seed
        prompt = (ctypes.c_int32 * 3)(256, 0xE6, 0x97)
        if lib.edgebit_engine_generate_ids(engine, prompt, 3, ctypes.byref(s), CB(on_token), None) != 0:
            sys.exit(f"generate: {lib.edgebit_engine_last_error(engine).decode()}")
        runs.append({"pieces": pieces, "ids": ids})
    lib.edgebit_engine_close(engine)
    print(json.dumps(runs))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
