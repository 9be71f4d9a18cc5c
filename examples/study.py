"""A study from the Python API: train neuron variants on one setting over the same seeds and
budget, then read the table and the plots it writes (what `quadfire study` does).

    python examples/study.py                     # QIF vs LIF vs PLIF on the bundled digits
    python examples/study.py --fashion           # the same on Fashion-MNIST (`make fmnist`)

Everything lands in the study folder (default runs/example-study): one run directory per
variant and seed, study.md and study.json with the table, accuracy.png (test accuracy per
epoch) and firing_rates.png (firing rate per layer). A second call reuses finished runs.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from quadfire.analysis.study import format_table
from quadfire.train.study import run_study


def main(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fashion", action="store_true",
                   help="Fashion-MNIST (recipe fmnist-csnn-t4) instead of the digits")
    p.add_argument("--variants", nargs="+", default=["qif", "lif-tau2", "plif"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--out", default="runs/example-study")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="any recipe setting, as on the command line (e.g. data.batch_size=256)")
    args = p.parse_args(argv)

    setting = "fmnist-csnn-t4" if args.fashion else "digits"
    # Overrides are the same `key=value` strings as `quadfire study --set`; every variant and
    # seed gets them, so the comparison stays fair.
    overrides = [f"epochs={args.epochs}", f"out_dir={args.out}", "progress=false",
                 *args.overrides]
    study = run_study(setting, args.variants, args.seeds, overrides,
                      folder=Path(args.out) / f"study-{setting}")
    print(format_table(study))
    for run in study.runs:  # each RunResult holds its curve and per-layer rates too
        print(f"{run.variant} seed {run.seed}: accuracy per epoch {run.curve}")
    print("figures:", *sorted(str(f) for f in study.folder.glob("*.png")))
    return study


if __name__ == "__main__":
    main()
