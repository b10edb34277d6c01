"""`python -m sim.board_server BUILD_DIR --port-file F`: run a build's top under simulation
and serve the simulated board (sim/tb/board.py) until the client disconnects.

sim.board.SimulatedBoard starts this as a subprocess; it is a module of its own so that a
notebook kernel or a script can start a board without importing cocotb itself.
The Verilator build of the top is cached under sim_build/board/<hash of the RTL>.
"""
from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "sim_build" / "board"
TEST_MODULE = "sim.tb.board"
log = logging.getLogger("sim.board_server")


def rtl_sources(build_dir: Path) -> tuple[list[Path], str]:
    """(Verilog files, top module) of a build, from its manifest."""
    manifest = json.loads((build_dir / "manifest.json").read_text())
    files = [build_dir / f for f in manifest["files"]["rtl"]]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ValueError(f"the build's RTL files must exist, not missing {missing}")
    return files, manifest["top"]["module"]


def cache_dir(files: list[Path], top: str, simulator: str) -> Path:
    digest = hashlib.sha1(top.encode())
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    return CACHE / simulator / f"{top}-{digest.hexdigest()[:12]}"


def write_if_changed(path: Path, text: str) -> Path:
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


@contextlib.contextmanager
def build_lock(folder: Path):
    """One compile at a time per cache folder, across processes (e.g. pytest-xdist workers)."""
    import fcntl

    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_sources(files: list[Path], folder: Path) -> list[Path]:
    """Copies of the RTL in the cache folder: Verilator rebuilds whenever the paths or times of
    its inputs change, so compiling the build folder's own files would rebuild for every new
    build folder (and a rebuild over an old one can trip on its stale precompiled header)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_if_changed(folder / f.name, f.read_text()) for f in files]


def run_lean_verilator(files, top: str, build_dir: Path, params: dict, seed: int | None):
    """Like sim.runner.run_testbench, with sim.network's lean Verilator: only the top's own
    signals public (all the board touches are its AXI ports), which simulates the MNIST
    example about 4x faster than cocotb's `--public-flat-rw` on every signal."""
    import random

    from sim.network import VERILATOR_ARGS, _lean_verilator_class
    from sim.runner import TIMESCALE, check_simulator, run_built_tests
    from sim.toolchain import fix_verilator_pch

    check_simulator("verilator")
    fix_verilator_pch()
    seed = random.randrange(1 << 31) if seed is None else int(seed)
    build_dir = Path(build_dir).resolve()
    files = cached_sources(files, build_dir / "rtl")
    config = write_if_changed(build_dir / "public_top.vlt",
                              f'`verilator_config\npublic_flat_rw -module "{top}" -var "*"\n')
    runner = _lean_verilator_class()()
    with build_lock(build_dir):
        def compile_model():
            runner.build(sources=[str(f) for f in files], hdl_toplevel=top, build_dir=build_dir,
                         build_args=[*VERILATOR_ARGS, str(config)], timescale=TIMESCALE, always=False)
        try:
            compile_model()
        except RuntimeError as exc:
            # An interrupted earlier compile can leave objects (precompiled headers) that make
            # trusts but the compiler rejects: start the C++ over once.
            log.warning("Verilator build failed (%s); cleaning %s and building again", exc, build_dir)
            for path in build_dir.iterdir():
                if path.is_file() and path.suffix != ".vlt" and not path.name.startswith("."):
                    path.unlink()
            compile_model()
    run_built_tests(runner, simulator="verilator", toplevel=top, test_module=TEST_MODULE,
                    build_dir=build_dir, params=params, seed=seed)


def serve(build_dir, port_file, simulator: str = "verilator", accept_timeout_s: float = 60,
          idle_timeout_s: float = 600, seed: int | None = None):
    from sim.runner import run_testbench

    build_dir = Path(build_dir)
    files, top = rtl_sources(build_dir)
    params = {"port_file": str(port_file), "accept_timeout_s": accept_timeout_s,
              "idle_timeout_s": idle_timeout_s}
    if simulator == "verilator":
        return run_lean_verilator(files, top, cache_dir(files, top, "verilator-lean"), params, seed)
    folder = cache_dir(files, top, simulator)
    return run_testbench(cached_sources(files, folder / "rtl"), top, TEST_MODULE, folder, params=params,
                         simulator=simulator, seed=seed)


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
