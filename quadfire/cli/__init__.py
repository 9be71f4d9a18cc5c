"""quadfire: train, evaluate, analyse and export spiking networks of QIF neurons.

Each command group lives in its own module here (`train`, `analyze`, `export`, `bench`) with
an `add_commands(subparsers)` function; this file wires them together and owns the one rule of
the command line: a user's mistake (any `quadfire.errors.QuadfireError`, a bad argument, a
file that cannot be read or written) ends with one line ``quadfire <command>: error: ...`` on
stderr and exit code 2. Anything else is a bug and keeps its traceback. ``--debug`` (or
``QUADFIRE_DEBUG=1``) shows the traceback of user errors too.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import QuadfireError

# Modules that contribute subcommands, in the order they appear in --help.
COMMAND_MODULES = ("quadfire.cli.train", "quadfire.cli.study", "quadfire.cli.analyze",
                   "quadfire.cli.export", "quadfire.cli.bench")
# Errors that mean the user's request cannot be met as given, not that quadfire is broken.
USER_ERRORS = (QuadfireError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
               PermissionError, FileExistsError)


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (no usage block) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> Parser:
    parser = Parser(prog="quadfire", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of every error (also QUADFIRE_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def one_line(error: BaseException) -> str:
    """An exception's message on one line (multi-line messages joined with ' | ')."""
    text = " | ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text or type(error).__name__


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    debug = args.debug or os.environ.get("QUADFIRE_DEBUG", "") not in ("", "0")
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as e:
        if debug:
            raise
        print(f"quadfire {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"quadfire {args.command}: interrupted", file=sys.stderr)
        return 130
