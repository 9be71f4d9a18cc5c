"""The training loop: `fit(cfg)` builds everything from the config, then runs a short,
straight epoch loop with checkpoints, metrics and a final report.

Determinism: the model is initialised from `cfg.seed`; at the start of every epoch the
global RNGs and the training sampler are reseeded from (seed, epoch, rank), so the data order
and augmentations of epoch e do not depend on how the run got there. Together with the
optimizer/scheduler/scaler states and RNG states in the checkpoint, a run stopped after epoch
k and resumed ends with exactly the weights of an uninterrupted run (on CPU).

Nothing lost, nothing silently wrong: the run directory is locked and an existing run in it is
never replaced unasked (`rundir`); a stop signal or a dead DataLoader worker ends the run
after the current step with a checkpoint; a step whose loss, gradients or BN statistics are
not finite is never applied (`cfg.nonfinite`: stop with an error, or skip the batch).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..data import build_loaders, synthetic_loaders
from ..errors import (CheckpointError, ConfigError, DataLoaderWorkerError, NonFiniteError,
                      RunDirError)
from ..layers.sync_tdbn import convert_sync_tdbn
from ..models import create_model, input_kwargs, load_state
from . import checkpoint, distributed, losses, rundir
from .config import TrainConfig, check_resume
from .metrics import MetricsLog
from .optim import build_optimizer, build_scheduler
from .report import RunReport, write_report
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
    # time.time() at which this run would have started had it never been interrupted: wall
    # time is cumulative over resumes (checkpoints carry it), so a study's table is fair
    t0: float = 0.0

    def close(self) -> None:
        """Shut the loaders' worker processes down."""
        for loader in (self.train_loader, self.test_loader):
            close = getattr(loader, "close", None)
            if close is not None:
                close()


def make_model(cfg: TrainConfig, data_info) -> nn.Module:
    """The recipe's model for inputs described by `data_info` (a `DatasetInfo`); one that does
    not fit in memory is a ConfigError naming the bytes asked for and the settings that size
    it."""
    try:
        return create_model(cfg.model, neuron=cfg.neuron, T=cfg.T,
                            num_classes=data_info.num_classes, neuron_kwargs=cfg.neuron_kwargs,
                            **{**input_kwargs(cfg.model, data_info.step_shape),
                               **cfg.model_kwargs})
    except RuntimeError as e:  # torch.OutOfMemoryError (CUDA) is one too
        text = str(e)
        if "allocate" not in text or "memory" not in text:
            raise
        # "... you tried to allocate 102400000000000 bytes" (CPU), "Tried to allocate 20.00
        # GiB" (CUDA)
        asked = re.search(r"allocate ([\d.]+ ?(?:bytes|[KMGTP]i?B))", text)
        size = asked.group(1) if asked else "more than there is"
        raise ConfigError(f"the model {cfg.model!r} with model_kwargs {cfg.model_kwargs} does "
                          f"not fit in memory: one of its tensors asked for {size}; make it "
                          f"smaller with --set model_kwargs=...") from None


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


class StepGuard:
    """Keeps a step whose loss, gradients or BN statistics are not finite from being applied.

    The forward pass updates the BN running statistics before the loss is known, so `before`
    copies every buffer and `restore` puts them back. Under DDP the decision is agreed by all
    ranks (a bad sample on one rank would otherwise desynchronise them)."""

    def __init__(self, run: Run, epoch: int):
        self.run, self.epoch = run, epoch
        self.buffers = [b for b in run.model.buffers()]
        self.floats = [b for b in self.buffers if b.is_floating_point()]
        self.saved: list[torch.Tensor] = []

    def before(self) -> None:
        self.saved = [b.detach().clone() for b in self.buffers]

    def restore(self) -> None:
        with torch.no_grad():
            for b, saved in zip(self.buffers, self.saved):
                b.copy_(saved)

    def forward_ok(self, loss: torch.Tensor) -> tuple[bool, float]:
        """(loss and BN statistics finite on every rank, the loss value)."""
        stats = nn.utils.get_total_norm(self.floats) if self.floats else loss.new_zeros(())
        value, stats = torch.stack([loss.detach().float(), stats.float()]).tolist()
        bad = [float(not math.isfinite(value)), float(not math.isfinite(stats))]
        bad = distributed.all_sum(bad, self.run.dist)
        self.what = "loss" if bad[0] else "BN statistics" if bad[1] else ""
        return not any(bad), value

    def grads_ok(self, norm: torch.Tensor) -> bool:
        """Whether the gradient norm is finite (the same on every rank: DDP averages them)."""
        if not bool(torch.isfinite(norm)):
            self.what = "gradients"
            return False
        return True

    def failure(self, step: int, steps: int) -> str:
        return (f"non-finite {self.what} at epoch {self.epoch + 1}, step {step} of {steps}")

    def check_weights(self) -> None:
        """Stop for good when the weights themselves are no longer finite (a learning rate
        that diverged): a skipped batch cannot repair them."""
        params = [p.detach() for p in self.run.model.parameters()]
        if params and not bool(torch.isfinite(nn.utils.get_total_norm(params))):
            raise NonFiniteError(
                f"the weights are no longer finite at epoch {self.epoch + 1} (the optimizer "
                f"step diverged: lower lr?); last.pt was not overwritten and still holds the "
                f"last good state")


