"""edgebit: BitNet b1.58 ternary LLMs on phones and boards.

Kept import-light on purpose: `edgebit --help` must not pull in torch, onnx or executorch.
"""

__version__ = "0.1.0"
