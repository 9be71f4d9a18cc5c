"""``quadfire bench neurons|models``: the benchmarks of `quadfire.bench`, with their options;
``quadfire info``: what the neuron kernels run on (`quadfire.bench.diagnostics`).

The only command module that imports `quadfire.bench` (tests/test_architecture.py).
"""
from __future__ import annotations

import argparse
import json
import os

from ..errors import ParameterError
from .args import float_in, int_in, output_file_in_folder

# The command line's own names, not options of a benchmark (and not JSON: func is a function).
CLI_KEYS = ("func", "command", "debug", "name")


def _options(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in CLI_KEYS})


def _neurons(args: argparse.Namespace) -> int:
    from ..bench import neurons

    if args.neurons * max(args.steps) > neurons.MAX_ELEMENTS:
        raise ParameterError(f"--neurons x --steps must be at most {neurons.MAX_ELEMENTS} "
                             f"elements per array, got {args.neurons} x {max(args.steps)}")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ParameterError("--device cuda: CUDA is not available on this machine")
    return neurons.run(_options(args))


def _models(args: argparse.Namespace) -> int:
    from ..bench import models

    return models.run(_options(args))


def _info(args: argparse.Namespace) -> int:
    from ..bench import diagnostics

    bench = diagnostics.self_benchmark(args.seconds) if args.seconds > 0 else None
    report = diagnostics.system_report()  # after the benchmark: the cache holds its buffers
    if args.json:
        print(json.dumps({**report, "self_benchmark": bench}, indent=1, default=str))
    else:
        print(diagnostics.format_report(report, bench))
    return 0


def _neurons_options(p: argparse.ArgumentParser) -> None:
    from ..bench.neurons import MIN_RUNS, ROWS

    p.add_argument("--neurons", type=int_in(1, 1 << 28), default=1 << 22,
                   help="neurons per time step (default 4M)")
    p.add_argument("--steps", type=int_in(1, 4096), nargs="+", default=[4, 8, 32],
                   help="values of T")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS, metavar="ROW",
                   help=f"rows to run, separated by spaces (default all: {' '.join(ROWS)})")
    p.add_argument("--repeats", type=int_in(1, 1000), default=5,
                   help="timed runs per row (min is reported)")
    p.add_argument("--budget", type=float_in(0, 86400), default=6.0,
                   help=f"seconds of timed runs per row after which repeats stop early "
                        f"(after at least {MIN_RUNS} runs, or --repeats if fewer)")
    p.add_argument("--rounds", type=int_in(1, 100), default=1,
                   help="run the whole set of rows this many times, interleaved, and report "
                        "each row's fastest round: on a shared machine a slow spell then hits "
                        "every row alike instead of one")
    p.add_argument("--threads", type=int_in(1, 1024), default=os.cpu_count() or 1)
    p.add_argument("--device", default=None, choices=("cpu", "cuda"),
                   help="cpu or cuda (default: cuda when available)")
    p.add_argument("--timeout", type=float_in(0, 86400, lo_open=True), default=300.0,
                   help="seconds per row")
    p.add_argument("--cache-mb", type=int_in(0, 1 << 20), default=None,
                   help="QUADFIRE_CPU_CACHE_MB for the rows (default: the library's, 1/8 of "
                        "RAM up to 2 GiB); a loop over a layer reuses about 3 x T x neurons x "
                        "4 bytes of outputs")
    p.add_argument("--json", type=output_file_in_folder, default=None,
                   help="also write the raw results to this file")
    p.add_argument("--worker", default=None, choices=ROWS, help=argparse.SUPPRESS)


def _models_options(p: argparse.ArgumentParser) -> None:
    from ..bench.models import ROWS

    p.add_argument("--T", type=int_in(1, 256), default=4, help="time steps (default 4)")
    p.add_argument("--batch", type=int_in(1, 4096), default=8, help="batch size (default 8)")
    p.add_argument("--size", type=int_in(4, 1024), default=32,
                   help="image side in pixels (default 32)")
    p.add_argument("--steps", type=int_in(1, 10_000), default=5,
                   help="timed steps; the median counts (default 5)")
    p.add_argument("--warmup", type=int_in(1, 10_000), default=3,
                   help="untimed steps first (default 3; the first step allocates optimizer "
                        "state)")
    p.add_argument("--threads", type=int_in(1, 1024), default=max(1, os.cpu_count() or 1),
                   help="torch CPU threads per row (default: all cores)")
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS, metavar="ROW",
                   help=f"rows to run, separated by spaces (default all: {' '.join(ROWS)})")
    p.add_argument("--json", type=output_file_in_folder,
                   help="also write the results to this JSON file")
    p.add_argument("--child", choices=ROWS, help=argparse.SUPPRESS)


def add_commands(sub) -> None:
    from ..bench import models, neurons

    bench = sub.add_parser("bench", help="run a benchmark against the peer libraries",
                           description="Run a benchmark (docs/kernels.md, docs/models.md).")
    bsub = bench.add_subparsers(dest="name", metavar="NAME", required=True)
    p = bsub.add_parser("neurons", help="one spiking layer forward + backward: time, memory, "
                                        "bandwidth against the peers",
                        description=neurons.__doc__.split("\n")[0])
    _neurons_options(p)
    p.set_defaults(func=_neurons)
    p = bsub.add_parser("models", help="a ResNet-19 training step against SpikingJelly",
                        description="One ResNet-19 training step on the CPU: quadfire QIF vs "
                                    "SpikingJelly QIFNode (images/s and peak step memory; see "
                                    "docs/models.md for the method).")
    _models_options(p)
    p.set_defaults(func=_models)

    p = sub.add_parser("info", help="versions, CPU and vector ISA, backends, kernel library, "
                                    "a 2-second self-benchmark",
                       description="What the neuron kernels run on and how fast they are here.")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--seconds", type=float_in(0, 600), default=2.0,
                   help="self-benchmark budget in seconds (0: skip it)")
    p.set_defaults(func=_info)
