"""Tern's host side: run a built accelerator from Python on a PYNQ board.

    from host import Accelerator
    acc = Accelerator("tern_build")        # the build (or deployment) folder
    classes = acc.predict(images)          # uint8 [N, C, H, W] -> int64 [N]

Needs numpy, and pynq on the board (imported only when a bitstream is loaded), and Tern's
`formats` package (the manifest, register map and held-out image readers, shipped beside
host/); never torch, amaranth, cocotb, gen, sim or snn. In the repository,
sim.board.SimulatedBoard stands in for the board (`python -m sim infer`).
"""
from formats.manifest import BuildInfo, load_manifest

from .driver import Accelerator, RunStats
from .errors import DmaError, DmaTimeout, ModelMismatch, NotATernBuild, TernError

__all__ = ["Accelerator", "RunStats", "BuildInfo", "load_manifest", "TernError", "NotATernBuild",
           "ModelMismatch", "DmaTimeout", "DmaError"]