def train_epoch(run: Run, epoch: int, stop: StopRequest, skip: int = 0, rng=None,
                carried: tuple = (0.0, 0.0, 0.0)) -> dict:
    """One epoch; returns {"loss", "acc", "sums", "steps", "stopped", "skipped",
    "worker_error"}, where "sums" are (loss x samples, correct, samples) over all ranks. The
    first `skip` batches were already trained before an interruption: they are drawn (to
    replay the data order) but not trained on, then `rng` (the states saved at the
    interruption) is restored, and `carried` (the "sums" of those batches) counts them in the
    epoch's loss and accuracy, as an uninterrupted epoch would. A step whose loss, gradients
    or BN statistics are not finite is not applied (`StepGuard`): ``cfg.nonfinite`` "stop"
    raises NonFiniteError, "skip" goes on with the next batch. A dead DataLoader worker ends the epoch at the last whole step
    (``stopped`` with the error in ``worker_error``)."""
    cfg, device = run.cfg, run.dist.device
    criterion = loss_fn(cfg)
    guard = StepGuard(run, epoch)
    run.net.train()
    # the steps trained before an interruption were summed over all ranks: count them once
    total_loss, correct, count = carried if run.dist.main else (0.0, 0.0, 0.0)
    step, stopped, skipped, lost = skip, False, 0, None
    steps = len(run.train_loader)
    # disable=None: a bar only when stderr is a terminal; in a log file its carriage-return
    # frames would pile up, and the one line per epoch written by `fit` says the same.
    bar = tqdm(run.train_loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False,
               disable=None if cfg.progress and run.dist.main else True, dynamic_ncols=True)
    batches = iter(bar)
    for i in range(steps):
        try:
            x, y = next(batches)
        except StopIteration:
            break
        except DataLoaderWorkerError as e:
            stopped, lost = True, e
            break
        if i < skip:
            if i == skip - 1 and rng is not None:
                checkpoint.set_rng_state(rng)
            continue
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        guard.before()
        with autocast(device, cfg.amp):
            out = run.net(x)
            loss = criterion(out.float(), y)
        run.optimizer.zero_grad(set_to_none=True)
        ok, value = guard.forward_ok(loss)
        if ok:
            run.scaler.scale(loss).backward()
            params = [p for p in run.model.parameters() if p.grad is not None]
            if cfg.grad_clip > 0 or cfg.amp != "fp16":
                run.scaler.unscale_(run.optimizer)  # a no-op without fp16's scaler
                norm = nn.utils.get_total_norm([p.grad for p in params])
                # fp16: an inf gradient is the scaler's to handle (it skips the step and
                # lowers the scale); NaN data shows up in the BN statistics checked above
                ok = cfg.amp == "fp16" or guard.grads_ok(norm)
                if ok and cfg.grad_clip > 0:
                    nn.utils.clip_grads_with_norm_(params, cfg.grad_clip, norm)
        step += 1
        if not ok:
            guard.restore()
            run.optimizer.zero_grad(set_to_none=True)
            guard.check_weights()
            if cfg.nonfinite == "stop":
                raise NonFiniteError(
                    f"{guard.failure(step, steps)}; the step was not applied and last.pt was "
                    f"not overwritten (it holds the end of the last finished epoch, if any). "
                    f"Check the data for NaN/inf values and the learning rate; --set "
                    f"nonfinite=skip skips such steps instead")
            skipped += 1
            if run.dist.main:
                tqdm.write(f"[{cfg.run_id}] {guard.failure(step, steps)}: skipped (weights and "
                           f"BN statistics unchanged)", file=sys.stderr)
        else:
            run.scaler.step(run.optimizer)
            run.scaler.update()
            run.scheduler.step()
            n = y.shape[0]
            total_loss += value * n
            correct += (out.detach().float().mean(0).argmax(1) == y).sum().item()
            count += n
            bar.set_postfix(loss=f"{total_loss / count:.3f}", acc=f"{100 * correct / count:.1f}")
        if stop.agreed(run.dist):
            stopped = True
            break
    bar.close()
    if skipped and skipped == step - skip and not stopped:
        raise NonFiniteError(f"every step of epoch {epoch + 1} ({skipped}) was non-finite; "
                             f"last.pt was not overwritten. Check the data and the learning rate")
    total_loss, correct, count = distributed.all_sum([total_loss, correct, count], run.dist)
    return {"loss": total_loss / max(count, 1), "acc": 100 * correct / max(count, 1),
            "sums": (total_loss, correct, count), "steps": step, "stopped": stopped,
            "skipped": skipped, "worker_error": lost}


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


