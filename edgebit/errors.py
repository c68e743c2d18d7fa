"""Errors a user can act on. The CLI prints their message as one line and exits with code 2."""


class EdgebitError(Exception):
    """Base class: the message names the file, tensor or option and what was expected."""


class CheckpointError(EdgebitError):
    """A checkpoint directory, config.json or safetensors file is missing, malformed or inconsistent."""


class ConfigError(CheckpointError):
    """config.json does not describe a supported BitNet b1.58 model."""


class LayoutError(EdgebitError):
    """A tensor cannot be held in (or read from) edgebit's packed ternary layout."""
