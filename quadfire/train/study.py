"""``quadfire study``: one recipe, several neuron variants, the same seeds and budget.

Every (variant, seed) run is an ordinary training run (`quadfire.train.engine.fit`) in
``<out_dir>/study-<setting>/<variant>-s<seed>``; the study reads back each run's report.json
and metrics.csv and writes one table (study.md, study.json) and two figures (test accuracy
per epoch with a band over seeds; firing rate per layer). A finished run with the same
resolved settings is reused, an interrupted one is resumed from its last.pt, so a study can be
stopped and restarted without losing work; anything else already in a run directory is an
error before any run starts (`quadfire.train.rundir`), unless `overwrite` asks to replace it.
Scratch studies (smoke runs, the digits demo) retrain every time and replace only scratch
runs. `quadfire compare` is the two-variant case (the QIF twin and the LIF twin), and the
digits demo is that case with one seed.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import math
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import ConfigError, RunDirError
from . import checkpoint, rundir
from .config import OVERWRITE, TrainConfig, check_resume
from .metrics import read_rows
from .recipes import config_for, find_recipe, read_recipe, twins
from .report import write_json
from .typed_yaml import parse_overrides, to_dict
from .variants import STUDY, get_variant

# Fields a study sets per run; a --set of them would make the variants the same run.
# (``--set neuron_kwargs=...`` or ``neuron_kwargs.a=...`` is allowed: it sets the QIF parameters
# every variant starts from, so lif-matched moves along with them.)
PER_RUN = ("neuron", "seed", "run_name")
# Settings that do not change what a run computes (a finished run is reused across them):
# out_dir among them, so that a study's run folders can be moved or published with their
# reports (docs/results/studies) and a study rerun from there reuses them.
COSMETIC = ("progress", "tensorboard", "out_dir")


@dataclass
class RunResult:
    """One finished (variant, seed) run, as read from its run directory."""

    variant: str
    seed: int
    run_dir: str
    neuron: str
    accuracy: float
    best_accuracy: float
    firing_rate: float
    sops: float
    energy_uj: float
    wall_s: float
    reused: bool
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


def _sources(recipe) -> dict[str, Path]:
    """The recipe files variants start from: {"qif": ..., "lif": ...} for a setting with
    twins, else {"qif": recipe} for a lone QIF recipe."""
    try:
        return twins(recipe)
    except ConfigError:
        path = find_recipe(recipe)
        if read_recipe(path).get("neuron", "qif") != "qif":
            raise ConfigError(f"a study starts from a QIF recipe (or a setting with -qif/-lif "
                              f"twins); {path} is not one") from None
        return {"qif": path}


def plan(recipe, variants, seeds, overrides: list[str], smoke: bool = False,
         folder: str | Path | None = None
         ) -> tuple[str, Path, list[tuple[str, int, TrainConfig]]]:
    """(setting, study folder, [(variant, seed, config)]) for the study, without training.
    The folder defaults to ``<out_dir>/study-<setting>``."""
    clash = sorted(set(parse_overrides(overrides)) & set(PER_RUN))
    if clash:
        raise ConfigError(f"a study sets {clash} for every run itself; do not --set them "
                          f"(choose variants with --variants and seeds with --seeds)")
    if not variants or not seeds:
        raise ConfigError("a study needs at least one variant and one seed")
    if len(set(variants)) != len(variants) or len(set(seeds)) != len(seeds):
        raise ConfigError(f"variants and seeds must not repeat, got {variants} and {seeds}")
    sources = _sources(recipe)
    base = config_for(sources["qif"], overrides, smoke)
    # neuron_kwargs (whole or one key of it) sets the QIF parameters the variants start from;
    # passed on to every run it would overwrite each variant's own neuron.
    run_overrides = [o for o in overrides
                     if o.partition("=")[0].strip().split(".")[0] != "neuron_kwargs"]
    if base.neuron != "qif":
        raise ConfigError(f"the study's base recipe {sources['qif']} must use the QIF neuron")
    lif_twin = ("lif", {})
    twin_cfgs = {"qif": base}
    if "lif" in sources:
        twin_cfgs["lif"] = config_for(sources["lif"], run_overrides, smoke)
        lif_twin = (twin_cfgs["lif"].neuron, dict(twin_cfgs["lif"].neuron_kwargs))
    folder = Path(base.out_dir) / f"study-{base.name}" if folder is None else Path(folder)
    runs = []
    for name in variants:
        variant = get_variant(name)
        if variant.twin not in twin_cfgs:
            raise ConfigError(f"variant {name!r} needs the LIF twin of {sources['qif'].name}, "
                              f"which does not exist")
        neuron, kwargs = variant.neuron(dict(base.neuron_kwargs), lif_twin)
        ref = twin_cfgs[variant.twin]
        for seed in seeds:
            extra = {"neuron": neuron, "neuron_kwargs": kwargs, "seed": seed,
                     "paper_accuracy": ref.paper_accuracy, "paper_reference": ref.paper_reference}
            cfg = config_for(sources["qif"], run_overrides, smoke, extra=extra)
            runs.append((name, seed, dataclasses.replace(cfg, out_dir=str(folder),
                                                         run_name=f"{name}-s{seed}")))
    return base.name, folder, runs


def _read_report(path: Path) -> dict:
    """A run's report.json; one that cannot be read or is not a report is a RunDirError."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        problem = f"cannot be read ({type(e).__name__}: {e})"
    else:
        if isinstance(report, dict) and isinstance(report.get("accuracy"), (int, float)) \
                and isinstance(report.get("settings"), dict):
            return report
        problem = "is not a run report (expected a JSON object with accuracy and settings)"
    raise RunDirError(f"{path} {problem}; delete it (the study then resumes or re-evaluates "
                      f"the run from its last.pt), or retrain the run with --overwrite")


