"""`python -m sim.board_server BUILD_DIR --port-file F`: run a build's top under simulation
and serve the simulated board (sim/tb/board.py) until the client disconnects.

sim.board.SimulatedBoard starts this as a subprocess; it is a module of its own so that a
notebook kernel or a script can start a board without running cocotb itself.
The Verilator build of the top is cached per RTL hash in the user's cache
($TERN_CACHE_DIR/board, else ~/.cache/tern/board, as gen.backend.synth's cache), never in the source
tree, so that an installed, read-only copy of Tern runs; with TERN_CACHE_DIR set empty (the
caches off) it goes into the build folder's sim/board/.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from pathlib import Path

from formats.manifest import load_manifest
from sim.runner import copy_sources, run_lean_verilator, run_testbench
from sim.tb.harness import kick_comb_blocks_at_time_zero

TEST_MODULE = "sim.tb.board"


def rtl_sources(build_dir: Path) -> tuple[list[Path], str]:
    """(Verilog files, top module) of a build, from its manifest (checked as the driver checks it)."""
    manifest = load_manifest(build_dir).raw
    top = manifest.get("top", {}).get("module") if isinstance(manifest.get("top"), dict) else None
    if not isinstance(top, str) or not top:
        raise ValueError(f"{build_dir / 'manifest.json'}: top.module must name the top Verilog module")
    files = [build_dir / f for f in manifest["files"]["rtl"]]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ValueError(f"the build's RTL files must exist, not missing {missing}")
    return files, top


def cache_root(build_dir: Path) -> Path:
    """Where compiled boards are kept: the user's cache (see the module docstring)."""
    root = os.environ.get("TERN_CACHE_DIR")
    if root == "":
        return Path(build_dir) / "sim" / "board"
    return Path(root or Path.home() / ".cache" / "tern") / "board"


def cache_dir(files: list[Path], top: str, simulator: str, root: Path) -> Path:
    digest = hashlib.sha1(top.encode())
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    return Path(root) / simulator / f"{top}-{digest.hexdigest()[:12]}"


def serve(build_dir, port_file, simulator: str = "verilator", accept_timeout_s: float = 60,
          idle_timeout_s: float = 600, seed: int | None = None):
    build_dir = Path(build_dir).resolve()
    files, top = rtl_sources(build_dir)
    params = {"port_file": str(port_file), "accept_timeout_s": accept_timeout_s,
              "idle_timeout_s": idle_timeout_s}
    # The lean Verilator: only the top's own signals public (all the board touches are its
    # AXI ports), which simulates the MNIST example about 4x faster than cocotb's default.
    folder = cache_dir(files, top, "verilator-lean" if simulator == "verilator" else simulator,
                       cache_root(build_dir))
    # Copies of the RTL in the cache folder: Verilator rebuilds whenever the paths or times of
    # its inputs change, so compiling the build folder's own files would rebuild for every new
    # build folder (and a rebuild over an old one can trip on its stale precompiled header).
    # Icarus also needs sim.network's time-0 kick of every `always @*` block (see there).
    kick = kick_comb_blocks_at_time_zero if simulator == "icarus" else None
    sources = copy_sources(files, folder / "rtl", kick)
    if simulator == "verilator":
        return run_lean_verilator(sources, top, TEST_MODULE, folder, params=params, seed=seed)
    return run_testbench(sources, top, TEST_MODULE, folder, params=params, simulator=simulator, seed=seed)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.board_server", description=__doc__.split("\n\n")[0])
    p.add_argument("build_dir")
    p.add_argument("--port-file", required=True, help="where to write the TCP port once listening")
    p.add_argument("--simulator", default="verilator", choices=("verilator", "icarus"))
    p.add_argument("--accept-timeout", type=float, default=60.0, help="seconds to wait for the client")
    p.add_argument("--idle-timeout", type=float, default=600.0, help="seconds without a request before stopping")
    p.add_argument("--seed", type=int)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        serve(args.build_dir, args.port_file, args.simulator, args.accept_timeout, args.idle_timeout, args.seed)
    except (ValueError, OSError, KeyError) as exc:
        print(f"python -m sim.board_server: {exc}", file=sys.stderr)
        return 2
    except AssertionError as exc:   # SimulationFailed
        print(f"python -m sim.board_server: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
