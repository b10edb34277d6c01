"""The errors the host driver raises, so that a script can tell them apart."""
from __future__ import annotations

from formats.errors import NotATernBuild, TernError

__all__ = ["TernError", "NotATernBuild", "ModelMismatch", "DmaTimeout", "DmaError"]


class ModelMismatch(TernError):
    """The loaded hardware implements a different model than the build folder's manifest."""


class DmaTimeout(TernError):
    """A DMA transfer did not finish in time: the accelerator or the DMA stalled."""


class DmaError(TernError):
    """The AXI DMA reported an error state (a halted channel, a slave or decode error)."""
