"""`python -m sim run BUILD_DIR --images N`: simulate a build folder, bit-exact against the golden model
(the native bench by default, split over --jobs processes or a --cluster; --cocotb for the cocotb one).
`python -m sim infer BUILD_DIR --images N`: the host driver's `python -m host infer` on the
simulated board (sim.board.SimulatedBoard): the same driver code, options and output as on
the PYNQ board, against the build's RTL under Verilator.

Exit status: 0 when every logit, class and counter matches; 1 on a mismatch or when the
simulation fails; 2 on bad input (missing or incomplete build folder, bad arguments, a
report path that cannot be written); 130 when interrupted. Errors are one line on stderr.
Every path is made absolute here: the testbench runs in the simulator's own folder.
"""
from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
from pathlib import Path

import host.cli
import sim.fuzz.cli
from sim.board import SimulatedBoard
from sim.network import BuildFolderError, SimulationError, simulate_build

EXIT_MISMATCH = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
PROG = "python -m sim"


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line (not usage + error), exit code 2."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Tern simulation tools")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="stream held-out images through a build's AXI top and check every result",
                         description="Stream held-out MNIST images (8000+START on; seeded random images for a "
                                     "model that is not MNIST-shaped) through the generated top's AXI4-Stream "
                                     "ports, read the counters over AXI4-Lite, and compare every logit, class "
                                     "and event count with the golden model on the build's IR. Writes "
                                     "sim_report.json (cycles measured) into the build folder. By default the "
                                     "native bench runs: the build's top compiled by Verilator with a C++ "
                                     "harness (once per RTL, cached in $TERN_CACHE or ~/.cache/tern), the "
                                     "images split over --jobs processes; --cocotb runs the cocotb bench, "
                                     "which --simulator icarus, --waves and the probes of --debug (or of a "
                                     "mismatch's diagnosis) always use.")
    run.add_argument("build", metavar="BUILD_DIR", help="a folder written by python -m gen build")
    run.add_argument("--images", type=int, default=50, metavar="N", help="images to simulate (default 50)")
    run.add_argument("--start", type=int, default=0, metavar="K", help="first held-out image (8000+K; default 0)")
    run.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator",
                     help="icarus runs on the cocotb bench (default verilator)")
    run.add_argument("--cocotb", action="store_true",
                     help="drive the top from the cocotb bench (Python per beat) instead of the native one")
    run.add_argument("--jobs", type=int, default=None, metavar="N",
                     help="split the images into N chunks simulated in parallel processes, one merged report "
                          "(native bench; default: the CPU count, 1 with --cocotb)")
    run.add_argument("--cluster", metavar="ADDRESS",
                     help="send the chunks to this Dask distributed scheduler (e.g. tcp://host:8786) instead of "
                          "local processes; needs the extra tern-fpga[cluster], Tern and the build folder at the "
                          "same path on the workers"),
    run.add_argument("--backpressure", action="store_true",
                     help="random TVALID gaps on the input and TREADY stalls on the output (seeded)")
    run.add_argument("--waves", action="store_true",
                     help="also write a waveform of the first images (a second run, on the cocotb bench)")
    run.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    run.add_argument("--debug", action="store_true",
                     help="probe the spikes between layers (event streams and dense spike maps) and compare them "
                          "with the golden model even without a mismatch (one image again, on the cocotb bench)")
    run.add_argument("--report", metavar="PATH", help="where to write the report (default BUILD_DIR/sim_report.json)")
    run.add_argument("--json", action="store_true", help="print the report as JSON")
    run.add_argument("--verbose", "-v", action="store_true", help="show the compiler's and cocotb's output")
    sim.fuzz.cli.add_parser(sub)
    host.cli.add_infer_arguments(sub.add_parser(
        "infer", help="run the host driver (python -m host infer) on the simulated board",
        description="Classify held-out images with the host driver against the build's RTL under Verilator "
                    "(the simulated PYNQ board), and report accuracy, images/s and the IP's counters, as "
                    "python -m host infer does on the board."))
    return p


