"""The errors the host driver raises, so that a script can tell them apart."""
from __future__ import annotations


class TernError(RuntimeError):
    """Base of every error the Tern host driver raises for a state of the board or build."""


class NotATernBuild(TernError, ValueError):
    """The folder, manifest or overlay is not a Tern accelerator (or not one this driver reads)."""


class ModelMismatch(TernError):
    """The loaded hardware implements a different model than the build folder's manifest."""


class DmaTimeout(TernError):
    """A DMA transfer did not finish in time: the accelerator or the DMA stalled."""


class DmaError(TernError):
    """The AXI DMA reported an error state (a halted channel, a slave or decode error)."""
