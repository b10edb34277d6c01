"""The `python -m gen` command line: one argparse subparser per command module.

Each module named in COMMANDS exposes `add_parser(subparsers)`, which adds its subparser
and sets `func(args) -> exit code` as its default. Errors about the user's input (a model
that cannot compile, a missing file, a bad option value) are ValueErrors: they print as
one line on stderr and exit with code 2, with no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS = ("inspect", "build", "deploy", "export")  # modules gen.<name>; add new commands here (no directory scans)
EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gen", description="Tern compiler: checkpoint -> integer network -> hardware")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"gen.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:  # ModelError, CheckpointError, IRFileError, DataError, bad option values
        message = " ".join(str(exc).split())
        print(f"python -m gen {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
