"""Checkpoint families. Each module registers one Family; importing this package registers them all."""

from edgebit.model.families import bitnet, llama_bitnet, olmo_bitnet, onebit_llm  # noqa: F401