def _finished(cfg: TrainConfig) -> dict | None:
    """The report of a finished run of exactly `cfg` in its run directory, None when there is
    none; a finished run of other settings (epochs included) is an error (it is never
    overwritten silently)."""
    path = cfg.run_dir / "report.json"
    if not path.is_file():
        return None
    report = _read_report(path)
    # finished by its own settings: a run of 2 epochs stays finished when 1 or 3 are asked for
    if report.get("interrupted") or report.get("epochs_completed") != report["settings"].get(
            "epochs"):
        return None
    want = {k: v for k, v in to_dict(cfg).items() if k not in COSMETIC}
    have = {k: v for k, v in (report.get("settings") or {}).items() if k not in COSMETIC}
    diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    if diff:
        raise ConfigError(f"{cfg.run_dir} holds a finished run with other settings ({diff}); "
                          f"replace it with --overwrite, or write elsewhere with --set "
                          f"out_dir=DIR")
    return report


def _result(variant: str, seed: int, cfg: TrainConfig, report: dict, reused: bool) -> RunResult:
    metrics = cfg.run_dir / "metrics.csv"
    curve = [r["test_acc"] for r in read_rows(metrics)] if metrics.is_file() else []
    m = report.get("measure") or {}
    return RunResult(
        variant, seed, str(cfg.run_dir), cfg.neuron, float(report["accuracy"]),
        float(report.get("best_accuracy") or report["accuracy"]),
        float(report.get("firing_rate", math.nan)),
        float((m.get("ops") or {}).get("sops", math.nan)),
        float((report.get("energy_pj") or {}).get("total", math.nan)) / 1e6,
        float(report.get("wall_s", math.nan)), reused, curve,
        dict(report.get("layer_firing_rates") or {}), report.get("paper_accuracy"),
        dict(cfg.neuron_kwargs), dict(report.get("layer_labels") or {}))


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _action(cfg: TrainConfig, overwrite: bool, scratch: bool) -> tuple[str, dict | None]:
    """What to do with one run: ("reuse", report), ("resume", None) or ("train", None);
    raises RunDirError / ConfigError for a directory the run may not write to."""
    if scratch:
        rundir.check_free(cfg.run_dir)  # only a scratch run may be replaced without asking
        return "train", None
    if overwrite:
        rundir.check_out_dir(cfg.run_dir)
        return "train", None
    report = _finished(cfg)
    if report is not None:
        return "reuse", report
    ckpt = cfg.run_dir / "last.pt"
    if ckpt.is_file():
        # checked now, not when its turn comes: the study refuses before it trains anything
        check_resume(checkpoint.load(ckpt), cfg, str(ckpt))
        return "resume", None
    rundir.check_free(cfg.run_dir)
    return "train", None


