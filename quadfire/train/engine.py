"""The training loop: `fit(cfg, resume)` builds everything from the config, then runs a short,
straight loop of training steps, evaluations and checkpoints, and writes the final report.

Determinism: the model is initialised from `cfg.seed`; at the start of every epoch the
global RNGs and the training sampler are reseeded from (seed, epoch, rank), so the data order
and augmentations of epoch e do not depend on how the run got there. Together with the
optimizer/scheduler/scaler states and RNG states in the checkpoint, a run stopped anywhere and
resumed ends with exactly the weights of an uninterrupted run (on CPU).

Nothing lost, nothing silently wrong: the run directory is locked and an existing run in it is
never replaced unasked (`rundir`); a stop signal or a dead DataLoader worker ends the run
after the current step with a checkpoint; a step whose loss, gradients or BN statistics are
not finite is never applied (`step.train_step`; `cfg.nonfinite`: stop with an error, or skip
the batch).
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from ..analysis.monitor import time_mean_scores
from ..data import build_loaders
from ..errors import (CheckpointError, ConfigError, DataLoaderWorkerError, NonFiniteError,
                      QuadfireError, RunDirError)
from ..layers.sync_tdbn import convert_sync_tdbn
from ..models import create_model, input_kwargs, load_state
from . import checkpoint, distributed, losses, rundir
from .config import (AUTO, OVERWRITE, TrainConfig, check_resume, config_from_checkpoint,
                     resume_conflicts)
from .metrics import MetricsLog
from .optim import build_optimizer, build_scheduler
from .position import Position
from .report import RunReport, write_report
from .step import autocast, check_weights, train_step
from .stop import StopRequest
from .typed_yaml import save_yaml


def fit(cfg: TrainConfig, resume: str | Path | None = None) -> RunReport:
    """Train `cfg`; returns the report. `resume` says where the run starts: None, a new run
    (refused where another run is, unless that one was a scratch run, `cfg.scratch`); a
    checkpoint path, continuing it; AUTO, the run's own last.pt when it exists, else a new run
    (every torchrun launch: a restarted worker group carries on); OVERWRITE, a new run that
    replaces the one in its directory once it has started. Under torchrun this joins the
    process group; only rank 0 writes files."""
    info = distributed.setup(cfg.device)
    try:
        resume = auto_resume(cfg, info) if resume == AUTO else resume
        overwrite, resume = resume == OVERWRITE, None if resume == OVERWRITE else resume
        # a missing or unreadable checkpoint, or one of a run with other settings, fails
        # before anything is created or written
        state = None if resume is None else checkpoint.load(resume, map_location=info.device)
        if state is not None:
            check_resume(state, cfg, str(resume))
        with _claimed(cfg, info, resume, overwrite) as replaces:
            run = build(cfg, info, state)
            try:
                pos = Position() if state is None else restore(run, state, str(resume))
                if replaces:
                    rundir.clear(cfg.run_dir)
                return train(run, pos)
            finally:
                run.close()
    finally:
        distributed.teardown()


def train(run: Run, pos: Position) -> RunReport:
    """The loop, from `pos` to the end of the run or a stop (module docstring)."""
    cfg, info, every = run.cfg, run.dist, run.cfg.checkpoint_every
    log = MetricsLog(cfg.run_dir, cfg.tensorboard, first_epoch=pos.epoch, enabled=info.main)
    if info.main:
        save_yaml(cfg, cfg.run_dir / "config.yaml")
    criterion, lost, first = loss_fn(cfg), None, pos.epoch
    test = {"acc": float("nan"), "loss": float("nan")}
    with StopRequest() as stop, contextlib.closing(log):
        while pos.epoch < cfg.epochs and pos.stop is None:
            try:
                for x, y in batches(run, pos):
                    verdict = train_step(run, x, y, criterion)
                    pos.count(verdict.applied, verdict.loss, verdict.correct, verdict.samples)
                    if not verdict.applied:
                        refused(run, pos, verdict.problem)
                    if stop.agreed(info):
                        pos.stop = "signal"
                        break
                    if every and pos.step % every == 0 and pos.step < len(run.train_loader):
                        save(run, pos)  # bounds the work a crash loses
                if pos.stop is None:
                    totals = epoch_totals(run, pos)
                    test = evaluate(run.net, run.test_loader, info, cfg.amp)
                    log.epoch(pos.epoch, {"lr": pos.lr, **totals, "test_loss": test["loss"],
                                          "test_acc": test["acc"]})
                    say(run, pos, totals, test)
                    pos.next_epoch(test["acc"])
                    if pos.epoch < cfg.epochs and stop.agreed(info):  # during evaluation
                        pos.stop = "signal"
            except DataLoaderWorkerError as e:  # between steps, never inside one
                pos.stop, lost = "worker", e
            save(run, pos, all_ranks=lost is None)
    if lost is not None and not stop.requested:
        raise DataLoaderWorkerError(f"{lost}. The run's position was saved in "
                                    f"{cfg.run_dir / 'last.pt'}: resume with --resume") from lost
    if pos.stop is None and pos.epoch == first:  # resumed a finished run: evaluate only
        test = evaluate(run.net, run.test_loader, info, cfg.amp)
    return write_report(run, test, pos.best, stopped=pos.stop is not None,
                        stop_signal=stop.signal, epochs_done=pos.epoch,
                        wall_s=time.time() - run.t0, replica_digests=replica_digests(
                            run.model, info), skipped_steps=pos.skipped,
                        smoke=cfg.data.synthetic, scratch=cfg.scratch)


def batches(run: Run, pos: Position):
    """The batches of epoch `pos.epoch` still to train, on the run's device. The first
    `pos.step` were trained before an interruption: they are drawn, to replay the data order,
    but not yielded, and then the RNG states saved with them are restored (`Run.rng`)."""
    cfg, device = run.cfg, run.dist.device
    start_epoch(run.train_loader, cfg, pos.epoch, run.dist.rank)
    if pos.lr is None:  # the lr of the epoch's first step (its metrics row)
        pos.lr = run.optimizer.param_groups[0]["lr"]
    # disable=None: a bar only when stderr is a terminal; in a log file its carriage-return
    # frames would pile up, and the one line per epoch (`say`) says the same.
    bar = tqdm(run.train_loader, desc=f"epoch {pos.epoch + 1}/{cfg.epochs}", leave=False,
               disable=None if cfg.progress and run.dist.main else True, dynamic_ncols=True)
    run.net.train()
    with contextlib.closing(bar):
        for i, (x, y) in enumerate(bar):
            if i < pos.step:
                if i == pos.step - 1 and run.rng is not None:
                    checkpoint.set_rng_state(run.rng)
                    run.rng = None
                continue
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            total, correct, n = pos.sums
            if n:
                bar.set_postfix(loss=f"{total / n:.3f}", acc=f"{100 * correct / n:.1f}")


def refused(run: Run, pos: Position, problem: str) -> None:
    """A step that was not applied (`problem` was not finite): `cfg.nonfinite` "stop" ends the
    run with an error, "skip" says so and goes on with the next batch."""
    where = (f"non-finite {problem} at epoch {pos.epoch + 1}, step {pos.step} of "
             f"{len(run.train_loader)}")
    if run.cfg.nonfinite == "stop":
        raise NonFiniteError(f"{where}; the step was not applied and last.pt was not "
                             f"overwritten (it holds the last checkpoint, if any). Check the "
                             f"data for NaN/inf values and the learning rate; --set "
                             f"nonfinite=skip skips such steps instead")
    if run.dist.main:
        tqdm.write(f"[{run.cfg.run_id}] {where}: skipped (weights and BN statistics unchanged)",
                   file=sys.stderr)


def epoch_totals(run: Run, pos: Position) -> dict:
    """The epoch's training loss and accuracy (%) over all ranks."""
    total, correct, n = distributed.all_sum(list(pos.sums), run.dist)
    if n == 0:
        raise NonFiniteError(f"every step of epoch {pos.epoch + 1} ({pos.step}) was non-finite; "
                             f"last.pt was not overwritten. Check the data and the learning rate")
    return {"train_loss": total / n, "train_acc": 100 * correct / n}


