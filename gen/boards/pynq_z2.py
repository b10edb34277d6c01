"""PYNQ-Z2 (TUL, Zynq-7020): capacity, clock, and the Vivado Tcl that builds the bitstream.

The Tcl is `pynq_z2.tcl` beside this file with `%%NAME%%` placeholders; it names only
files inside the build folder (relative to the script's own directory), so the folder
can be copied to a machine with Vivado and built there with one command.
"""
from __future__ import annotations

import re
from pathlib import Path

from gen.boards import Board, Capacity
from gen.boards.xc7 import XC7

TEMPLATE = Path(__file__).with_suffix(".tcl")
SCRIPT_NAME = "build_bitstream.tcl"
RUN_COMMAND = f"vivado -mode batch -source {SCRIPT_NAME}"
_SAFE = re.compile(r"^[A-Za-z0-9_./-]+$")   # nothing Tcl would substitute or split


def _tcl_word(name: str, value: str) -> str:
    if not _SAFE.match(value):
        raise ValueError(f"{name} must match [A-Za-z0-9_./-]+ (safe in Tcl), not {value!r}")
    return value


def render_tcl(*, rtl_files, top: str, stem: str, model: str, part: str, clock_mhz: float) -> str:
    """The build script's text. rtl_files: paths relative to the build folder."""
    files = [_tcl_word("rtl file", str(f)) for f in rtl_files]
    if not files:
        raise ValueError("rtl_files must name at least one Verilog file, not []")
    if clock_mhz <= 0:
        raise ValueError(f"clock_mhz must be positive, not {clock_mhz!r}")
    values = {
        "MODEL": _tcl_word("model", model), "STEM": _tcl_word("stem", stem),
        "TOP": _tcl_word("top", top), "PART": _tcl_word("part", part),
        "RTL_FILES": " ".join(files),
        "CLOCK_MHZ": f"{clock_mhz:g}", "CLOCK_MHZ_INT": f"{round(clock_mhz)}",
    }
    text = TEMPLATE.read_text()
    for key, value in values.items():
        text = text.replace(f"%%{key}%%", value)
    leftover = re.findall(r"%%[A-Z_]+%%", text)
    if leftover:
        raise RuntimeError(f"the Tcl template has unfilled placeholders: {sorted(set(leftover))}")
    return text


def write_project(out_dir, *, rtl_files, top: str, stem: str, model: str) -> list[Path]:
    """Write build_bitstream.tcl into out_dir; returns the files written."""
    out_dir = Path(out_dir)
    missing = [str(f) for f in rtl_files if not (out_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(f"rtl files must exist in {out_dir}, missing: {missing}")
    script = out_dir / SCRIPT_NAME
    script.write_text(render_tcl(rtl_files=rtl_files, top=top, stem=stem, model=model,
                                 part=BOARD.part, clock_mhz=BOARD.clock_mhz))
    return [script]


BOARD = Board(
    name="pynq-z2",
    part="xc7z020clg400-1",
    capacity=Capacity(luts=53_200, ffs=106_400, bram36=140, dsps=220),
    clock_mhz=100.0,
    description="TUL PYNQ-Z2: Zynq-7020, FCLK0 100 MHz, AXI DMA on S_AXI_HP0",
    write_project=write_project,
    device=XC7,
)
