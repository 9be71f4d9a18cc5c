"""DataLoaders for every dataset: one entry point for training runs, one for smoke runs."""
from __future__ import annotations

import dataclasses
from typing import Callable, Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from .common import TensorPairs, time_major_collate
from ..errors import ConfigError, DataError, ParameterError
from .config import DataConfig, dataset_info
from .registry import DatasetInfo, get_dataset


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
    return get_dataset(cfg.dataset).build(cfg, T)


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
    if cfg.download:
        download(cfg, distributed)
    train, test, info = build_datasets(cfg, T)
    return _loaders(cfg, train, test, info, distributed)


def synthetic_loaders(cfg: DataConfig, T: int | None = None, steps: int = 2,
                      distributed: bool = False
                      ) -> tuple[DataLoader, DataLoader, DatasetInfo]:
    """Loaders of uniform random inputs with the true shape of `cfg.dataset` (for a run of T
    steps), `steps` batches of `cfg.batch_size` each (train and test alike), for smoke runs
    without data."""
    cfg.validate()
    if steps < 1:
        raise ParameterError(f"steps must be >= 1, got {steps}")
    info = dataset_info(cfg, T)
    g = torch.Generator().manual_seed(cfg.seed)
    sample = info.step_shape if info.frames is None else (info.frames,) + info.step_shape
    n = steps * cfg.batch_size
    sets = [TensorPairs(torch.rand((n,) + sample, generator=g),
                        torch.randint(0, info.num_classes, (n,), generator=g))
            for _ in range(2)]
    smoke = dataclasses.replace(cfg, eval_batch_size=cfg.batch_size, workers=0)
    return _loaders(smoke, sets[0], sets[1], info, distributed)


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
    train_loader = DataLoader(train, batch_size=cfg.batch_size, sampler=train_sampler, **common)
    test_loader = DataLoader(test, batch_size=cfg.eval_batch_size, sampler=test_sampler, **common)
    for part, loader in (("training", train_loader), ("test", test_loader)):
        if len(loader) == 0:
            raise DataError(f"the {part} loader of {cfg.dataset!r} has no batches on this rank "
                            f"({len(loader.sampler)} samples)")
    return train_loader, test_loader, info