def summary(result) -> str:
    r = result.report
    lines = []
    verdict = "bit-exact" if result.ok else f"{r['mismatches']} MISMATCHES"
    lines.append(f"{r['results']}/{r['images']} images on {r['simulator']}: {verdict} "
                 f"(logits, classes, counters; seed {r['seed']}{', back-pressure' if r['backpressure'] else ''})")
    if r.get("chunks"):
        where = f"on {r['cluster']}" if r.get("cluster") else "in parallel processes"
        lines.append(f"{r['bench']} bench, {r['chunks']} chunks {where}, merged (each chunk from reset)")
    elif r.get("bench"):
        lines.append(f"{r['bench']} bench")
    for line in r["first_mismatches"][:5]:
        lines.append(f"  {line}")
    if r["accuracy"] is not None:
        lines.append(f"accuracy {100 * r['accuracy']:.2f} % on {r['images_source']}")
    if r["cycles_per_image"]:
        lines.append(f"latency {r['latency_cycles']:,} cycles; {r['cycles_per_image']:,.1f} cycles/image back to back "
                     f"= {r['images_per_second_at_100mhz']:,.0f} images/s at 100 MHz")
    elif r["latency_cycles"] is not None:
        lines.append(f"latency {r['latency_cycles']:,} cycles")
    lanes = ", ".join(f"{l['name']} {l['lanes']}" + (f" ({100 * l['lane_utilisation']:.0f} %)"
                                                     if l["lane_utilisation"] is not None else "")
                      for l in r["layers"])
    lines.append(f"lanes (utilisation): {lanes}")
    if result.diagnosis is not None:
        lines.append(f"diagnosis: {result.diagnosis.summary()}")
    if result.waves is not None:
        lines.append(f"waves: {result.waves}")
    lines.append(f"report: {result.report_path}")
    return "\n".join(lines)


def fail(message: str, code: int) -> int:
    print(f"{PROG} run: {' '.join(str(message).split())}", file=sys.stderr)
    return code


# A file or folder the user gave that cannot be used is bad input; anything else (a full
# disk, an I/O error) is the run failing.
USER_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.EISDIR)


def os_error_code(exc: OSError) -> int:
    return EXIT_BAD_INPUT if exc.errno in USER_ERRNOS else EXIT_MISMATCH


def os_error_line(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"cannot write or read{where} ({exc.strerror or exc})"


def default_jobs(args) -> int:
    """--jobs as given; else the CPU count on the native bench (only it splits) and 1 otherwise."""
    if args.jobs is not None:
        return args.jobs
    return 1 if args.cocotb or args.simulator != "verilator" else (os.cpu_count() or 1)


def cmd_run(args) -> int:
    try:
        result = simulate_build(Path(args.build).resolve(), args.images, start=args.start,
                                simulator=args.simulator, backpressure=args.backpressure, seed=args.seed,
                                waves=args.waves, debug=args.debug,
                                report=None if args.report is None else Path(args.report).resolve(),
                                progress=not args.json, quiet=not args.verbose,
                                bench="cocotb" if args.cocotb else None, jobs=default_jobs(args),
                                cluster=args.cluster)
    except (BuildFolderError, ValueError) as exc:
        return fail(exc, EXIT_BAD_INPUT)
    except (SimulationError, RuntimeError) as exc:
        return fail(exc, EXIT_MISMATCH)
    except OSError as exc:               # e.g. the build folder is read-only or the disk is full
        return fail(os_error_line(exc), os_error_code(exc))
    print(json.dumps(result.report, indent=2) if args.json else summary(result))
    return 0 if result.ok else EXIT_MISMATCH


def open_simulated_board(build_dir: Path) -> SimulatedBoard:
    print("starting the simulated board (builds the RTL under Verilator on first use) ...",
          file=sys.stderr, flush=True)
    return SimulatedBoard(build_dir)


def cmd_infer(args) -> int:
    return host.cli.run(args, PROG, open_board=open_simulated_board)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return {"run": cmd_run, "infer": cmd_infer, "fuzz": sim.fuzz.cli.run}[args.command](args)
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
