"""``quadfire train``, ``eval``, ``recipes`` and ``compare``.

``quadfire train`` with no recipe is the digits demo: the QIF convnet and its LIF twin, one
seed each, then a table of test accuracy and mean firing rate. The demo writes to its own
folder, ``runs/demo/``, and its runs are scratch runs, so running it again replaces them
(`make demo` runs it every time) while a real run elsewhere is never touched.

Exit codes: 0 done; 2 a user's mistake (one line on stderr); 128 + N stopped by signal N
(130 Ctrl-C, 143 SIGTERM) after writing the checkpoint.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from ..bench.args import int_in
from ..errors import CheckpointError, ConfigError
from ..train import checkpoint, rundir
from ..train.config import load_config
from ..train.recipes import SMOKE, config_for, list_recipes, twins

DEMO = "digits"
DEMO_OUT = "runs/demo"  # the demo's own folder (its runs are scratch runs: reruns replace them)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (dotted keys for sections, e.g. data.batch_size=32)")
    p.add_argument("--download", dest="overrides", action="append_const",
                   const="data.download=true",
                   help="fetch the dataset if missing (CIFAR-10/100; same as --set data.download=true)")
    p.add_argument("--smoke", action="store_true",
                   help="2 training steps on generated data of the recipe's shape (no dataset needed)")


def _overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run that already exists in the run directory (its last.pt, "
                        "metrics.csv, report.json and tb/ are deleted once the new run has "
                        "started)")


def _train(args) -> int:
    from ..train.engine import fit
    from ..train.report import summary_line

    if args.recipe is None and args.resume is None:
        return _compare_run(DEMO, [0], args.overrides, args.smoke, title="digits demo",
                            demo=True, overwrite=args.overwrite)
    resume = args.resume
    if args.recipe is None:
        # Resuming without a recipe: the checkpoint carries its resolved config.
        if resume == "auto":
            raise ConfigError("--resume without a recipe needs the checkpoint path, e.g. "
                              "--resume runs/<run>/last.pt")
        saved = checkpoint.load(resume).get("config")
        if not isinstance(saved, dict):
            raise CheckpointError(f"checkpoint {resume} holds no run config; resume it with "
                                  f"its recipe: quadfire train RECIPE --resume {resume}")
        cfg = load_config(saved, (SMOKE if args.smoke else []) + args.overrides)
    else:
        cfg = config_for(args.recipe, args.overrides, args.smoke)
        if resume == "auto":
            resume = cfg.run_dir / "last.pt"
    report = fit(cfg, resume=resume, smoke=args.smoke, overwrite=args.overwrite)
    if report["rank"] == 0:
        print(summary_line(report))
    if report["interrupted"]:
        print(f"stopped by signal {report['signal']}; resume with --resume "
              f"{cfg.run_dir / 'last.pt'}", file=sys.stderr)
        return 128 + int(report["signal"] or 2)
    return 0


def _eval(args) -> int:
    from ..train.runs import evaluate_run

    evaluate_run(args.path, args.overrides, args.batches, args.smoke)
    return 0


def _recipes(args) -> int:
    print(f"{'recipe':<34}{'model':<18}{'neuron':<7}{'T':>3}  {'dataset':<11}{'paper %':>8}")
    for name in list_recipes():
        c = config_for(name, [], False)
        paper = f"{c.paper_accuracy:.2f}" if c.paper_accuracy is not None else "-"
        print(f"{name:<34}{c.model:<18}{c.neuron:<7}{c.T:>3}  {c.data.dataset:<11}{paper:>8}")
    return 0


def _compare(args) -> int:
    if len(set(args.seeds)) != len(args.seeds):
        raise ConfigError(f"--seeds must be distinct (each seed is one run directory), got "
                          f"{args.seeds}")
    return _compare_run(args.recipe, args.seeds, args.overrides, args.smoke,
                        overwrite=args.overwrite)


def _compare_run(recipe, seeds: list[int], overrides: list[str], smoke: bool,
                 title: str | None = None, demo: bool = False, overwrite: bool = False) -> int:
    """Train each twin (QIF, LIF) once per seed and print mean +- std of accuracy and rate.
    The demo's runs go to DEMO_OUT (unless out_dir is set) and are scratch runs."""
    from ..train.engine import fit

    base = {"out_dir": DEMO_OUT} if demo else {}
    configs = [(neuron, config_for(path, overrides, smoke, extra={**base, "seed": seed}))
               for neuron, path in twins(recipe).items() for seed in seeds]
    for _, cfg in configs:  # refuse before training any twin, not half-way through
        rundir.check_free(cfg.run_dir, overwrite=overwrite)
    results: dict[str, list[dict]] = {}
    for neuron, cfg in configs:
        report = fit(cfg, smoke=smoke, overwrite=overwrite, scratch=demo)
        if report["interrupted"]:
            print(f"stopped by signal {report['signal']} during {cfg.run_id}", file=sys.stderr)
            return 128 + int(report["signal"] or 2)
        results.setdefault(neuron, []).append(report)
    if report["rank"] != 0:  # under torchrun, rank 0 alone prints and writes the table
        return 0
    print(format_table(results, title or f"compare {recipe}, seeds {seeds}"))
    out = Path(cfg.out_dir) / f"compare-{cfg.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({n: [{k: r.get(k) for k in ("run", "accuracy", "firing_rate",
                                                           "paper_accuracy")} for r in rs]
                               for n, rs in results.items()}, indent=1))
    return 0


def _mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.4g}"
    return f"{statistics.mean(values):.4g} +- {statistics.stdev(values):.2g}"


def format_table(results: dict[str, list[dict]], title: str) -> str:
    """neuron | test accuracy % | mean firing rate | paper %, mean +- std over seeds."""
    lines = [title, f"{'neuron':<8}{'test acc %':>18}{'firing rate':>20}{'paper %':>10}"]
    for neuron, runs in results.items():
        acc = _mean_std([r["accuracy"] for r in runs])
        rate = _mean_std([r.get("firing_rate", float("nan")) for r in runs])
        paper = runs[0].get("paper_accuracy")
        lines.append(f"{neuron.upper():<8}{acc:>18}{rate:>20}"
                     f"{(f'{paper:.2f}' if paper is not None else '-'):>10}")
    return "\n".join(lines)


def add_commands(sub) -> None:
    p = sub.add_parser("train", help="train a recipe (no recipe: the digits QIF vs LIF demo)",
                       description="Train from a recipe. Without a recipe (and without --resume) "
                                   "runs the digits demo: QIF and LIF convnets, then a table.")
    p.add_argument("recipe", nargs="?", help="shipped recipe name or YAML path (see `quadfire recipes`)")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CHECKPOINT",
                   help="continue from CHECKPOINT (default: <run_dir>/last.pt of this recipe)")
    _common(p)
    _overwrite(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint: accuracy, firing rates, SOPs, energy")
    p.add_argument("path", help="a run directory or a checkpoint file")
    p.add_argument("--batches", type=int_in(1, 1 << 30), default=None,
                   help="limit the test batches measured")
    _common(p)
    p.set_defaults(func=_eval)

    p = sub.add_parser("recipes", help="list the shipped recipes")
    p.set_defaults(func=_recipes)

    p = sub.add_parser("compare", help="train a recipe's QIF and LIF twins over the same seeds")
    p.add_argument("recipe", help="a setting (e.g. cifar10-resnet19-t4) or either twin's name/path")
    p.add_argument("--seeds", type=int_in(0, 2**32 - 1), nargs="+", default=[0, 1, 2])
    _common(p)
    _overwrite(p)
    p.set_defaults(func=_compare)

