"""The run's final ``report.json``: achieved vs the paper's accuracy, per-layer firing rates,
op counts / energy (`quadfire.analysis.monitor.measure`) and the resolved settings."""
from __future__ import annotations

import json
import math
from pathlib import Path

from ..analysis.monitor import measure
from .typed_yaml import to_dict


def build_report(run, test: dict, best: float, *, stopped: bool, stop_signal, epochs_done: int,
                 wall_s: float, smoke: bool, replica_digests: list[str], scratch: bool = False,
                 skipped_steps: int = 0) -> dict:
    cfg = run.cfg
    report = {
        "run": cfg.run_id, "recipe": cfg.name, "model": cfg.model, "neuron": cfg.neuron,
        "T": cfg.T, "dataset": run.info.name,
        "accuracy": test["acc"], "best_accuracy": best,
        "paper_accuracy": cfg.paper_accuracy, "paper_reference": cfg.paper_reference,
        "accuracy_minus_paper": (test["acc"] - cfg.paper_accuracy
                                 if cfg.paper_accuracy is not None else None),
        "test_loss": test["loss"], "epochs_completed": epochs_done, "epochs": cfg.epochs,
        "interrupted": stopped, "signal": stop_signal, "smoke": smoke, "scratch": scratch,
        "skipped_steps": skipped_steps,
        "world_size": run.dist.world_size, "rank": run.dist.rank,
        "replica_digests": replica_digests,
        "replicas_identical": len(set(replica_digests)) == 1,
        "parameters": sum(p.numel() for p in run.model.parameters()),
        "wall_s": wall_s,
    }
    if not stopped:
        # On the test loader: this rank's shard under DDP.
        batches = 1 if smoke else (cfg.measure_batches or None)
        m = measure(run.model, run.test_loader, max_batches=batches, device=run.dist.device)
        report["firing_rate"] = m["firing_rate"]
        report["layer_firing_rates"] = {k: v["firing_rate"] for k, v in m["layers"].items()}
        report["layer_labels"] = {k: v["label"] for k, v in m["layers"].items()}
        report["energy_pj"] = m["energy_pj"]
        report["measure"] = m
    report["settings"] = to_dict(cfg)
    return report


def write_report(run, test: dict, best: float, **kw) -> dict:
    """Build the report; rank 0 writes it to ``<run_dir>/report.json``."""
    report = build_report(run, test, best, **kw)
    if run.dist.main:
        write_json(Path(run.cfg.run_dir) / "report.json", report)
    return report


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


def summary_line(report: dict) -> str:
    paper = report.get("paper_accuracy")
    acc = report["accuracy"]
    text = f"{report['run']}: test accuracy {acc:.2f}%"
    if paper is not None:
        text += f" (paper: {paper:.2f}%, {report['paper_reference']})"
    if "firing_rate" in report:
        text += f", mean firing rate {report['firing_rate']:.4f}"
    return text
