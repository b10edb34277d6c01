"""The `python -m gen` command line: one argparse subparser per command module.

Each module named in COMMANDS exposes `add_parser(subparsers)`, which adds its subparser
and sets `func(args) -> exit code` as its default. Every failure prints as ONE line on
stderr, never a traceback (docs/errors.md):

    ValueError family (ModelError, CheckpointError, IRFileError, DataError, bad options)  -> 2
    OSError about the user's file or folder (missing, unreadable, read-only, not a folder) -> 2
    any other OSError (a full disk, an I/O error: the machine, not the path the user named) -> 1
    KeyboardInterrupt (Ctrl-C)                                                             -> 130
    anything else: a bug in gen, one line and exit 1 (the traceback only with --verbose)
"""
from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys

COMMANDS = ("inspect", "build", "deploy", "export")  # modules gen.flow.<name>; add new commands here (no directory scans)
EXIT_TOOL_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

# errno values that mean "the path you gave cannot be used as you asked" (another path or
# other permissions fix them): bad input. A full disk or an I/O error is the machine's state,
# exit 1, as for `python -m sim` (docs/errors.md).
USER_PATH_ERRNOS = frozenset(getattr(errno, name) for name in (
    "ENOENT", "EACCES", "EPERM", "EROFS", "ENOTDIR", "EISDIR", "EEXIST", "ENOTEMPTY", "ENAMETOOLONG",
    "ELOOP", "EINVAL", "EXDEV", "ENXIO", "ENODEV") if hasattr(errno, name))


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe_os_error(exc: OSError) -> str:
    """'<file>: <what went wrong>' in words, without Python's '[Errno N]' prefix."""
    what = exc.strerror or one_line(exc) or type(exc).__name__
    files = [f for f in (exc.filename, getattr(exc, "filename2", None)) if f is not None]
    where = " -> ".join(str(f) for f in files)
    return f"{where}: {what}" if where else what


def os_error_exit_code(exc: OSError) -> int:
    return EXIT_BAD_INPUT if exc.errno in USER_PATH_ERRNOS else EXIT_TOOL_FAILED


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (no usage block), exit 2, like every other error."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m gen", description="Tern compiler: checkpoint -> integer network -> hardware")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"gen.flow.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        print("python -m gen: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except BaseException as exc:  # noqa: BLE001 - the one place errors become one line and an exit code
        return report_failure(f"python -m gen {args.command}", exc, verbose=args.verbose)


def report_failure(prefix: str, exc: BaseException, verbose: bool = False) -> int:
    """Print `exc` as one line on stderr and return its exit code (module docstring).

    An unexpected exception is a bug in gen: one line and exit 1, with the traceback only
    under --verbose. SystemExit passes through (argparse and sys.exit use it).
    """
    if isinstance(exc, KeyboardInterrupt):
        print(f"{prefix}: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if isinstance(exc, ValueError):   # ModelError, CheckpointError, IRFileError, DataError, bad option values
        print(f"{prefix}: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if isinstance(exc, OSError):
        print(f"{prefix}: error: {one_line(describe_os_error(exc))}", file=sys.stderr)
        return os_error_exit_code(exc)
    if isinstance(exc, Exception) and not verbose:
        print(f"{prefix}: internal error ({type(exc).__name__}): {one_line(exc)} "
              f"(a bug in gen; run with -v for the traceback)", file=sys.stderr)
        return EXIT_TOOL_FAILED
    raise exc