def say(run: Run, pos: Position, totals: dict, test: dict) -> None:
    """The epoch's line (rank 0, with `progress`)."""
    cfg = run.cfg
    if run.dist.main and cfg.progress:
        tqdm.write(f"[{cfg.run_id}] epoch {pos.epoch + 1}/{cfg.epochs} lr {pos.lr:.3g} train "
                   f"loss {totals['train_loss']:.4f} acc {totals['train_acc']:.2f}% | test loss "
                   f"{test['loss']:.4f} acc {test['acc']:.2f}%")


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
    # a mid-epoch resume: this rank's RNG states at the checkpoint, restored once the
    # interrupted epoch's trained batches are replayed (`batches`)
    rng: dict | None = None

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


def build(cfg: TrainConfig, info: distributed.DistInfo, state: dict | None = None) -> Run:
    """The run's loaders, model, optimizer, schedule and scaler (its clock continuing that of
    checkpoint `state`, if any)."""
    t0 = time.time() - float(state.get("wall_s", 0.0) if state is not None else 0.0)
    train_loader, test_loader, data_info = build_loaders(cfg.data, cfg.T,
                                                         distributed=info.distributed)
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
               data_info, t0)


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
            out = net(x)
        batch_loss, batch_correct = time_mean_scores(out, y)
        total_loss, correct = total_loss + batch_loss, correct + batch_correct
        count += y.shape[0]
    total_loss, correct, count = distributed.all_sum([total_loss, correct, count], info)
    return {"loss": total_loss / max(count, 1), "acc": 100 * correct / max(count, 1),
            "samples": int(count)}


