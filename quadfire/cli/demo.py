"""``quadfire demo`` (what `make demo` runs): the digits demo, a study (`quadfire.cli.study`) of
the QIF convnet and its LIF twin, one seed each, then the table.

The demo writes to its own folder, ``runs/demo/`` (``<out_dir>/demo`` under ``--set
out_dir=...``), and its runs are scratch runs, so running it again retrains and replaces them
while a real run elsewhere is never touched.
"""
from __future__ import annotations

from pathlib import Path

from .args import common_options
from .study import study_command

SETTING = "digits"
FOLDER = "demo"  # under out_dir (default runs/demo); scratch runs: reruns replace them


def _demo(args) -> int:
    from ..train.recipes import config_for

    folder = Path(config_for(None, args.overrides).out_dir) / FOLDER
    return study_command(SETTING, ["qif", "lif"], [0], args.overrides, args.smoke,
                         title="digits demo", scratch=True, folder=folder)


def add_commands(sub) -> None:
    p = sub.add_parser("demo", help="the digits demo: a QIF and a LIF convnet on the bundled "
                                    "8x8 digits, then a table (runs/demo)",
                       description="Train the digits convnet once with QIF and once with LIF "
                                   "(seed 0), print the study table and write it with its "
                                   "plots to runs/demo (replaced on every run).")
    common_options(p)
    p.set_defaults(func=_demo)
