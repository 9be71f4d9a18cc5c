"""Reload a trained model from a run directory (or checkpoint file) written by `quadfire train`,
for the plot and export commands."""
from __future__ import annotations

from pathlib import Path

import dataclasses

import torch


def checkpoint_path(path: str | Path) -> Path:
    """A run directory's last.pt, or `path` itself when it is a file."""
    path = Path(path)
    ckpt = path / "last.pt" if path.is_dir() else path
    if not ckpt.is_file():
        raise FileNotFoundError(f"no checkpoint at {str(ckpt)!r}: expected a run directory with "
                                f"last.pt or a checkpoint file written by `quadfire train`")
    return ckpt


def load_model(path: str | Path):
    """(model in eval mode, resolved TrainConfig, DatasetInfo) from a run directory or a
    checkpoint file."""
    from ..data import dataset_info
    from ..train import checkpoint
    from ..train.config import load_config
    from ..train.engine import make_model

    state = checkpoint.load(checkpoint_path(path))
    cfg = load_config(state["config"])
    info = dataset_info(cfg.data)
    model = make_model(cfg, info)
    model.load_state_dict(state["model"])
    return model.eval(), cfg, info


def sample_batch(cfg, smoke: bool = False) -> torch.Tensor:
    """The first test batch of the run's dataset (random inputs of the right shape with smoke)."""
    from ..data import build_loaders, synthetic_loaders

    data = dataclasses.replace(cfg.data, workers=0)  # one batch: worker start-up is not worth it
    loaders = synthetic_loaders if smoke else build_loaders
    _, test_loader, _ = loaders(data)
    batch = next(iter(test_loader))
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def input_shape(info) -> tuple[int, ...]:
    """One sample's per-step shape (C, H, W) from a DatasetInfo."""
    return (info.in_channels, info.image_size, info.image_size)
