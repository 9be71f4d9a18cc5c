"""``quadfire train``, ``eval`` and ``recipes``.

``quadfire train`` with no recipe is the digits demo: a study (`quadfire.cli.study`) of the
QIF convnet and its LIF twin, one seed each, then the table. The demo writes to its own
folder, ``runs/demo/``, and its runs are scratch runs, so running it again retrains and
replaces them (`make demo` runs it every time) while a real run elsewhere is never touched.

Exit codes: 0 done; 2 a user's mistake (one line on stderr); 128 + N stopped by signal N
(130 Ctrl-C, 143 SIGTERM) after writing the checkpoint.
"""
from __future__ import annotations

import argparse
from pathlib import Path
import sys

from ..bench.args import int_in
from ..errors import ConfigError
from ..train import checkpoint
from ..train.config import AUTO, OVERWRITE, config_from_checkpoint
from ..train.recipes import SMOKE, config_for, list_recipes

DEMO = "digits"
LAST = "last"    # bare --resume: this recipe's <run_dir>/last.pt, which must exist
DEMO_OUT = "runs/demo"  # the demo's own folder (its runs are scratch runs: reruns replace them)


def common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (dotted keys for sections, e.g. data.batch_size=32)")
    p.add_argument("--download", dest="overrides", action="append_const",
                   const="data.download=true",
                   help="fetch the dataset if missing (CIFAR-10/100; same as --set data.download=true)")
    p.add_argument("--quiet", dest="overrides", action="append_const", const="progress=false",
                   help="no progress bar and no per-epoch line (same as --set progress=false)")
    p.add_argument("--smoke", action="store_true",
                   help="2 training steps on generated data of the recipe's shape (no dataset needed)")


def overwrite_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run that already exists in the run directory (its last.pt, "
                        "metrics.csv, report.json and tb/ are deleted once the new run has "
                        "started)")


def _train(args) -> int:
    from ..train.engine import fit
    from ..train.report import summary_line

    if args.recipe is None and args.resume is None:
        from .study import study_command

        out = config_for(None, args.overrides).out_dir
        folder = Path(DEMO_OUT) if out == "runs" else Path(out) / "demo"
        return study_command(DEMO, ["qif", "lif"], [0], args.overrides, args.smoke,
                             args.overwrite, title="digits demo", scratch=True, folder=folder)
    resume = args.resume
    if args.overwrite and resume is not None:
        raise ConfigError("--overwrite starts a new run in place of the old one and --resume "
                          "continues it: give one of them")
    if args.recipe is None:
        # Resuming without a recipe: the checkpoint carries its resolved config.
        if resume in (LAST, AUTO):
            raise ConfigError("--resume without a recipe needs the checkpoint path, e.g. "
                              "--resume runs/<run>/last.pt")
        cfg = config_from_checkpoint(checkpoint.load(resume), resume,
                                     (SMOKE if args.smoke else []) + args.overrides)
    else:
        cfg = config_for(args.recipe, args.overrides, args.smoke)
        if resume == LAST:
            resume = cfg.run_dir / "last.pt"
    report = fit(cfg, OVERWRITE if args.overwrite else resume)
    if report.rank == 0:
        print(summary_line(report))
    if report.interrupted:
        print(f"stopped by signal {report.signal}; resume with --resume "
              f"{cfg.run_dir / 'last.pt'}", file=sys.stderr)
        return 128 + int(report.signal or 2)
    return 0


def _eval(args) -> int:
    from ..train.runs import evaluate_run

    evaluate_run(args.path, args.overrides, args.batches, args.smoke, args.neurobench)
    return 0


def _recipes(args) -> int:
    print(f"{'recipe':<34}{'model':<18}{'neuron':<7}{'T':>3}  {'dataset':<13}{'paper %':>8}")
    for name in list_recipes():
        c = config_for(name, [], False)
        paper = f"{c.paper_accuracy:.2f}" if c.paper_accuracy is not None else "-"
        print(f"{name:<34}{c.model:<18}{c.neuron:<7}{c.T:>3}  {c.data.dataset:<13}{paper:>8}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train a recipe (no recipe: the digits QIF vs LIF demo)",
                       description="Train from a recipe. Without a recipe (and without --resume) "
                                   "runs the digits demo: QIF and LIF convnets, then a table.")
    p.add_argument("recipe", nargs="?", help="shipped recipe name or YAML path (see `quadfire recipes`)")
    p.add_argument("--resume", nargs="?", const=LAST, default=None, metavar="CHECKPOINT",
                   help="continue from CHECKPOINT (default: <run_dir>/last.pt of this recipe); "
                        "'auto': continue <run_dir>/last.pt if it exists, else start the run "
                        "(for every torchrun launch: a restarted worker group carries on)")
    common_options(p)
    overwrite_option(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint: accuracy, firing rates, SOPs, energy")
    p.add_argument("path", help="a run directory or a checkpoint file")
    p.add_argument("--batches", type=int_in(1, 1 << 30), default=None,
                   help="limit the test batches measured")
    p.add_argument("--neurobench", action="store_true",
                   help="also compute NeuroBench's metrics with the neurobench package, beside "
                        "quadfire's (pip install 'quadfire[neurobench]'; docs/analysis.md)")
    common_options(p)
    p.set_defaults(func=_eval)

    p = sub.add_parser("recipes", help="list the shipped recipes")
    p.set_defaults(func=_recipes)
