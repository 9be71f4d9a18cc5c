"""``quadfire eval``: reload a checkpoint, measure test accuracy, per-layer firing rates, SOPs
and energy, print them and store them under "eval" in the run's report.json."""
from __future__ import annotations

import json
from pathlib import Path

from ..analysis.monitor import format_measure, measure
from ..data import build_loaders, synthetic_loaders
from . import checkpoint
from .config import load_config
from .distributed import DistInfo, pick_device
from .engine import evaluate, make_model
from .report import write_json

SMOKE = ["data.workers=0"]


def evaluate_checkpoint(path: str | Path, overrides: list[str] | None = None,
                        max_batches: int | None = None, smoke: bool = False) -> dict:
    """Evaluate ``path`` (a run directory holding last.pt, or a checkpoint file)."""
    path = Path(path)
    ckpt_path = path / "last.pt" if path.is_dir() else path
    state = checkpoint.load(ckpt_path)
    cfg = load_config(state["config"], (SMOKE if smoke else []) + list(overrides or []))
    info = DistInfo(device=pick_device(cfg.device, 0))
    loaders = synthetic_loaders if smoke else build_loaders
    _, test_loader, data_info = loaders(cfg.data)
    model = make_model(cfg, data_info)
    model.load_state_dict(state["model"])
    model.to(info.device)
    test = evaluate(model, test_loader, info, cfg.amp, max_batches)
    m = measure(model, test_loader, max_batches=max_batches, device=info.device)
    result = {"checkpoint": str(ckpt_path), "epoch": state["epoch"], "accuracy": test["acc"],
              "test_loss": test["loss"], "samples": test["samples"],
              "paper_accuracy": cfg.paper_accuracy, "firing_rate": m["firing_rate"],
              "layer_firing_rates": {k: v["firing_rate"] for k, v in m["layers"].items()},
              "energy_pj": m["energy_pj"], "ops": m["ops"], "measure": m}
    paper = f" (paper: {cfg.paper_accuracy:.2f}%)" if cfg.paper_accuracy is not None else ""
    print(f"{cfg.run_id} after {state['epoch']} epochs: test accuracy {test['acc']:.2f}% on "
          f"{test['samples']} samples{paper}, mean firing rate {m['firing_rate']:.4f}")
    print(format_measure(m))
    report_path = ckpt_path.parent / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    report["eval"] = result
    write_json(report_path, report)
    return result
