"""A study's results as data (`RunResult` per run, `StudyResult`), their statistics (mean
+- std over seeds per variant) and how they are shown: the terminal table, study.md and the
study.json object. The figures are in `study_plots`; `quadfire.train.study` runs the study and
writes these files.

Plain data in, text out: nothing here depends on how the runs were produced."""
from __future__ import annotations

import dataclasses
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RunResult:
    """One finished (variant, seed) run, as read from its run directory. The field names are
    the keys of study.json's "runs"."""

    variant: str
    seed: int
    run_dir: str
    neuron: str
    accuracy: float                # final test accuracy, %
    best_accuracy: float
    firing_rate: float
    sops: float                    # synaptic operations per test sample
    energy_uj: float               # per test sample
    wall_s: float
    reused: bool                   # read from an earlier study's run, not trained now
    curve: list[float] = field(default_factory=list)      # test accuracy per epoch
    layer_rates: dict[str, float] = field(default_factory=dict)
    paper_accuracy: float | None = None
    neuron_kwargs: dict = field(default_factory=dict)
    layer_labels: dict[str, str] = field(default_factory=dict)  # "conv1 (body.1)"


@dataclass
class StudyResult:
    setting: str
    folder: Path
    variants: list[str]
    seeds: list[int]
    runs: list[RunResult]
    interrupted_by: int | None = None
    missing: list[str] = field(default_factory=list)  # runs a report left out (not finished)

    def of(self, variant: str) -> list[RunResult]:
        return [r for r in self.runs if r.variant == variant]


def _stats(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if v == v]
    if not finite:
        return math.nan, math.nan
    return statistics.mean(finite), (statistics.stdev(finite) if len(finite) > 1 else 0.0)


def _pm(values: list[float], digits: int = 2) -> str:
    mean, std = _stats(values)
    if mean != mean:
        return "-"
    return f"{mean:.{digits}f}" if len(values) == 1 else f"{mean:.{digits}f} +- {std:.{digits}f}"


def summary_rows(study: StudyResult) -> list[dict]:
    """One row per variant: mean +- std over seeds of every reported quantity."""
    rows = []
    for name in study.variants:
        runs = study.of(name)
        if not runs:
            continue
        rows.append({
            "variant": name, "neuron": runs[0].neuron, "seeds": len(runs),
            "neuron_kwargs": runs[0].neuron_kwargs,
            "accuracy": _pm([r.accuracy for r in runs]),
            "best_accuracy": _pm([r.best_accuracy for r in runs]),
            "firing_rate": _pm([r.firing_rate for r in runs], 4),
            "sops": _pm([r.sops / 1e6 for r in runs], 3),
            "energy_uj": _pm([r.energy_uj for r in runs], 3),
            "wall_s": _pm([r.wall_s for r in runs], 0),
            "paper": "-" if runs[0].paper_accuracy is None else f"{runs[0].paper_accuracy:.2f}",
        })
    return rows


COLUMNS = (("variant", "variant"), ("neuron", "neuron"), ("seeds", "seeds"),
           ("accuracy", "test acc %"),
           ("best_accuracy", "best %"), ("firing_rate", "firing rate"),
           ("sops", "MSOPs/sample"), ("energy_uj", "uJ/sample"), ("wall_s", "wall s/run"),
           ("paper", "reference %"))


def format_table(study: StudyResult, title: str | None = None) -> str:
    """The summary as a fixed-width terminal table (mean +- std over seeds)."""
    rows = summary_rows(study)
    widths = {k: max(len(h), *(len(str(r[k])) for r in rows)) for k, h in COLUMNS}
    lines = [title or f"study {study.setting}, seeds {study.seeds}",
             "  ".join(h.ljust(widths[k]) for k, h in COLUMNS)]
    lines += ["  ".join(str(r[k]).ljust(widths[k]) for k, _ in COLUMNS) for r in rows]
    return "\n".join(lines)


def format_markdown(study: StudyResult) -> str:
    """The summary as a markdown table."""
    rows = summary_rows(study)
    head = "| " + " | ".join(h for _, h in COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[k]) for k, _ in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def study_json(study: StudyResult, stamp: str, machine: str) -> dict:
    """study.json: the study's shape, the summary rows and every run's result."""
    return {"setting": study.setting, "variants": study.variants, "seeds": study.seeds,
            "missing": study.missing, "date": stamp, "machine": machine,
            "summary": summary_rows(study), "runs": [dataclasses.asdict(r) for r in study.runs]}


def study_markdown(study: StudyResult, stamp: str) -> str:
    """study.md: the table, the runs left out, each variant's neuron and the two figures
    (accuracy.png, firing_rates.png beside it)."""
    neurons = "".join(f"- `{r['variant']}`: {r['neuron']} {r['neuron_kwargs']}\n"
                      for r in summary_rows(study))
    left_out = (f"\nNot finished, left out: {', '.join(study.missing)}.\n" if study.missing
                else "")
    return (f"# Study: {study.setting}\n\nSeeds {study.seeds}; {stamp}. Mean +- std over seeds; "
            f"SOPs and energy per test sample; wall time per run.\n\n{format_markdown(study)}\n"
            f"{left_out}\nNeurons:\n\n{neurons}\n![test accuracy per epoch](accuracy.png)\n\n"
            f"![firing rate per layer](firing_rates.png)\n")
