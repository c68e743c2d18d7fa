"""The ExecuTorch export target: registers "executorch" in the exporters registry on import."""

from . import export  # noqa: F401
