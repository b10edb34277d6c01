"""`python -m sim fuzz`: the model-space fuzzer's command line (docs/fuzz.md)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from sim.fuzz.run import REPORT, fuzz

DEFAULT_CORPUS = Path("tests") / "corpus"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "fuzz", help="build and simulate random valid models; shrink and keep every bug",
        description="Draw N random checkpoints across everything docs/checkpoint.md allows (neurons, kernels, "
                    "strides, padding, maps, channels, T, BN, MPBN, amplitude, pooling, residual blocks, extreme "
                    "weights, rare and dense firing), build each with a default, all-event, all-dense or mixed "
                    "plan and random lanes (lint on, no synthesis), simulate it with or without back-pressure and "
                    "compare it with the golden model, and the golden model with the float64 model. A refusal "
                    "is correct only when docs/limits.md lists it. Each bug (mismatch, lint failure, internal "
                    "error, undocumented refusal) is shrunk to a small model and saved to the corpus. Exit 0 "
                    "when no case found a bug, 1 otherwise.")
    p.add_argument("--nets", type=int, default=100, metavar="N", help="models to draw (default 100)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="run seed: case i of seed S is always the same model")
    p.add_argument("--start", type=int, default=0, metavar="K", help="first case index (default 0)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="J",
                   help="models built and simulated at once (default: the cores)")
    p.add_argument("--out", default="fuzz", metavar="DIR", help="where fuzz_report.json goes (default ./fuzz)")
    p.add_argument("--corpus", default=str(DEFAULT_CORPUS), metavar="DIR",
                   help=f"where shrunk bugs are saved (default {DEFAULT_CORPUS})")
    p.add_argument("--profile", choices=("ci", "full"), default="ci",
                   help="ci: maps to 12×12, 8 channels, T ≤ 4 (seconds per model); full: the whole range "
                        "(maps to 32×32, 64 channels, T ≤ 8, 5 stages)")
    p.add_argument("--no-shrink", action="store_true", help="report bugs without shrinking or saving them")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def run(args) -> int:
    for name in ("nets", "jobs"):
        if getattr(args, name) < 1:
            print(f"python -m sim fuzz: error: --{name} must be at least 1, not {getattr(args, name)}", file=sys.stderr)
            return 2
    if args.start < 0:
        print(f"python -m sim fuzz: error: --start must be >= 0, not {args.start}", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    if out.exists() and not out.is_dir():
        print(f"python -m sim fuzz: error: --out {args.out!r} is a file, not a folder", file=sys.stderr)
        return 2
    report = fuzz(args.nets, args.seed, jobs=args.jobs, out=out, start=args.start, profile=args.profile,
                  corpus=None if args.no_shrink else Path(args.corpus).resolve(), shrink_bugs=not args.no_shrink,
                  progress=None if args.json else (lambda line: print(line, file=sys.stderr, flush=True)))
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        verdicts = ", ".join(f"{count} {verdict}" for verdict, count in report["verdicts"].items())
        print(f"{args.nets} models (seed {args.seed}, {report['seconds']:.0f} s): {verdicts}; "
              f"{len(report['bugs'])} bug(s); report {out / REPORT}")
        for bug in report["bugs"]:
            where = f" → {bug['corpus']}" if "corpus" in bug else ""
            print(f"  case {bug['index']} {bug['verdict']}: {bug['message'][:160]}{where}")
    return 1 if report["bugs"] else 0
