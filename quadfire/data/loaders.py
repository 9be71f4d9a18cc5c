"""DataLoaders for every dataset: one entry point for training runs, one for smoke runs.

Every loader is a `Loader`, a DataLoader made safe for long runs:

- its worker processes ignore SIGINT and SIGTERM, which are for the main process (it stops at
  a safe point and writes a checkpoint); a scheduler's SIGTERM to the whole process group
  would otherwise kill the workers first and crash the run. They are started with both
  signals blocked, so no signal slips in before the worker has set this up. Workers still
  exit when the loader shuts them down or the main process dies (torch's watchdog).
- a worker that dies anyway surfaces as a `DataLoaderWorkerError` at the next batch fetch,
  between training steps, never in the middle of an optimizer step or a checkpoint write
  (torch's own SIGCHLD handler raises wherever the main thread happens to be).
- an error a dataset raises in a worker is re-raised with the dataset's own type and
  message, exactly as with ``workers=0`` (torch prefixes it with the worker's traceback).
"""
from __future__ import annotations

import atexit
import dataclasses
import signal
import threading
import weakref
from typing import Callable, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .common import time_major_collate
from ..errors import ConfigError, DataError, DataLoaderWorkerError, ParameterError, QuadfireError
from .config import DataConfig, dataset_info
from .registry import DatasetInfo, get_dataset
from .synthetic import random_splits

STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _quiet_worker(worker_id: int) -> None:
    """worker_init_fn: stop signals are the main process's business (module docstring)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _child_exited(signum, frame) -> None:
    """SIGCHLD: a worker's death is reported by the loader at the next fetch instead."""


def _unwrap(error: QuadfireError) -> QuadfireError:
    """The dataset's own error from torch's re-raised copy, whose message is ``Caught X in
    DataLoader worker process N.`` followed by the worker's traceback, which ends in
    ``<module>.X: <the original message>``."""
    text = str(error)
    if not (text.startswith("Caught ") and "DataLoader worker" in text.split("\n", 1)[0]):
        return error
    marker = f"{type(error).__module__}.{type(error).__qualname__}: "
    at = text.rfind(marker)
    if at < 0:
        return error
    try:
        return type(error)(text[at + len(marker):].strip())
    except Exception:
        return error


class _Batches:
    """The iterator of a `Loader`: torch's, with worker failures made plain."""

    def __init__(self, it):
        self._it = it

    def __iter__(self):
        return self

    def __len__(self) -> int:
        return len(self._it)

    def __next__(self):
        try:
            return next(self._it)
        except QuadfireError as e:
            raise _unwrap(e) from e
        except RuntimeError as e:
            if "DataLoader worker" in str(e) and ("exited unexpectedly" in str(e)
                                                  or "killed by signal" in str(e)):
                raise _worker_died(str(e)) from e
            raise
        except (ConnectionError, EOFError) as e:
            # A worker that dies just after queueing a batch takes the batch's shared memory
            # with it: the fetch fails on the broken connection before torch notices the death.
            if self._it.__class__.__name__ == "_MultiProcessingDataLoaderIter":
                raise _worker_died(f"{type(e).__name__} while receiving a batch") from e
            raise


def _worker_died(detail: str) -> DataLoaderWorkerError:
    return DataLoaderWorkerError(f"a DataLoader worker process died ({detail.strip()}); this is "
                                 f"usually the out-of-memory killer or a signal sent to that "
                                 f"process alone")


class Loader(DataLoader):
    """A DataLoader for long runs (module docstring); `close` shuts its workers down."""

    _open: "weakref.WeakSet[Loader]" = weakref.WeakSet()

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("worker_init_fn", _quiet_worker)
        super().__init__(*args, **kwargs)
        Loader._open.add(self)

    def __iter__(self):
        if self.num_workers == 0:
            return _Batches(super().__iter__())
        main = threading.current_thread() is threading.main_thread()
        # Workers fork with the stop signals blocked; `_quiet_worker` ignores, then unblocks them.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            it = super().__iter__()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        if main and signal.getsignal(signal.SIGCHLD) is not _child_exited:
            signal.signal(signal.SIGCHLD, _child_exited)  # replaces torch's (module docstring)
        return _Batches(it)

    def close(self) -> None:
        """Shut the persistent workers down now (they would otherwise live until the loader
        is garbage-collected)."""
        it, self._iterator = getattr(self, "_iterator", None), None
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()


@atexit.register
def _close_all() -> None:
    """Workers ignore SIGTERM, so shut them down before multiprocessing's exit handler, which
    terminates (SIGTERM) and then joins every child. atexit runs handlers last-in first-out,
    and this one is registered after multiprocessing's."""
    for loader in list(Loader._open):
        loader.close()


class ShardSampler(Sampler[int]):
    """Rank r of W reads indices r, r + W, r + 2W, ...: an exact partition of the test set.

    DistributedSampler pads with repeated samples so every rank gets the same count; for
    evaluation that would count some samples twice, so the test set is sharded without padding
    (shard sizes differ by at most one). `set_epoch` exists so callers can treat both alike.
    """

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int):
        self.indices = range(rank, len(dataset), num_replicas)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)

    def set_epoch(self, epoch: int) -> None:
        pass


