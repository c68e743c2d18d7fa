"""The GGUF export target (llama.cpp's format): registers "gguf" in the exporters registry on import."""

from . import export  # noqa: F401
