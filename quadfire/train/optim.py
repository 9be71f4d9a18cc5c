"""Optimizer and learning-rate schedule.

Weight decay applies only to weight matrices and conv kernels: biases, normalisation
parameters (BN/tdBN affine) and neuron parameters (1-d or scalar tensors) are excluded,
as in the TET/tdBN code, because decaying them shifts thresholds rather than regularising.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:  # the config names OPTIMIZERS from here, so this module cannot import it
    from .config import TrainConfig

OPTIMIZERS = ("sgd", "adam", "adamw")


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: tensors with >= 2 dims decay, the rest (biases, norms, neurons) do not."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=False)
    if cfg.optimizer == "adam":
        # torch's Adam adds decay to the gradient (L2); AdamW decouples it.
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_factor(step: int, total: int, warmup: int, floor: float) -> float:
    """Multiplier of the base lr at optimizer step `step` (0-based).

    Linear warm-up from 1/warmup to 1 over `warmup` steps, then a half cosine from 1 down to
    `floor` (= min_lr / lr) at step `total`.
    """
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def build_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig,
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step cosine schedule with warm-up (`lr_factor`)."""
    total = cfg.epochs * steps_per_epoch
    warmup = round(cfg.warmup_epochs * steps_per_epoch)
    floor = cfg.min_lr / cfg.lr
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda step: lr_factor(step, total, warmup, floor))
