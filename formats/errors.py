"""The errors of reading a build: the host driver raises them too (host.errors re-exports
them), so that a script catches one class whether the board or the simulator read the build."""
from __future__ import annotations


class TernError(RuntimeError):
    """Base of every error the Tern host driver raises for a state of the board or build."""


class NotATernBuild(TernError, ValueError):
    """The folder, manifest or overlay is not a Tern accelerator (or not one this driver reads)."""
