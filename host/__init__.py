"""Tern's host side: run a built accelerator from Python on a PYNQ board.

    from host import Accelerator
    acc = Accelerator("tern_build")        # the build (or deployment) folder
    classes = acc.predict(images)          # uint8 [N, C, H, W] -> int64 [N]

Needs numpy, and pynq on the board (imported only when a bitstream is loaded); never torch,
amaranth, cocotb or gen. Here, sim.board.SimulatedBoard stands in for the board.
"""
from .driver import Accelerator, RunStats
from .errors import DmaError, DmaTimeout, ModelMismatch, NotATernBuild, TernError
from .manifest import BuildInfo, load_manifest

__all__ = ["Accelerator", "RunStats", "BuildInfo", "load_manifest", "TernError", "NotATernBuild",
           "ModelMismatch", "DmaTimeout", "DmaError"]