def run_study(recipe, variants=STUDY, seeds=(0, 1, 2), overrides: list[str] | None = None,
              smoke: bool = False, overwrite: bool = False, scratch: bool = False,
              folder: str | Path | None = None, log: Callable[[str], None] = print,
              fit: Callable | None = None, report_only: bool = False) -> StudyResult:
    """Train every (variant, seed) of `recipe` (module docstring for what is reused, resumed
    or refused; every run directory is checked before the first run starts), then write the
    table and figures to the study folder. Stops early, with `interrupted_by` set, when a run
    is interrupted by a signal (rerun the same command to continue). With `report_only`
    nothing is trained: the table and figures come from the finished runs alone, and the
    others are named in `missing` and in study.md."""
    if fit is None:
        from .engine import fit
    if report_only and (overwrite or smoke):
        raise ConfigError("--report trains nothing, so it cannot be combined with --overwrite "
                          "or --smoke")
    scratch = scratch or smoke
    setting, folder, todo = plan(recipe, list(variants), list(seeds), list(overrides or []),
                                 smoke, folder)
    if report_only:
        actions = [("reuse", r) if (r := _finished(cfg)) is not None else ("missing", None)
                   for _, _, cfg in todo]
        if all(a == "missing" for a, _ in actions):
            raise ConfigError(f"no finished run of this study in {folder}; --report writes the "
                              f"table from finished runs (drop it to train them)")
    else:
        actions = [_action(cfg, overwrite, scratch) for _, _, cfg in todo]
    results, spent = [], []
    study = StudyResult(setting, folder, list(variants), list(seeds), results)
    report: dict = {}
    for i, ((name, seed, cfg), (action, report)) in enumerate(zip(todo, actions)):
        if action == "missing":
            log(f"[study {setting}] {i + 1}/{len(todo)} {name} seed {seed}: not finished, left "
                f"out of the report")
            study.missing.append(f"{name}-s{seed}")
            continue
        if action == "reuse":
            log(f"[study {setting}] {i + 1}/{len(todo)} {name} seed {seed}: reusing the finished "
                f"run in {cfg.run_dir}")
            results.append(_result(name, seed, cfg, report, reused=True))
            continue
        left = sum(1 for a, _ in actions[i:] if a != "reuse")
        eta = f", ETA {_clock(statistics.mean(spent) * left)}" if spent else ""
        log(f"[study {setting}] {i + 1}/{len(todo)} {name} seed {seed} "
            f"({cfg.neuron} {cfg.neuron_kwargs}){eta}")
        start = time.time()
        if action == "resume":
            report = fit(cfg, resume=cfg.run_dir / "last.pt")
        else:
            report = fit(dataclasses.replace(cfg, scratch=scratch or cfg.scratch),
                         OVERWRITE if overwrite else None)
        spent.append(time.time() - start)
        if report.get("interrupted"):
            study.interrupted_by = int(report.get("signal") or 2)
            return study
        results.append(_result(name, seed, cfg, report, reused=False))
    if results and (report or {}).get("rank", 0) == 0:
        write_outputs(study)
    return study


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
    rows = summary_rows(study)
    head = "| " + " | ".join(h for _, h in COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[k]) for k, _ in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def write_outputs(study: StudyResult) -> dict[str, Path]:
    """study.json, study.md, accuracy.png and firing_rates.png in the study folder."""
    from ..analysis.study_plots import accuracy_figure, layer_rate_figure
    from ..analysis.figures import save

    folder = study.folder
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    data = {"setting": study.setting, "variants": study.variants, "seeds": study.seeds,
            "missing": study.missing,
            "date": stamp, "machine": platform.processor() or platform.machine(),
            "summary": summary_rows(study), "runs": [dataclasses.asdict(r) for r in study.runs]}
    write_json(folder / "study.json", data)
    curves = {v: [r.curve for r in study.of(v)] for v in study.variants if study.of(v)}
    rates = {v: [r.layer_rates for r in study.of(v)] for v in study.variants if study.of(v)}
    labels = {k: v for r in study.runs for k, v in r.layer_labels.items()}
    paths = {"json": folder / "study.json",
             "accuracy": save(accuracy_figure(curves, study.setting), folder / "accuracy.png"),
             "rates": save(layer_rate_figure(rates, study.setting, labels),
                           folder / "firing_rates.png")}
    neurons = "".join(f"- `{r['variant']}`: {r['neuron']} {r['neuron_kwargs']}\n"
                      for r in data["summary"])
    left_out = (f"\nNot finished, left out: {', '.join(study.missing)}.\n" if study.missing
                else "")
    md = (f"# Study: {study.setting}\n\nSeeds {study.seeds}; {stamp}. Mean +- std over seeds; "
          f"SOPs and energy per test sample; wall time per run.\n\n{format_markdown(study)}\n"
          f"{left_out}\nNeurons:\n\n{neurons}\n![test accuracy per epoch](accuracy.png)\n\n"
          f"![firing rate per layer](firing_rates.png)\n")
    (folder / "study.md").write_text(md)
    paths["markdown"] = folder / "study.md"
    return paths
