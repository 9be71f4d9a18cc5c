"""The run's record, ``report.json``: `RunReport`, the one place its schema is written down,
written (`write_report`, `record_eval`) and read back (`read_report`).

A run writes it when it ends (finished or stopped by a signal); `quadfire eval` adds its
result under ``eval``; `quadfire study` reads it to reuse finished runs and to build its table;
the run directory's guard (`rundir`) reads it to say what a directory holds. The keys on disk
are the field names, plus two derived from them (``accuracy_minus_paper``,
``replicas_identical``); reports written by earlier versions (no ``scratch``: the ``smoke``
flag says it) load too.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..analysis.monitor import measure
from ..errors import RunDirError
from .typed_yaml import to_dict

REPORT_NAME = "report.json"


@dataclass(frozen=True)
class RunReport:
    """What one run achieved and how it ran (docs/training.md, "Run directory")."""

    accuracy: float               # final test accuracy, % (the last epoch's evaluation; NaN
                                  # when none was evaluated)
    epochs_completed: int
    settings: dict                # the resolved config (`typed_yaml.to_dict`)
    run: str = ""                 # <recipe>-s<seed> or the run_name
    recipe: str = ""
    model: str = ""
    neuron: str = ""
    T: int = 0
    dataset: str = ""
    best_accuracy: float | None = None
    paper_accuracy: float | None = None
    paper_reference: str | None = None
    test_loss: float | None = None
    epochs: int | None = None     # the epochs asked for (settings["epochs"])
    interrupted: bool = False     # stopped by a signal or a dead DataLoader worker
    signal: int | None = None
    smoke: bool = False
    scratch: bool = False         # a later run may replace this one (`rundir`)
    skipped_steps: int = 0        # non-finite steps skipped (nonfinite=skip)
    world_size: int = 1
    rank: int = 0                 # the rank that built this report (rank 0 writes it)
    replica_digests: list = field(default_factory=list)  # SHA-256 of every rank's weights
    parameters: int = 0
    wall_s: float | None = None   # wall time over all resumes
    # from `quadfire.analysis.monitor.measure` of the final model; None when interrupted
    firing_rate: float | None = None
    layer_firing_rates: dict | None = None
    layer_labels: dict | None = None  # each spiking layer's readable name, "conv1 (body.1)"
    energy_pj: dict | None = None
    measure: dict | None = None
    eval: dict | None = None      # `quadfire eval`'s result, once it has run

    @property
    def accuracy_minus_paper(self) -> float | None:
        return None if self.paper_accuracy is None else self.accuracy - self.paper_accuracy

    @property
    def replicas_identical(self) -> bool:
        return len(set(self.replica_digests)) == 1

    @property
    def finished(self) -> bool:
        """Trained to the end of its own settings (a run of 2 epochs stays finished when 1 or
        3 are asked for later)."""
        return not self.interrupted and self.epochs_completed == self.settings.get("epochs")

    @property
    def best(self) -> float:
        """The best test accuracy over epochs (the final one for reports without it)."""
        return self.accuracy if self.best_accuracy is None else self.best_accuracy

    @property
    def sops(self) -> float:
        """Synaptic operations per test sample (NaN when not measured)."""
        return float(((self.measure or {}).get("ops") or {}).get("sops", math.nan))

    @property
    def energy_uj(self) -> float:
        """Energy per test sample in microjoules (NaN when not measured)."""
        return float((self.energy_pj or {}).get("total", math.nan)) / 1e6

    def to_json(self) -> dict:
        """The report.json object: the fields in their order, the derived keys beside the ones
        they come from, and the measurements (and eval) only when present."""
        out = {}
        for name in KEY_ORDER:
            value = getattr(self, name)
            if value is None and name in OPTIONAL:
                continue
            out[name] = value
        return out

    @classmethod
    def from_json(cls, obj, source: str = "report.json") -> "RunReport":
        """A report from its JSON object; one that is not a run report is a RunDirError naming
        `source`. Keys it does not know (the two derived ones) are dropped."""
        if not (isinstance(obj, dict) and "accuracy" in obj
                and (obj["accuracy"] is None or _number(obj["accuracy"]))
                and _number(obj.get("epochs_completed")) and isinstance(obj.get("settings"), dict)):
            raise RunDirError(f"{source} is not a run report (expected a JSON object with "
                              f"accuracy, epochs_completed and settings)")
        values = {k: v for k, v in obj.items() if k in FIELDS}
        if values["accuracy"] is None:  # NaN (no epoch evaluated) is stored as null
            values["accuracy"] = math.nan
        values.setdefault("scratch", bool(obj.get("smoke", False)))  # reports before 'scratch'
        return cls(**values)


FIELDS = [f.name for f in dataclasses.fields(RunReport)]
# report.json's key order (as earlier versions wrote it, so reports diff cleanly)
KEY_ORDER = ("run", "recipe", "model", "neuron", "T", "dataset", "accuracy", "best_accuracy",
             "paper_accuracy", "paper_reference", "accuracy_minus_paper", "test_loss",
             "epochs_completed", "epochs", "interrupted", "signal", "smoke", "scratch",
             "skipped_steps", "world_size", "rank", "replica_digests", "replicas_identical",
             "parameters", "wall_s", "firing_rate", "layer_firing_rates", "layer_labels",
             "energy_pj", "measure",
             "settings", "eval")
DERIVED = ("accuracy_minus_paper", "replicas_identical")  # properties, written, never read
OPTIONAL = ("firing_rate", "layer_firing_rates", "layer_labels", "energy_pj", "measure",
            "eval")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def build_report(run, test: dict, best: float, *, stopped: bool, stop_signal, epochs_done: int,
                 wall_s: float, smoke: bool, replica_digests: list[str], scratch: bool = False,
                 skipped_steps: int = 0) -> RunReport:
    """The report of `run` (an `engine.Run`) whose final evaluation is `test` ({"acc",
    "loss", "samples"}). A finished run is measured once more for its firing rates, op
    counts and energy; that pass takes its accuracy and loss from `test` rather than
    computing them a second time."""
    cfg = run.cfg
    measured = {}
    if not stopped:
        # On the test loader: this rank's shard under DDP.
        batches = 1 if smoke else (cfg.measure_batches or None)
        m = measure(run.model, run.test_loader, max_batches=batches, device=run.dist.device,
                    metrics={"accuracy": test["acc"], "loss": test["loss"]})
        measured = {"firing_rate": m["firing_rate"], "energy_pj": m["energy_pj"], "measure": m,
                    "layer_firing_rates": {k: v["firing_rate"] for k, v in m["layers"].items()},
                    "layer_labels": {k: v["label"] for k, v in m["layers"].items()}}
    return RunReport(
        run=cfg.run_id, recipe=cfg.name, model=cfg.model, neuron=cfg.neuron, T=cfg.T,
        dataset=run.info.name, accuracy=test["acc"], best_accuracy=best,
        paper_accuracy=cfg.paper_accuracy, paper_reference=cfg.paper_reference,
        test_loss=test["loss"], epochs_completed=epochs_done, epochs=cfg.epochs,
        interrupted=stopped, signal=stop_signal, smoke=smoke, scratch=scratch,
        skipped_steps=skipped_steps, world_size=run.dist.world_size, rank=run.dist.rank,
        replica_digests=list(replica_digests),
        parameters=sum(p.numel() for p in run.model.parameters()), wall_s=wall_s,
        settings=to_dict(cfg), **measured)


def write_report(run, test: dict, best: float, **kw) -> RunReport:
    """Build the report (`build_report`); rank 0 writes it to ``<run_dir>/report.json``."""
    report = build_report(run, test, best, **kw)
    if run.dist.main:
        save(report, Path(run.cfg.run_dir))
    return report


def save(report: RunReport, run_dir: Path) -> None:
    write_json(Path(run_dir) / REPORT_NAME, report.to_json())


def report_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / REPORT_NAME


def read_report(run_dir: str | Path) -> RunReport | None:
    """The report in `run_dir`, None when there is none; one that cannot be read or is not a
    run report is a RunDirError naming the file."""
    path = report_path(run_dir)
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunDirError(f"{path} cannot be read ({type(e).__name__}: {e})") from None
    return RunReport.from_json(obj, str(path))


def record_eval(run_dir: str | Path, result: dict) -> None:
    """Store `quadfire eval`'s `result` under ``eval`` in the run's report. A run without a
    report (a checkpoint copied without its folder) gets a report.json holding only that;
    a damaged report is a RunDirError naming it, and is left as it is."""
    path = report_path(run_dir)
    try:
        report = read_report(run_dir)
    except RunDirError:
        try:
            eval_only = list(json.loads(path.read_text())) == ["eval"]
        except (OSError, ValueError, TypeError):
            eval_only = False
        if not eval_only:
            raise
        report = None
    if report is None:
        write_json(path, {"eval": result})
    else:
        save(dataclasses.replace(report, eval=result), Path(run_dir))


def write_json(path: Path, obj: dict) -> None:
    """Write ``obj`` as JSON (NaN/inf as null) through a temporary file and a rename, so a
    reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_finite(obj), indent=1))
    tmp.replace(path)


def _finite(v):
    """NaN/inf are not JSON: store them as null."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return v


def summary_line(report: RunReport) -> str:
    text = f"{report.run}: test accuracy {report.accuracy:.2f}%"
    if report.paper_accuracy is not None:
        text += f" (paper: {report.paper_accuracy:.2f}%, {report.paper_reference})"
    if report.firing_rate is not None:
        text += f", mean firing rate {report.firing_rate:.4f}"
    return text
