"""`quadfire bench NAME [args]`: run the benchmark module quadfire.bench.NAME."""
from __future__ import annotations

import argparse
import importlib

BENCHMARKS = ("neurons", "models")


def _run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"quadfire.bench.{args.name}")
    return int(module.main(args.rest) or 0)


def add_commands(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark against the peer libraries",
                       description="Run a benchmark; arguments after NAME go to the benchmark.")
    p.add_argument("name", choices=BENCHMARKS)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_run)
