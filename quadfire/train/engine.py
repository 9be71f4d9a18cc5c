"""The training loop: `fit(cfg)` builds everything from the config, then runs a short,
straight epoch loop with checkpoints, metrics and a final report.

Determinism: the model is initialised from `cfg.seed`; at the start of every epoch the
global RNGs and the training sampler are reseeded from (seed, epoch, rank), so the data order
and augmentations of epoch e do not depend on how the run got there. Together with the
optimizer/scheduler/scaler states and RNG states in the checkpoint, a run stopped after epoch
k and resumed ends with exactly the weights of an uninterrupted run (on CPU).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..data import build_loaders, synthetic_loaders
from ..layers.sync_tdbn import convert_sync_tdbn
from ..models import create_model, input_kwargs
from . import checkpoint, distributed, losses
from .config import TrainConfig
from .metrics import MetricsLog
from .optim import build_optimizer, build_scheduler
from .report import write_report
from .typed_yaml import save_yaml
from .stop import StopRequest

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device, amp: str):
    """Mixed precision for the forward pass ("none": full precision)."""
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AMP_DTYPES[amp])


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """A 32-bit seed that is a pure function of (seed, epoch, rank)."""
    return int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def start_epoch(loader, cfg: TrainConfig, epoch: int, rank: int) -> None:
    """Make epoch `epoch`'s data order and randomness a function of (seed, epoch, rank)."""
    seed_everything(epoch_seed(cfg.seed, epoch, rank))
    sampler = loader.sampler
    if hasattr(sampler, "set_epoch"):  # DistributedSampler: seeded with data.seed + epoch
        sampler.set_epoch(epoch)
    elif getattr(sampler, "generator", None) is not None:  # RandomSampler's private generator
        sampler.generator.manual_seed(epoch_seed(cfg.seed, epoch))


def loss_fn(cfg: TrainConfig):
    """``(logits [T, N, K], labels [N]) -> scalar`` for `cfg.loss` (`quadfire.train.losses`)."""
    return losses.make_loss(cfg.loss, cfg.tet_lambda, cfg.tet_phi, cfg.label_smoothing)


@dataclasses.dataclass
class Run:
    """Everything `fit` builds from a config."""

    cfg: TrainConfig
    dist: distributed.DistInfo
    model: nn.Module              # the bare model (what checkpoints hold)
    net: nn.Module                # what the loop calls: DDP- and/or compile-wrapped `model`
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    train_loader: torch.utils.data.DataLoader
    test_loader: torch.utils.data.DataLoader
    info: object                  # quadfire.data.DatasetInfo


def make_model(cfg: TrainConfig, data_info) -> nn.Module:
    """The recipe's model for inputs described by `data_info` (a `DatasetInfo`)."""
    return create_model(cfg.model, neuron=cfg.neuron, T=cfg.T, num_classes=data_info.num_classes,
                        neuron_kwargs=cfg.neuron_kwargs,
                        **{**input_kwargs(cfg.model, data_info.step_shape), **cfg.model_kwargs})


def build(cfg: TrainConfig, info: distributed.DistInfo, smoke: bool = False) -> Run:
    loaders = synthetic_loaders if smoke else build_loaders
    train_loader, test_loader, data_info = loaders(cfg.data, cfg.T, distributed=info.distributed)
    seed_everything(cfg.seed)  # identical initial weights on every rank
    model = make_model(cfg, data_info)
    if cfg.sync_bn and info.distributed:
        model = convert_sync_tdbn(model)
    model.to(info.device)
    net = model
    if info.distributed:
        ids = [info.device.index] if info.device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if cfg.compile:
        net = torch.compile(net)
    optimizer = build_optimizer(model, cfg)
    scheduler = build_scheduler(optimizer, cfg, len(train_loader))
    scaler = torch.amp.GradScaler(info.device.type, enabled=cfg.amp == "fp16")
    return Run(cfg, info, model, net, optimizer, scheduler, scaler, train_loader, test_loader,
               data_info)


def train_epoch(run: Run, epoch: int, stop: StopRequest, skip: int = 0, rng=None) -> dict:
    """One epoch; returns {"loss", "acc", "steps", "stopped"}. The first `skip` batches were
    already trained before an interruption: they are drawn (to replay the data order) but not
    trained on, then `rng` (the states saved at the interruption) is restored."""
    cfg, device = run.cfg, run.dist.device
    criterion = loss_fn(cfg)
    run.net.train()
    total_loss = correct = count = 0.0
    step, stopped = skip, False
    bar = tqdm(run.train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
               disable=not (cfg.progress and run.dist.main), dynamic_ncols=True)
    for i, (x, y) in enumerate(bar):
        if i < skip:
            if i == skip - 1 and rng is not None:
                checkpoint.set_rng_state(rng)
            continue
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with autocast(device, cfg.amp):
            out = run.net(x)
            loss = criterion(out.float(), y)
        run.optimizer.zero_grad(set_to_none=True)
        run.scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            run.scaler.unscale_(run.optimizer)
            nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        step += 1
        n = y.shape[0]
        total_loss += loss.item() * n
        correct += (out.detach().float().mean(0).argmax(1) == y).sum().item()
        count += n
        bar.set_postfix(loss=f"{total_loss / count:.3f}", acc=f"{100 * correct / count:.1f}")
        if stop.agreed(run.dist):
            stopped = True
            break
    bar.close()
    total_loss, correct, count = distributed.all_sum([total_loss, correct, count], run.dist)
    return {"loss": total_loss / max(count, 1), "acc": 100 * correct / max(count, 1),
            "steps": step, "stopped": stopped}