def checkpoint_state(run: Run, epoch: int, step: int, best: float, scratch: bool = False,
                     partial: dict | None = None) -> dict:
    """`epoch`: the epoch to run next (or the one interrupted, with `step` steps done, and in
    `partial` its lr at the first step and the loss and accuracy sums so far).
    `scratch`: a smoke or demo run, which a later run may replace (`rundir`)."""
    return {"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(),
            "epoch": epoch, "step": step, "partial": partial or {}, "best_acc": best,
            "rng": checkpoint.rng_state(),
            "config": dataclasses.asdict(run.cfg), "data_info": dataclasses.asdict(run.info),
            "scratch": scratch, "wall_s": time.time() - run.t0}


RESUME_ENTRIES = ("model", "optimizer", "scheduler", "scaler", "epoch", "rng")


def save_checkpoint(run: Run, path: Path, epoch: int, step: int, best: float,
                    scratch: bool, partial: dict | None = None) -> None:
    """Write the checkpoint, unless the weights are no longer finite: a good last.pt is never
    replaced by a broken one."""
    StepGuard(run, epoch).check_weights()
    checkpoint.save(checkpoint_state(run, epoch, step, best, scratch, partial), path)


def restore(run: Run, state: dict, source: str = "the checkpoint") -> None:
    """Load a checkpoint's training state into `run`; anything missing or not matching this
    run's model, optimizer, schedule or AMP setting is a CheckpointError naming it."""
    missing = [k for k in RESUME_ENTRIES if k not in state]
    if missing:
        raise CheckpointError(f"{source} lacks the entries {missing} that resuming needs (it "
                              f"can still be evaluated with `quadfire eval`)")
    load_state(run.model, state["model"], source)
    for name, target in (("optimizer", run.optimizer), ("scheduler", run.scheduler),
                         ("scaler", run.scaler)):
        try:
            target.load_state_dict(state[name])
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError) as e:
            raise CheckpointError(f"the {name} state in {source} does not match this run's "
                                  f"{name} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                                  f"resume with the settings it was trained with") from None
    for key in ("epoch", "step"):
        value = state.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise CheckpointError(f"{source}: entry {key!r} must be a non-negative int, "
                                  f"got {value!r}")


def fit(cfg: TrainConfig, resume: str | Path | None = None, smoke: bool = False,
        overwrite: bool = False, scratch: bool = False) -> RunReport:
    """Train `cfg` (resuming from checkpoint `resume` if given); returns its `RunReport`.

    The run directory is claimed first (`rundir.claim`): locked against a second run, and an
    existing run in it is replaced only with `overwrite` (or when it was a scratch run).
    `scratch` marks this run as one a later run may replace (smoke runs always are).
    Under torchrun this joins the process group; only rank 0 writes files.
    """
    info = distributed.setup(cfg.device)
    try:
        # a missing or unreadable checkpoint, or one of a run with other settings, fails
        # before anything is created or written
        state = None if resume is None else checkpoint.load(resume, map_location=info.device)
        if state is not None:
            check_resume(state.get("config"), cfg, str(resume))
        with _claimed(cfg, info, resume, overwrite) as replaces:
            return _fit(cfg, info, resume, state, smoke, scratch or smoke, replaces)
    finally:
        distributed.teardown()


@contextlib.contextmanager
def _claimed(cfg: TrainConfig, info: distributed.DistInfo, resume, overwrite: bool):
    """Rank 0 claims the run directory; every rank learns the verdict. Yields whether the run
    replaces an existing one (whose files `_fit` clears once the run has started)."""
    lock, problem = None, None
    if info.main:
        try:
            lock = rundir.claim(cfg.run_dir, resume, overwrite)
        except RunDirError as e:
            problem = e
    problem_text = distributed.broadcast_object(None if problem is None else str(problem), info)
    if problem is not None:
        raise problem
    if problem_text is not None:
        raise RunDirError(problem_text)
    try:
        yield lock is not None and lock.replaces
    finally:
        if lock is not None:
            lock.release()


def _fit(cfg: TrainConfig, info: distributed.DistInfo, resume, state: dict | None,
         smoke: bool, scratch: bool, replaces: bool = False) -> RunReport:
    t0 = time.time()
    run = build(cfg, info, smoke)
    run.t0 = t0 - float(state.get("wall_s", 0.0) if state is not None else 0.0)
    log = None
    try:
        first_epoch, skip, best, rng, partial = 0, 0, 0.0, None, {}
        if state is not None:
            restore(run, state, str(resume))
            first_epoch, skip, best = state["epoch"], state.get("step", 0), state.get("best_acc", 0.0)
            rng = state["rng"] if skip else None
            partial = (state.get("partial") or {}) if skip else {}
        run_dir, ckpt_path = cfg.run_dir, cfg.run_dir / "last.pt"
        if replaces:
            rundir.clear(run_dir)
        log = MetricsLog(run_dir, tensorboard=cfg.tensorboard, first_epoch=first_epoch,
                         enabled=info.main)
        if info.main:
            save_yaml(cfg, run_dir / "config.yaml")
        test = {"acc": float("nan"), "loss": float("nan")}
        done, stopped, skipped, lost = first_epoch, False, 0, None
        with StopRequest() as stop:
            for epoch in range(first_epoch, cfg.epochs):
                start_epoch(run.train_loader, cfg, epoch, info.rank)
                first = epoch == first_epoch
                cut = partial if first else {}  # what the epoch cut short had done
                # the lr at the epoch's first step (docs/training.md)
                lr = cut.get("lr", run.optimizer.param_groups[0]["lr"])
                train = train_epoch(run, epoch, stop, skip if first else 0, rng,
                                    tuple(cut.get("sums", (0.0, 0.0, 0.0))))
                skipped += train["skipped"]
                if train["stopped"]:
                    stopped, lost = True, train["worker_error"]
                    if info.main:
                        save_checkpoint(run, ckpt_path, epoch, train["steps"], best, scratch,
                                        {"lr": lr, "sums": list(train["sums"])})
                    break
                try:
                    test = evaluate(run.net, run.test_loader, info, cfg.amp,
                                    1 if smoke else None)
                except DataLoaderWorkerError as e:
                    # the epoch's training is complete: keep it, without its test figures
                    stopped, lost, done = True, e, epoch + 1
                    if info.main:
                        save_checkpoint(run, ckpt_path, done, 0, best, scratch)
                    break
                best, done = max(best, test["acc"]), epoch + 1
                log.epoch(epoch, {"lr": lr, "train_loss": train["loss"],
                                  "train_acc": train["acc"], "test_loss": test["loss"],
                                  "test_acc": test["acc"]})
                if info.main:
                    save_checkpoint(run, ckpt_path, done, 0, best, scratch)
                if info.main and cfg.progress:
                    tqdm.write(f"[{cfg.run_id}] epoch {done}/{cfg.epochs} lr {lr:.3g} "
                               f"train loss {train['loss']:.4f} acc {train['acc']:.2f}% | test "
                               f"loss {test['loss']:.4f} acc {test['acc']:.2f}%")
                if done < cfg.epochs and stop.agreed(info):  # signalled during evaluation
                    stopped = True
                    break
        if lost is not None and not stop.requested:
            raise DataLoaderWorkerError(f"{lost}. The run's position was saved in {ckpt_path}: "
                                        f"resume with --resume") from lost
        if not stopped and done == first_epoch:  # resumed a finished run: nothing left to train
            test = evaluate(run.net, run.test_loader, info, cfg.amp, 1 if smoke else None)
        digests = replica_digests(run.model, info)
        return write_report(run, test, best, stopped=stopped, stop_signal=stop.signal,
                            epochs_done=done, wall_s=time.time() - run.t0, smoke=smoke,
                            replica_digests=digests, scratch=scratch, skipped_steps=skipped)
    finally:
        if log is not None:
            log.close()
        run.close()


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
