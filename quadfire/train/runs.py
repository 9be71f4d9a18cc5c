"""Runs on disk: rebuild a trained model from its run directory (or checkpoint file), the one
way every command (eval, plot, export, analyze) gets at a trained network, and `quadfire eval`.

A checkpoint carries the run's resolved config and the description of its data (class count,
input shape), so the model is rebuilt exactly as it was trained, without reading the dataset
(an ImageNet-style run with 100 class folders comes back with 100 classes).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from ..analysis.monitor import format_measure, measure
from ..analysis.neurobench_metrics import format_comparison, neurobench_metrics, require_neurobench
from ..data import DatasetInfo, build_loaders, dataset_info, synthetic_loaders
from ..errors import CheckpointError, ConfigError
from ..models import load_state
from . import checkpoint
from .config import TrainConfig, config_from_checkpoint
from .distributed import pick_device
from .engine import make_model
from .report import record_eval


class LoadedRun(NamedTuple):
    """A rebuilt run: the model (eval mode, weights loaded, on `device`), its resolved config,
    the description of its data, the checkpoint's contents and its path."""

    model: nn.Module
    cfg: TrainConfig
    info: DatasetInfo
    state: dict
    path: Path


def checkpoint_path(path: str | Path) -> Path:
    """A run directory's last.pt, or `path` itself when it is a file."""
    path = Path(path)
    ckpt = path / "last.pt" if path.is_dir() else path
    if not ckpt.is_file():
        raise CheckpointError(f"checkpoint not found: {ckpt} (expected a run directory with "
                              f"last.pt or a checkpoint file written by `quadfire train`)")
    return ckpt


def run_info(state: dict, cfg: TrainConfig) -> DatasetInfo:
    """The data description the run was trained on (stored in its checkpoint), else the
    dataset's standard one (checkpoints written before it was stored)."""
    saved = state.get("data_info")
    if saved is None:
        return dataset_info(cfg.data, cfg.T)
    try:
        return DatasetInfo(saved["name"], int(saved["num_classes"]),
                           tuple(int(s) for s in saved["step_shape"]),
                           None if saved.get("frames") is None else int(saved["frames"]))
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"the checkpoint's data_info entry is malformed: {saved!r}") from None


def load_run(path: str | Path, overrides: list[str] | None = None,
             device: str | torch.device | None = None) -> LoadedRun:
    """Rebuild the model of the run at `path` from the run's own resolved config (plus
    ``--set`` style `overrides`) and load its weights; any mismatch between the rebuilt model
    and the weights is a CheckpointError naming what differs."""
    ckpt = checkpoint_path(path)
    state = checkpoint.load(ckpt)
    cfg = config_from_checkpoint(state, str(ckpt), overrides)
    info = run_info(state, cfg)
    try:
        model = make_model(cfg, info)
    except ConfigError as e:  # e.g. --set model=... that cannot take the run's inputs
        raise CheckpointError(f"the model of {ckpt} cannot be rebuilt as {cfg.model!r} for its "
                              f"data ({info.num_classes} classes, samples "
                              f"{tuple(info.step_shape)}): {e}") from None
    load_state(model, state["model"], str(ckpt))
    dev = pick_device(cfg.device if device is None else str(device), 0)
    return LoadedRun(model.to(dev).eval(), cfg, info, state, ckpt)


def run_loaders(cfg: TrainConfig, info: DatasetInfo | None = None, smoke: bool = False,
                workers: int | None = None):
    """(train, test) loaders for a trained run: its dataset (whose classes and sample shape
    must still be those the model was built for, `info` from its checkpoint; the number of
    event frames may differ), or with `smoke` random inputs of the run's own shape and class
    count. `workers` overrides data.workers (0: in-process, for analyses that read a few
    batches, where worker start-up is not worth it)."""
    data = cfg.data if workers is None else dataclasses.replace(cfg.data, workers=workers)
    if smoke:
        train, test, _ = synthetic_loaders(data, cfg.T, info=info)
        return train, test
    train, test, found = build_loaders(data, cfg.T)
    if info is not None and (found.num_classes, tuple(found.step_shape)) != (
            info.num_classes, tuple(info.step_shape)):
        for loader in (train, test):
            loader.close()
        raise CheckpointError(
            f"the dataset {cfg.data.dataset!r} under {cfg.data.root!r} now has "
            f"{found.num_classes} classes and samples {tuple(found.step_shape)}, but the run "
            f"was trained on {info.num_classes} classes and samples {tuple(info.step_shape)}")
    return train, test


def sample_batch(cfg: TrainConfig, smoke: bool = False, info: DatasetInfo | None = None
                 ) -> torch.Tensor:
    """The first test batch of the run's dataset (random inputs of the right shape with smoke;
    `info`, the run's own data description, sets that shape)."""
    batch = next(iter(run_loaders(cfg, info, smoke, workers=0)[1]))
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def evaluate_run(path: str | Path, overrides: list[str] | None = None,
                 max_batches: int | None = None, smoke: bool = False,
                 neurobench: bool = False) -> dict:
    """``quadfire eval``: test accuracy, per-layer firing rates, SOPs and energy of the run at
    `path`, in one pass over the test set; printed and stored under "eval" in its report.json.
    With `neurobench`, also NeuroBench's metrics through the neurobench package (a second
    pass over the same batches), printed beside quadfire's and stored under "neurobench"."""
    if neurobench:
        require_neurobench()  # before the run is loaded and measured, not after
    run = load_run(path, (["data.workers=0"] if smoke else []) + list(overrides or []))
    cfg, device = run.cfg, next(run.model.parameters()).device
    train_loader, test_loader = run_loaders(cfg, run.info, smoke)
    try:
        m = measure(run.model, test_loader, max_batches=max_batches, device=device)
    finally:
        for loader in (train_loader, test_loader):
            loader.close()
    result = {"checkpoint": str(run.path), "epoch": run.state["epoch"], "accuracy": m["accuracy"],
              "test_loss": m["loss"], "samples": m["samples"],
              "paper_accuracy": cfg.paper_accuracy, "firing_rate": m["firing_rate"],
              "layer_firing_rates": {k: v["firing_rate"] for k, v in m["layers"].items()},
              "layer_labels": {k: v["label"] for k, v in m["layers"].items()},
              "energy_pj": m["energy_pj"], "ops": m["ops"], "measure": m}
    paper = f" (paper: {cfg.paper_accuracy:.2f}%)" if cfg.paper_accuracy is not None else ""
    print(f"{cfg.run_id} after {run.state['epoch']} epochs: test accuracy {m['accuracy']:.2f}% "
          f"on {m['samples']} samples{paper}, mean firing rate {m['firing_rate']:.4f}")
    print(format_measure(m))
    if neurobench:
        nb = neurobench_metrics(run.model, test_loader.dataset, run.info.frames is not None,
                                test_loader.batch_size, max_batches, device)
        result["neurobench"] = nb
        print(format_comparison(nb, m))
    record_eval(run.path.parent, result)
    return result
