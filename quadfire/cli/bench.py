"""`quadfire bench NAME [args]`: run the benchmark module quadfire.bench.NAME;
`quadfire info`: what the neuron kernels run on (quadfire.bench.diagnostics)."""
from __future__ import annotations

import argparse
import importlib
import json

from ..bench.args import float_in

BENCHMARKS = ("neurons", "models")


def _run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"quadfire.bench.{args.name}")
    return int(module.main(args.rest) or 0)


def _info(args: argparse.Namespace) -> int:
    from ..bench import diagnostics

    bench = diagnostics.self_benchmark(args.seconds) if args.seconds > 0 else None
    report = diagnostics.system_report()  # after the benchmark: the cache holds its buffers
    if args.json:
        print(json.dumps({**report, "self_benchmark": bench}, indent=1, default=str))
    else:
        print(diagnostics.format_report(report, bench))
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("bench", help="run a benchmark against the peer libraries",
                       description="Run a benchmark; arguments after NAME go to the benchmark.")
    p.add_argument("name", choices=BENCHMARKS)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_run)
    p = sub.add_parser("info", help="versions, CPU and vector ISA, backends, kernel library, "
                                    "a 2-second self-benchmark",
                       description="What the neuron kernels run on and how fast they are here.")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--seconds", type=float_in(0, 600), default=2.0,
                   help="self-benchmark budget in seconds (0: skip it)")
    p.set_defaults(func=_info)
