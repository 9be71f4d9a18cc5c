"""quadfire: train, evaluate, analyse and export spiking networks of QIF neurons.

Each subsystem adds its own subcommands through an `add_commands(subparsers)` function in its
package; this file only wires them together."""
from __future__ import annotations

import argparse
import importlib
import sys

# Modules that contribute subcommands, in the order they appear in --help.
COMMAND_MODULES = ("quadfire.train.commands", "quadfire.analysis.commands",
                   "quadfire.export.commands", "quadfire.bench.commands")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="quadfire", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
