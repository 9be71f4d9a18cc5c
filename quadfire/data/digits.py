"""scikit-learn's bundled handwritten digits: 1797 8x8 grey images, 10 classes.

The embedded default dataset: it ships inside scikit-learn, so `make demo` trains with no
download. Images are float32 ``[1, 8, 8]`` in [0, 1] (the raw pixels are counts 0..16);
labels are ints in 0..9. The train/test split is stratified and seeded.
"""
from __future__ import annotations

import numpy as np
import torch

from .common import TensorPairs, stratified_split
from .registry import DatasetEntry, DatasetInfo, register_dataset

NUM_CLASSES = 10
IMAGE_SIZE = 8
# load_digits pixels count the set pixels of 4x4 blocks of a 32x32 bitmap: 0..16.
PIXEL_MAX = 16.0


def digits_datasets(test_fraction: float = 0.2, seed: int = 0) -> tuple[TensorPairs, TensorPairs]:
    """(train, test) datasets of the sklearn digits, split stratified with `seed`."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.from_numpy(
        (bunch.images / PIXEL_MAX).astype(np.float32)).unsqueeze(1)  # [N, 1, 8, 8]
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    train_idx, test_idx = stratified_split(bunch.target, test_fraction, seed)
    return (TensorPairs(images[train_idx], labels[train_idx]),
            TensorPairs(images[test_idx], labels[test_idx]))


def _info(cfg, T: int) -> DatasetInfo:
    return DatasetInfo("digits", NUM_CLASSES, (1, IMAGE_SIZE, IMAGE_SIZE))


def _build(cfg, T: int):
    return (*digits_datasets(seed=cfg.seed), _info(cfg, T))


def _bundled(cfg) -> None:
    """Nothing to fetch: the digits ship inside scikit-learn."""


register_dataset(DatasetEntry("digits", _info, _build, _bundled,
                              description="scikit-learn's 8x8 digits (bundled, no download)"))