def build_datasets(cfg: DataConfig, T: int | None = None) -> tuple[Dataset, Dataset, DatasetInfo]:
    """(train, test, info) for `cfg.dataset` and a run of T steps (needed by time-major data,
    ignored by static images), read from `cfg.root`."""
    cfg.validate()
    return get_dataset(f"synthetic:{cfg.dataset}" if cfg.synthetic else cfg.dataset).build(cfg, T)


def download(cfg: DataConfig, distributed: bool = False) -> None:
    """Fetch `cfg.dataset` if it is missing (``cfg.download``); under DDP one process fetches
    while the others wait, so no two write the archive at once."""
    entry = get_dataset(cfg.dataset)
    if entry.download is None:
        raise ConfigError(f"data.download=true, but quadfire cannot fetch {cfg.dataset!r}; put "
                          f"it under data.root={cfg.root!r} as docs/data.md describes")
    if not distributed:
        entry.download(cfg)
        return
    _require_process_group()
    if dist.get_rank() == 0:
        entry.download(cfg)
    dist.barrier()


def build_loaders(cfg: DataConfig, T: int | None = None, distributed: bool = False
                  ) -> tuple[DataLoader, DataLoader, DatasetInfo]:
    """(train_loader, test_loader, info) for `cfg` and a run of T steps.

    distributed=True requires an initialised default process group: training batches come
    from a DistributedSampler (shuffled with `cfg.seed`; call ``train_loader.sampler
    .set_epoch(epoch)`` every epoch), the test set is sharded exactly by `ShardSampler`.
    """
    cfg.validate()
    if cfg.download and not cfg.synthetic:
        download(cfg, distributed)
    train, test, info = build_datasets(cfg, T)
    return _loaders(cfg, train, test, info, distributed)


def synthetic_loaders(cfg: DataConfig, T: int | None = None, steps: int = 2,
                      distributed: bool = False, info: DatasetInfo | None = None
                      ) -> tuple[DataLoader, DataLoader, DatasetInfo]:
    """Loaders of uniform random inputs with the true shape of `cfg.dataset` (for a run of T
    steps), `steps` batches of `cfg.batch_size` each (train and test alike), for smoke runs
    without data. `info` overrides the dataset's standard description: a trained run's own
    (its class count, input shape and frames), as stored in its checkpoint."""
    cfg.validate()
    if steps < 1:
        raise ParameterError(f"steps must be >= 1, got {steps}")
    info = dataset_info(cfg, T) if info is None else info
    train, test = random_splits(info, steps * cfg.batch_size, cfg.seed)
    smoke = dataclasses.replace(cfg, eval_batch_size=cfg.batch_size, workers=0)
    return _loaders(smoke, train, test, info, distributed)


def _require_process_group() -> None:
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("build_loaders(distributed=True) needs torch.distributed "
                           "initialised by the caller (init_process_group)")


def _loaders(cfg: DataConfig, train: Dataset, test: Dataset, info: DatasetInfo,
             distributed: bool) -> tuple[DataLoader, DataLoader, DatasetInfo]:
    for part, data in (("training", train), ("test", test)):
        if len(data) == 0:
            raise DataError(f"the {part} split of {cfg.dataset!r} is empty")
    if distributed:
        _require_process_group()
        world, rank = dist.get_world_size(), dist.get_rank()
        train_sampler: Sampler = DistributedSampler(train, num_replicas=world, rank=rank,
                                                    shuffle=True, seed=cfg.seed)
        test_sampler: Sampler = ShardSampler(test, world, rank)
    else:
        train_sampler = torch.utils.data.RandomSampler(
            train, generator=torch.Generator().manual_seed(cfg.seed))
        test_sampler = torch.utils.data.SequentialSampler(test)
    collate: Callable | None = time_major_collate if info.frames is not None else None
    common = dict(
        num_workers=cfg.workers,
        # Pinning without CUDA only warns and copies, so it is tied to CUDA being present.
        pin_memory=cfg.pin_memory and torch.cuda.is_available(),
        persistent_workers=cfg.workers > 0,
        collate_fn=collate,
    )
    # A last training batch of one sample is dropped: batch normalisation cannot normalise one
    # value per channel (T = 1 into a fully connected layer), and skipping it costs one sample
    # of the epoch, a different one each epoch (the order is reshuffled).
    single = len(train_sampler) % cfg.batch_size == 1 and len(train_sampler) > 1
    train_loader = Loader(train, batch_size=cfg.batch_size, sampler=train_sampler,
                          drop_last=single, **common)
    test_loader = Loader(test, batch_size=cfg.eval_batch_size, sampler=test_sampler, **common)
    for part, loader in (("training", train_loader), ("test", test_loader)):
        if len(loader) == 0:
            raise DataError(f"the {part} loader of {cfg.dataset!r} has no batches on this rank "
                            f"({len(loader.sampler)} samples)")
    return train_loader, test_loader, info
