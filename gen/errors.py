"""The error types the compiler raises for a model or a plan it cannot compile exactly."""
from __future__ import annotations


class ModelError(ValueError):
    """A checkpoint that gen cannot turn into an exact integer network.

    The message names the layer and says what is wrong (and, for unsupported layer types,
    what is supported); the CLI prints it as one line and exits with code 2.
    """


class PlanError(ValueError):
    """A folding setting or a network that the hardware cannot take (message is one line)."""


class FactoryError(RuntimeError):
    """An engine's emit factory and its hw component disagree on the constructor's
    arguments (an unknown or a missing one): a bug in gen/engines/ or hw/, not in the
    user's model, so the CLI reports it as a tool failure."""


def where(name: str | None) -> str:
    return f"layer {name!r}: " if name else ""
