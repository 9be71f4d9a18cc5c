"""Pieces shared by the dataset modules: in-memory datasets, the stratified split, collation."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate
from ..errors import DataError, InputError, ParameterError


class TensorPairs(Dataset):
    """(sample, label) pairs held in memory: samples ``[N, ...]`` float32, labels ``[N]`` int64."""

    def __init__(self, samples: torch.Tensor, labels: torch.Tensor):
        if samples.shape[0] != labels.shape[0]:
            raise InputError(f"samples and labels differ in length: {samples.shape[0]} vs "
                             f"{labels.shape[0]}")
        if samples.shape[0] == 0:
            raise DataError("empty dataset: no samples")
        self.samples = samples
        self.labels = labels

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.samples[i], int(self.labels[i])


def stratified_split(labels: Sequence[int] | np.ndarray, test_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted index arrays (train, test) with each class split in the same proportion.

    Each class contributes round(n_c * test_fraction) samples to the test part, clamped so
    that a class with at least two samples keeps at least one in each part. The permutation
    comes from a private ``numpy.random.default_rng(seed)``: the split is reproducible and
    independent of global RNG state, so every distributed rank computes the same partition.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ParameterError(f"test_fraction must be in (0, 1), got {test_fraction}")
    labels = np.asarray(labels)
    if labels.size == 0:
        raise DataError("cannot split an empty dataset")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(len(idx) * test_fraction))
        if len(idx) >= 2:
            n_test = min(max(n_test, 1), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def time_major_collate(batch: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Collate event samples ``[T, C, H, W]`` into a time-major batch ``[T, N, C, H, W]``.

    Event data is already a sequence, so it goes to the model in the package-wide time-major
    layout; static images keep the default ``[N, C, H, W]`` and are repeated over T by the model.
    """
    x, y = default_collate(batch)
    return x.transpose(0, 1).contiguous(), y
