"""``synthetic:<dataset>``: uniform random inputs with the sample shape, frames and class
count of ``<dataset>``, `STEPS` batches of ``data.batch_size`` in each split. What a smoke run
(``--smoke``) trains on: the recipe's whole code path in seconds, with no data on disk."""
from __future__ import annotations

import dataclasses

import torch

from .common import TensorPairs
from .registry import DatasetEntry, DatasetInfo, get_dataset, register_namespace

STEPS = 2  # batches per split


def random_splits(info: DatasetInfo, samples: int, seed: int) -> tuple[TensorPairs, TensorPairs]:
    """(train, test) of `samples` random inputs each, shaped as `info` describes (a sample is
    ``[frames, *step_shape]`` for time-major data), labels uniform over its classes."""
    g = torch.Generator().manual_seed(seed)
    shape = info.step_shape if info.frames is None else (info.frames,) + tuple(info.step_shape)
    return tuple(TensorPairs(torch.rand((samples,) + tuple(shape), generator=g),
                             torch.randint(0, info.num_classes, (samples,), generator=g))
                 for _ in range(2))


def _entry(name: str) -> DatasetEntry:
    inner = get_dataset(name)  # a ConfigError naming the valid names for an unknown one

    def info(cfg, T=None) -> DatasetInfo:
        return inner.info(dataclasses.replace(cfg, dataset=name), T)

    def build(cfg, T=None):
        shape = info(cfg, T)
        return (*random_splits(shape, STEPS * cfg.batch_size, cfg.seed), shape)
    return DatasetEntry(f"synthetic:{name}", info, build,
                        description=f"random inputs of {name}'s shape (smoke runs)")


register_namespace("synthetic", _entry)
