"""The one error type the compiler raises for a model it cannot compile exactly."""
from __future__ import annotations


class ModelError(ValueError):
    """A checkpoint that gen cannot turn into an exact integer network.

    The message names the layer and says what is wrong (and, for unsupported layer types,
    what is supported); the CLI prints it as one line and exits with code 2.
    """


def where(name: str | None) -> str:
    return f"layer {name!r}: " if name else ""
