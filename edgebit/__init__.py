"""edgebit: BitNet b1.58 ternary LLMs on phones and boards.

The Python API (edgebit/api.py) is reachable from here: `edgebit.export_onnx(...)`, `edgebit.verify(...)`,
`edgebit.Head.INT8`, ... Kept import-light on purpose: importing edgebit (or `edgebit --help`) pulls in neither
torch, onnx nor executorch; each API function imports what it needs when called.
"""

__version__ = "0.1.0"

_API = ("Head", "OnnxOps", "PteOps", "GgufType", "Target", "Runtime", "Inspection", "RunResult",
        "resolve_model", "inspect", "check_plausibility", "export_onnx", "export_executorch", "export_gguf",
        "verify", "run", "profile", "bundle", "quickstart", "doctor")


def __getattr__(name: str):
    if name in _API:
        from edgebit import api

        return getattr(api, name)
    raise AttributeError(f"module 'edgebit' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
