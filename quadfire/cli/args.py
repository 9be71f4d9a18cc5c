"""The command line's argument types and the options several commands share.

Every value is checked by argparse, before any work starts, and a bad one is rejected in one
line that names the option, what it expects and what it got: ``quadfire bench neurons: error:
argument --neurons: expected an integer in 1..268435456, got '0' (see quadfire bench neurons
--help)``.
"""
from __future__ import annotations

import argparse
import math
import os
from pathlib import Path


class Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (no usage block) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def int_in(lo: int, hi: int):
    """An argparse type: an integer in lo..hi."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"expected an integer in {lo}..{hi}, got {text!r}")
        return value
    parse.__name__ = "int"  # argparse names the type in some messages
    return parse


def float_in(lo: float = -math.inf, hi: float = math.inf, lo_open: bool = False,
             hi_open: bool = False):
    """An argparse type: a finite float in [lo, hi] (open at either end on request)."""
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"
    what = "a finite number" + ("" if (lo, hi) == (-math.inf, math.inf) else
                                f" in {left}{lo:g}, {hi:g}{right}")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (value > lo if lo_open else value >= lo) and \
            (value < hi if hi_open else value <= hi)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    parse.__name__ = "float"
    return parse


def _path_errors(check):
    """A path check whose OSError (a name too long, a loop of links) names the path."""
    def wrapped(text: str) -> str:
        try:
            return check(text)
        except OSError as e:
            raise argparse.ArgumentTypeError(f"{text[:80]!r}: {e.strerror or e}") from None
    wrapped.__name__ = check.__name__
    wrapped.__doc__ = check.__doc__
    return wrapped


def _check_writable(folder: Path, text: str) -> None:
    """`folder` (where the output goes) or its nearest existing ancestor must be a writable
    folder, so the output can be written once the work is done."""
    base = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    if not base.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} lies inside {str(base)!r}, which is a file, "
                                         f"not a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write under {str(base)!r} (permission denied)")


@_path_errors
def output_file(text: str) -> str:
    """An argparse type: a file to write (its folders are created); not an existing folder."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"expected a file path, got {text!r}")
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; expected a file to write")
    _check_writable(path.parent, text)
    return text


FIGURE_FORMATS = (".png", ".pdf", ".svg")


@_path_errors
def figure_file(text: str) -> str:
    """`output_file` whose suffix names a figure format matplotlib writes (.png, .pdf, .svg)."""
    output_file(text)
    if Path(text).suffix.lower() not in FIGURE_FORMATS:
        raise argparse.ArgumentTypeError(f"expected a figure file ending in "
                                         f"{', '.join(FIGURE_FORMATS)}, got {text!r}")
    return text


@_path_errors
def output_file_in_folder(text: str) -> str:
    """`output_file`, in a folder that exists already (for writers that do not create it)."""
    output_file(text)
    parent = Path(text).parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r}: the folder {str(parent)!r} does not exist")
    return text


@_path_errors
def output_dir(text: str) -> str:
    """An argparse type: a folder to write into (created if missing); not an existing file."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"expected a folder path, got {text!r}")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; expected a folder to write into")
    _check_writable(path, text)
    return text


def shape(text: str) -> tuple[int, ...]:
    """An argparse type: a tensor shape such as ``3,32,32`` (1 to 4 positive integers)."""
    parts = text.split(",")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if not 1 <= len(dims) <= 4 or not all(1 <= d <= 1 << 16 for d in dims):
        raise argparse.ArgumentTypeError(f"expected 1 to 4 comma-separated positive integers "
                                         f"like 3,32,32, got {text!r}")
    return dims


SMOKE_TRAINING = "2 training steps on generated data of the recipe's shape (no dataset needed)"


def common_options(p: argparse.ArgumentParser, smoke: str = SMOKE_TRAINING) -> None:
    """--set, --download, --quiet and --smoke (`smoke` is its help): the options of every
    command that trains or evaluates a recipe (train, eval, study, compare, demo)."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (dotted keys for sections, e.g. data.batch_size=32)")
    p.add_argument("--download", dest="overrides", action="append_const",
                   const="data.download=true",
                   help="fetch the dataset if missing (CIFAR-10/100; same as --set data.download=true)")
    p.add_argument("--quiet", dest="overrides", action="append_const", const="progress=false",
                   help="no progress bar and no per-epoch line (same as --set progress=false)")
    p.add_argument("--smoke", action="store_true", help=smoke)


def overwrite_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace a run that already exists in the run directory (its last.pt, "
                        "metrics.csv, report.json and tb/ are deleted once the new run has "
                        "started)")
