"""quadfire: train, evaluate, analyse and export spiking networks of QIF neurons.

Each command group lives in its own module here (`demo`, `train`, `study`, `analyze`,
`export`, `bench`) with an `add_commands(subparsers)` function, and their argument types and
shared options in `args`; this file wires them together and owns the one rule of the command
line: a user's mistake (any `quadfire.errors.QuadfireError`, a bad argument, a
file that cannot be read or written) ends with one line ``quadfire <command>: error: ...`` on
stderr and exit code 2. Anything else is a bug and keeps its traceback. ``--debug`` (or
``QUADFIRE_DEBUG=1``) shows the traceback of user errors too.
"""
from __future__ import annotations

import errno
import importlib
import os
import sys

from .args import Parser  # argparse with one-line errors
from ..errors import QuadfireError

# Modules that contribute subcommands, in the order they appear in --help.
COMMAND_MODULES = ("quadfire.cli.demo", "quadfire.cli.train", "quadfire.cli.study", "quadfire.cli.analyze",
                   "quadfire.cli.export", "quadfire.cli.bench")
# Errors that mean the user's request cannot be met as given, not that quadfire is broken.
USER_ERRORS = (QuadfireError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
               PermissionError, FileExistsError)
# ... and file-system conditions of the user's machine (a path too long, a full or read-only
# disk), which no code change could fix.
USER_ERRNOS = {errno.ENAMETOOLONG, errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.ELOOP}


def is_user_error(error: BaseException) -> bool:
    """Whether `error` is the user's to fix (one line, exit 2) rather than a bug in quadfire."""
    return isinstance(error, USER_ERRORS) or (isinstance(error, OSError)
                                              and error.errno in USER_ERRNOS)


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
    except Exception as e:
        if debug or not is_user_error(e):
            raise  # a bug: the full traceback
        print(f"quadfire {args.command}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"quadfire {args.command}: interrupted", file=sys.stderr)
        return 130
