"""``quadfire study`` (neuron variants on one recipe) and ``quadfire compare`` (its two-variant
case: the QIF twin against the LIF twin). See `quadfire.train.study`."""
from __future__ import annotations

import sys

from .args import common_options, int_in, overwrite_option


def study_command(recipe, variants: list[str], seeds: list[int], overrides: list[str],
                  smoke: bool, overwrite: bool = False, title: str | None = None,
                  scratch: bool = False, folder=None, report_only: bool = False) -> int:
    from ..analysis.study import format_table
    from ..train.study import run_study

    study = run_study(recipe, variants, seeds, overrides, smoke, overwrite, scratch, folder,
                      log=lambda line: print(line, file=sys.stderr, flush=True),
                      report_only=report_only)
    if study.interrupted_by is not None:
        print(f"stopped by signal {study.interrupted_by}; rerun the same command to continue "
              f"(finished runs are reused, the interrupted one resumes)", file=sys.stderr)
        return 128 + study.interrupted_by
    if not study.runs:
        return 0
    print(format_table(study, title))
    if (study.folder / "study.md").is_file():
        print(f"wrote {study.folder / 'study.md'} (+ study.json, accuracy.png, firing_rates.png)")
    return 0


def _study(args) -> int:
    from ..train.variants import STUDY

    return study_command(args.recipe, args.variants or list(STUDY), args.seeds, args.overrides,
                         args.smoke, args.overwrite, report_only=args.report)


def _compare(args) -> int:
    return study_command(args.recipe, ["qif", "lif"], args.seeds, args.overrides, args.smoke,
                         args.overwrite, title=f"compare {args.recipe}, seeds {args.seeds}",
                         report_only=args.report)


def _variant(name: str) -> str:
    """argparse type of --variants: a known variant or neuron, else one line naming them."""
    import argparse

    from ..errors import ConfigError
    from ..train.variants import get_variant

    try:
        get_variant(name)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return name


def add_commands(sub) -> None:
    from ..train.variants import STUDY, VARIANTS

    for name, helptext in (
            ("study", "train a recipe with several neuron variants over the same seeds and budget"),
            ("compare", "train a recipe's QIF and LIF twins over the same seeds (a 2-variant study)")):
        p = sub.add_parser(name, help=helptext, description=helptext + ". Finished runs are "
                           "reused, interrupted ones resumed.")
        p.add_argument("recipe", help="a setting (e.g. digits) or either twin's name/path")
        if name == "study":
            p.add_argument("--variants", nargs="+", type=_variant, metavar="VARIANT",
                           help=f"neuron variants (default: {' '.join(STUDY)}); one of "
                                f"{', '.join(VARIANTS)}, or any neuron name or import path "
                                f"'package.module:Class' (that neuron with its defaults)")
        p.add_argument("--seeds", type=int_in(0, 2**32 - 1), nargs="+", default=[0, 1, 2])
        common_options(p)
        overwrite_option(p)
        p.add_argument("--report", action="store_true",
                       help="train nothing: write the table and figures from the runs already "
                            "finished (the others are named and left out)")
        p.set_defaults(func=_study if name == "study" else _compare)
