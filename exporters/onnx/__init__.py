"""The ONNX export target: registers "onnx" in the exporters registry on import."""

from . import export  # noqa: F401
