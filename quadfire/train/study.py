"""``quadfire study``: one recipe, several neuron variants, the same seeds and budget.

Every (variant, seed) run is an ordinary training run (`quadfire.train.engine.fit`) in
``<out_dir>/study-<setting>/<variant>-s<seed>``; the study reads back each run's report.json
(`quadfire.train.report.RunReport`) and metrics.csv and writes one table (study.md,
study.json) and two figures (test accuracy per epoch with a band over seeds; firing rate per
layer). This module plans and executes; the statistics, the table and the figures are
`quadfire.analysis.study` and `quadfire.analysis.study_plots`. A finished run with the same
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
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

from ..analysis.study import RunResult, StudyResult, study_json, study_markdown
from ..errors import ConfigError, RunDirError
from . import checkpoint, rundir
from .config import OVERWRITE, TrainConfig, check_resume, load_config
from .metrics import read_rows
from .recipes import config_for, find_recipe, read_recipe, twins
from .report import RunReport, read_report, write_json
from .typed_yaml import parse_overrides, to_dict
from .variants import STUDY, get_variant

# Fields a study sets per run; a --set of them would make the variants the same run.
# (``--set neuron_kwargs=...`` or ``neuron_kwargs.a=...`` is allowed: it sets the QIF parameters
# every variant starts from, so lif-matched moves along with them.)
PER_RUN = ("neuron", "seed", "run_name")
# Settings that do not change what a run computes (a finished run is reused across them):
# out_dir among them, so that a study's run folders can be moved or published with their
# reports (docs/results/studies) and a study rerun from there reuses them.
COSMETIC = ("progress", "tensorboard", "out_dir", "checkpoint_every", "scratch")


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


def _finished(cfg: TrainConfig) -> RunReport | None:
    """The report of a finished run of exactly `cfg` in its run directory, None when there is
    none; a finished run of other settings (epochs included) is an error (it is never
    overwritten silently), and so is a report that cannot be read."""
    try:
        report = read_report(cfg.run_dir)
    except RunDirError as e:
        raise RunDirError(f"{e}; delete it (the study then resumes or re-evaluates the run "
                          f"from its last.pt), or retrain the run with --overwrite") from None
    if report is None or not report.finished:
        return None
    want = {k: v for k, v in to_dict(cfg).items() if k not in COSMETIC}
    try:  # through the config type, so settings added since the run was trained read as
        # their defaults (a run of an earlier version is still this run)
        saved = to_dict(load_config(report.settings))
    except ConfigError:
        saved = report.settings
    have = {k: v for k, v in saved.items() if k not in COSMETIC}
    diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    if diff:
        raise ConfigError(f"{cfg.run_dir} holds a finished run with other settings ({diff}); "
                          f"replace it with --overwrite, or write elsewhere with --set "
                          f"out_dir=DIR")
    return report


def _result(variant: str, seed: int, cfg: TrainConfig, report: RunReport,
            reused: bool) -> RunResult:
    metrics = cfg.run_dir / "metrics.csv"
    curve = [r["test_acc"] for r in read_rows(metrics)] if metrics.is_file() else []
    nan = float("nan")
    return RunResult(
        variant=variant, seed=seed, run_dir=str(cfg.run_dir), neuron=cfg.neuron,
        accuracy=report.accuracy, best_accuracy=report.best,
        firing_rate=nan if report.firing_rate is None else report.firing_rate,
        sops=report.sops, energy_uj=report.energy_uj,
        wall_s=nan if report.wall_s is None else report.wall_s, reused=reused, curve=curve,
        layer_rates=dict(report.layer_firing_rates or {}),
        paper_accuracy=report.paper_accuracy, neuron_kwargs=dict(cfg.neuron_kwargs),
        layer_labels=dict(report.layer_labels or {}))


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _action(cfg: TrainConfig, overwrite: bool, scratch: bool
            ) -> tuple[str, RunReport | None]:
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
    report: RunReport | None = None
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
        if report.interrupted:
            study.interrupted_by = int(report.signal or 2)
            return study
        results.append(_result(name, seed, cfg, report, reused=False))
    if results and (report is None or report.rank == 0):
        write_outputs(study)
    return study


def write_outputs(study: StudyResult) -> dict[str, Path]:
    """study.json, study.md, accuracy.png and firing_rates.png in the study folder
    (`quadfire.analysis.study` and `study_plots` make them)."""
    from ..analysis.figures import save
    from ..analysis.study_plots import accuracy_figure, layer_rate_figure

    folder = study.folder
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    write_json(folder / "study.json",
               study_json(study, stamp, platform.processor() or platform.machine()))
    curves = {v: [r.curve for r in study.of(v)] for v in study.variants if study.of(v)}
    rates = {v: [r.layer_rates for r in study.of(v)] for v in study.variants if study.of(v)}
    labels = {k: v for r in study.runs for k, v in r.layer_labels.items()}
    paths = {"json": folder / "study.json",
             "accuracy": save(accuracy_figure(curves, study.setting), folder / "accuracy.png"),
             "rates": save(layer_rate_figure(rates, study.setting, labels),
                           folder / "firing_rates.png")}
    (folder / "study.md").write_text(study_markdown(study, stamp))
    paths["markdown"] = folder / "study.md"
    return paths