RESUME_ENTRIES = ("model", "optimizer", "scheduler", "scaler", "epoch", "rng")


def save(run: Run, pos: Position, all_ranks: bool = True) -> None:
    """Write last.pt at `pos` (rank 0), unless the weights are no longer finite: a good last.pt
    is never replaced by a broken one. All ranks call this together, and every rank's RNG
    states are kept, unless `all_ranks` is False (one rank lost a DataLoader worker): then
    rank 0's own sums and RNG states."""
    info = run.dist
    sums, rngs = pos.sums, []
    if all_ranks and info.distributed:
        sums = tuple(distributed.all_sum(list(pos.sums), info))
        rngs = [None] * info.world_size
        dist.all_gather_object(rngs, checkpoint.rng_state())
    if not info.main:
        return
    check_weights(run.model)
    checkpoint.save({"model": run.model.state_dict(), "optimizer": run.optimizer.state_dict(),
                     "scheduler": run.scheduler.state_dict(), "scaler": run.scaler.state_dict(),
                     **pos.state(sums), "rng": checkpoint.rng_state(), "rng_ranks": rngs,
                     "config": dataclasses.asdict(run.cfg),
                     "data_info": dataclasses.asdict(run.info), "scratch": run.cfg.scratch,
                     "wall_s": time.time() - run.t0}, run.cfg.run_dir / "last.pt")


def restore(run: Run, state: dict, source: str = "the checkpoint") -> Position:
    """Load a checkpoint's training state into `run` and return its position; anything
    missing or not matching this run's model, optimizer, schedule or AMP setting is a
    CheckpointError naming it."""
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
            first = str(e).splitlines()[0] if str(e) else ""
            raise CheckpointError(f"the {name} state in {source} does not match this run's "
                                  f"{name} ({type(e).__name__}: {first}); resume with the "
                                  f"settings it was trained with") from None
    info = run.dist
    pos = Position.from_state(state, info.main, source)
    if pos.step:  # this rank's own RNG states when every rank's were saved, else rank 0's
        ranks = state.get("rng_ranks") or []
        run.rng = ranks[info.rank] if len(ranks) == info.world_size else state["rng"]
    if info.main and run.cfg.progress:
        where = (f"at epoch {pos.epoch + 1}, step {pos.step}" if pos.epoch < run.cfg.epochs
                 else f"a finished run ({pos.epoch} epochs): evaluating only")
        tqdm.write(f"[{run.cfg.run_id}] resuming from {source} {where}", file=sys.stderr)
    return pos


def auto_resume(cfg: TrainConfig, info: distributed.DistInfo) -> Path | None:
    """The run's own last.pt if it exists (as rank 0, which writes it, sees it), else None.
    Whether it belongs to this run is then checked as for any resume (`check_resume`), except
    that a scratch run's last.pt of other settings (a smoke run's, say) is not resumed: this
    run starts and replaces it, as any new run would."""
    path, found = cfg.run_dir / "last.pt", None
    if info.main and path.is_file():
        found = path
        try:
            state = checkpoint.load(path)
            if state.get("scratch") and resume_conflicts(
                    config_from_checkpoint(state, str(path)), cfg):
                found = None
        except QuadfireError:
            pass  # the resume itself names what is wrong with the file
    return distributed.broadcast_object(found, info)


@contextlib.contextmanager
def _claimed(cfg: TrainConfig, info: distributed.DistInfo, resume, overwrite: bool):
    """Rank 0 claims the run directory; every rank learns the verdict. Yields whether the run
    replaces an existing one (whose files `fit` clears once the run has started)."""
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
