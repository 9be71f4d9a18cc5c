"""``quadfire train``, ``eval`` and ``recipes``.

``quadfire train`` takes one recipe (a shipped name or a YAML path); a setting's name alone
(``digits``, the stem of its ``-qif``/``-lif`` twins) is refused with the twins' names, since
training both is a study (``quadfire compare``/``study``). The digits demo is ``quadfire demo``
(`quadfire.cli.demo`).

Exit codes: 0 done; 2 a user's mistake (one line on stderr); 128 + N stopped by signal N
(130 Ctrl-C, 143 SIGTERM) after writing the checkpoint.
"""
from __future__ import annotations

import sys

from ..errors import ConfigError
from ..train import checkpoint
from ..train.config import AUTO, OVERWRITE, config_from_checkpoint
from ..train.recipes import SMOKE, config_for, find_recipe, list_recipes, twins
from .args import common_options, int_in, overwrite_option

LAST = "last"    # bare --resume: this recipe's <run_dir>/last.pt, which must exist


def _recipe(name: str) -> str:
    """`name` if it is a recipe; a setting's name alone is refused with its twins' names."""
    try:
        find_recipe(name)
    except ConfigError as missing:
        try:
            pair = twins(name)
        except ConfigError:
            raise missing from None
        qif, lif = (p.stem for p in pair.values())
        raise ConfigError(f"{name!r} is a setting with two recipes, {qif} and {lif}: train one "
                          f"(quadfire train {qif}), or both with quadfire compare {name}") from None
    return name


def _train(args) -> int:
    from ..train.engine import fit
    from ..train.report import summary_line

    if args.recipe is None and args.resume is None:
        raise ConfigError("name a recipe: quadfire train RECIPE (quadfire recipes lists them; "
                          "quadfire demo runs the digits demo)")
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
        cfg = config_for(_recipe(args.recipe), args.overrides, args.smoke)
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
    """Each recipe with the figure it is measured against and whose figure that is: the QIF
    paper's for its own settings, another work's network (an IF, LIF or PLIF one) elsewhere."""
    print(f"{'recipe':<34}{'model':<18}{'neuron':<7}{'T':>3}  {'dataset':<20}"
          f"{'reference %':>11}  whose figure (recipe's paper_reference)")
    for name in list_recipes():
        c = config_for(name, [], False)
        figure = f"{c.paper_accuracy:.2f}" if c.paper_accuracy is not None else "-"
        print(f"{name:<34}{c.model:<18}{c.neuron:<7}{c.T:>3}  {c.data.dataset:<20}"
              f"{figure:>11}  {c.paper_reference or '-'}")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train a recipe (quadfire recipes lists them)",
                       description="Train one recipe into <out_dir>/<recipe>-s<seed>. A "
                                   "setting's two twins are trained by quadfire compare, the "
                                   "digits demo by quadfire demo.")
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
    common_options(p, smoke="measure on random inputs of the run's shape instead of its test "
                            "set (no dataset needed)")
    p.set_defaults(func=_eval)

    p = sub.add_parser("recipes", help="list the shipped recipes, each with the published figure "
                                       "it is measured against and whose figure that is")
    p.set_defaults(func=_recipes)
