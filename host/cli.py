"""`python -m host infer BUILD_DIR --images N [--json]`: run held-out images through a built
accelerator and print accuracy, throughput and the IP's counters.

On the board BUILD_DIR is the deployment folder (bitstream, manifest.json, data/). The same
command runs against the build's RTL from the simulator's side, `python -m sim infer
BUILD_DIR ...` (sim.board.SimulatedBoard), which calls `run` here with its overlay: the host
package imports nothing of sim, so the board needs neither it nor its tools. `--sim` here
says so in one line (exit 2).
Bad input exits with code 2 and one line on stderr; a board or DMA failure with code 1, and
so does a class that differs from the golden model's (shipped by a deployment); Ctrl-C
with 130. BUILD_DIR is made absolute here, before anything runs in another folder.
"""
from __future__ import annotations

import argparse
import errno
import json
import sys
from pathlib import Path

import numpy as np

from formats.heldout import load_golden, load_heldout
from formats.manifest import load_manifest

from .driver import Accelerator
from .errors import NotATernBuild, TernError

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
# A file or folder the user named that cannot be used is bad input; other OS errors are failures.
USER_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT, errno.ENOTDIR, errno.EISDIR)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad option in one line (not usage + error), exit code 2."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


PROG = "python -m host"
SIM_INFER = "python -m sim infer"     # where the simulated board's form of `infer` lives


def add_infer_arguments(infer: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of `infer`, shared with `python -m sim infer` (the same run on the simulated board)."""
    infer.add_argument("build_dir", metavar="BUILD_DIR", help="build or deployment folder (with manifest.json)")
    infer.add_argument("--images", type=int, default=100, metavar="N", help="held-out images to run (default 100)")
    infer.add_argument("--start", type=int, default=0, metavar="I", help="first held-out image (default 0)")
    infer.add_argument("--batch", type=int, default=None, metavar="B", help="images per DMA batch buffer")
    infer.add_argument("--timeout", type=float, default=None, metavar="S", help="seconds per image transfer "
                       "before a DMA timeout (default 5 on a board, 120 simulated)")
    infer.add_argument("--json", action="store_true", help="print the result as JSON")
    return infer


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description="Run a Tern accelerator on a PYNQ board "
                                             f"(`{SIM_INFER}` runs it on the simulated board).")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    infer = add_infer_arguments(sub.add_parser("infer", help="classify held-out images, report accuracy and "
                                                             "images/s"))
    infer.add_argument("--sim", action="store_true", help=f"moved: run `{SIM_INFER} BUILD_DIR ...` instead")
    return p


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:           # a board may not have it: run without a bar
        return None
    return tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True, leave=False)


def infer(args, open_board=None) -> dict:
    """Run `args.images` held-out images; `open_board(build_dir)` makes an overlay-like object
    (the simulated board) after the build and images are checked, None loads the bitstream."""
    if args.images < 1:
        raise ValueError(f"--images must be an integer >= 1, not {args.images!r}")
    if args.start < 0:
        raise ValueError(f"--start must be an integer >= 0, not {args.start!r}")
    load_manifest(args.build_dir)        # refuse a bad build before loading images or starting a board
    images, labels = load_heldout(args.build_dir, limit=args.images, start=args.start)
    if len(images) == 0:
        raise ValueError(f"--start must leave held-out images to run, not {args.start!r}")
    board = None if open_board is None else open_board(args.build_dir)
    simulated = board is not None
    try:
        kwargs = {} if args.batch is None else {"batch_size": args.batch}
        acc = Accelerator(args.build_dir, overlay=board, timeout=args.timeout, **kwargs)
        classes = np.empty(len(images), dtype=np.int64)
        bar = _progress(len(images), sys.stderr.isatty() and not args.json)
        for first, _, batch_classes in acc.stream(images, batch_size=min(acc.batch_size, 16) if simulated else None):
            classes[first:first + len(batch_classes)] = batch_classes
            if bar is not None:
                bar.update(len(batch_classes))
        if bar is not None:
            bar.close()
        stats, counters = acc.last_run, acc.counters()
        acc.close()
    finally:
        if board is not None:
            board.close()
    golden = load_golden(args.build_dir, limit=args.images, start=args.start)
    return {"build": str(args.build_dir), "model": acc.info.model_name, "model_id": f"0x{acc.info.model_id:08x}",
            "simulated": simulated, "images": len(images), "first_image": args.start,
            "correct": int((classes == labels).sum()), "accuracy": float((classes == labels).mean()),
            "golden_matches": int((classes == golden).sum()) if golden is not None and len(golden) == len(classes)
            else None,
            "classes": classes.tolist(), "run": stats.to_json(), "counters": counters}


def summary(result: dict) -> str:
    run = result["run"]
    where = "simulated board" if result["simulated"] else "board"
    lines = [f"{result['model']} ({result['model_id']}) on the {where}: {result['correct']}/{result['images']} "
             f"correct = {100 * result['accuracy']:.2f} % (held-out images {result['first_image']}.."
             f"{result['first_image'] + result['images'] - 1})",
             f"host: {run['images_per_second']:,.1f} images/s over {run['seconds']:.2f} s",
             f"IP: {run['cycles_per_image']:,.0f} busy cycles per image"
             + (f" = {run['hw_images_per_second']:,.0f} images/s at the fabric clock"
                if run["hw_images_per_second"] else "")]
    if result["golden_matches"] is not None:
        lines.append(f"golden model: {result['golden_matches']}/{result['images']} classes match")
    c = result["counters"]
    lines.append(f"counters: {c['images_in']} images in, {c['images_out']} out, errors "
                 f"{', '.join(c['errors']) or 'none'}; spike events " +
                 ", ".join(f"{k} {v:,}" for k, v in c["events"].items()))
    return "\n".join(lines)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.sim:
        print(f"{PROG} {args.command}: --sim moved to the simulator's side: run `{SIM_INFER} BUILD_DIR` with the "
              f"same options", file=sys.stderr)
        return EXIT_USAGE
    return run(args, PROG)


def run(args, prog: str, open_board=None) -> int:
    """`infer` with its one-line errors and exit codes (module docstring), printed as `prog infer: ...`."""
    args.build_dir = Path(args.build_dir).resolve()

    def fail(message, code: int) -> int:
        print(f"{prog} {args.command}: {' '.join(str(message).split())}", file=sys.stderr)
        return code

    try:
        result = infer(args, open_board)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED)
    except (NotATernBuild, ValueError, TypeError, FileNotFoundError) as exc:
        return fail(exc, EXIT_USAGE)
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        return fail(f"cannot read{where} ({exc.strerror or exc})",
                    EXIT_USAGE if exc.errno in USER_ERRNOS else EXIT_FAILED)
    except (TernError, RuntimeError) as exc:
        return fail(exc, EXIT_FAILED)
    print(json.dumps(result, indent=2) if args.json else summary(result))
    if result["golden_matches"] is not None and result["golden_matches"] != result["images"]:
        print(f"{prog} {args.command}: {result['images'] - result['golden_matches']} classes differ from "
              f"the golden model", file=sys.stderr)
        return EXIT_FAILED
    return 0