@torch.no_grad()
def evaluate(net: nn.Module, loader, info: distributed.DistInfo, amp: str = "none",
             max_batches: int | None = None) -> dict:
    """Test loss and accuracy (%) of the time-mean output, summed exactly over all ranks."""
    net.eval()
    total_loss = correct = count = 0.0
    for i, (x, y) in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        x, y = x.to(info.device), y.to(info.device)
        with autocast(info.device, amp):
            logits = net(x).float().mean(0)
        total_loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        count += y.shape[0]
    total_loss, correct, count = distributed.all_sum([total_loss, correct, count], info)
    return {"loss": total_loss / max(count, 1), "acc": 100 * correct / max(count, 1),
            "samples": int(count)}


def checkpoint_state(run: Run, epoch: int, step: int, best: float) -> dict:
    """`epoch`: the epoch to run next (or the one interrupted, with `step` steps done)."""
    return {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(),
            "epoch": epoch, "step": step, "best_acc": best, "rng": checkpoint.rng_state(),
            "config": dataclasses.asdict(run.cfg), "data_info": dataclasses.asdict(run.info)}


def restore(run: Run, state: dict) -> None:
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])


def fit(cfg: TrainConfig, resume: str | Path | None = None, smoke: bool = False) -> dict:
    """Train `cfg` (resuming from checkpoint `resume` if given); returns the report dict.

    Under torchrun this joins the process group; only rank 0 writes files.
    """
    info = distributed.setup(cfg.device)
    try:
        return _fit(cfg, info, resume, smoke)
    finally:
        distributed.teardown()


def _fit(cfg: TrainConfig, info: distributed.DistInfo, resume, smoke: bool) -> dict:
    t0 = time.time()
    run = build(cfg, info, smoke)
    first_epoch, skip, best, rng = 0, 0, 0.0, None
    if resume is not None:
        state = checkpoint.load(resume, map_location=info.device)
        restore(run, state)
        first_epoch, skip, best = state["epoch"], state.get("step", 0), state.get("best_acc", 0.0)
        rng = state["rng"] if skip else None
    run_dir, ckpt_path = cfg.run_dir, cfg.run_dir / "last.pt"
    log = MetricsLog(run_dir, tensorboard=cfg.tensorboard, first_epoch=first_epoch,
                     enabled=info.main)
    if info.main:
        save_yaml(cfg, run_dir / "config.yaml")
    test = {"acc": float("nan"), "loss": float("nan")}
    done, stopped = first_epoch, False
    with StopRequest() as stop:
        for epoch in range(first_epoch, cfg.epochs):
            start_epoch(run.train_loader, cfg, epoch, info.rank)
            lr = run.optimizer.param_groups[0]["lr"]
            train = train_epoch(run, epoch, stop, skip if epoch == first_epoch else 0, rng)
            if train["stopped"]:
                stopped = True
                if info.main:
                    checkpoint.save(checkpoint_state(run, epoch, train["steps"], best), ckpt_path)
                break
            test = evaluate(run.net, run.test_loader, info, cfg.amp, 1 if smoke else None)
            best, done = max(best, test["acc"]), epoch + 1
            log.epoch(epoch, {"lr": lr, "train_loss": train["loss"], "train_acc": train["acc"],
                              "test_loss": test["loss"], "test_acc": test["acc"]})
            if info.main:
                checkpoint.save(checkpoint_state(run, done, 0, best), ckpt_path)
            if info.main and cfg.progress:
                tqdm.write(f"[{cfg.run_id}] epoch {done}/{cfg.epochs} lr {lr:.3g} "
                           f"train loss {train['loss']:.4f} acc {train['acc']:.2f}% | test loss "
                           f"{test['loss']:.4f} acc {test['acc']:.2f}%")
            if done < cfg.epochs and stop.agreed(info):  # signalled during evaluation
                stopped = True
                break
    log.close()
    if not stopped and done == first_epoch:  # resumed a finished run: nothing left to train
        test = evaluate(run.net, run.test_loader, info, cfg.amp, 1 if smoke else None)
    digests = replica_digests(run.model, info)
    return write_report(run, test, best, stopped=stopped, stop_signal=stop.signal,
                        epochs_done=done, wall_s=time.time() - t0,
                        smoke=smoke, replica_digests=digests)


def state_digest(model: nn.Module) -> str:
    """SHA-256 of every parameter and buffer, bit for bit."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def replica_digests(model: nn.Module, info: distributed.DistInfo) -> list[str]:
    """Every rank's `state_digest` (rank order): DDP replicas must all agree."""
    digest = state_digest(model)
    if not info.distributed:
        return [digest]
    out: list = [None] * info.world_size
    dist.all_gather_object(out, digest)
    return out
