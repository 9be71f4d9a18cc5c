"""scikit-learn's bundled handwritten digits: 1797 8x8 grey images, 10 classes.

The embedded default dataset: it ships inside scikit-learn, so `make demo` trains with no
download. Images are float32 ``[1, 8, 8]`` in [0, 1] (the raw pixels are counts 0..16);
labels are ints in 0..9. The train/test split is stratified and seeded, so every run and every
distributed rank sees the same partition.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

NUM_CLASSES = 10
IMAGE_SIZE = 8
# load_digits pixels are counts of set pixels in 4x4 blocks of a 32x32 bitmap: 0..16.
PIXEL_MAX = 16.0


class TensorPairs(Dataset):
    """(image, label) pairs held in memory: images ``[N, C, H, W]`` float32, labels ``[N]``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"images and labels differ in length: {images.shape[0]} vs "
                             f"{labels.shape[0]}")
        if images.shape[0] == 0:
            raise ValueError("empty dataset: no samples")
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) with each class split in the same proportion.

    Every class with at least two samples keeps at least one in each part. The permutation
    comes from a private ``numpy.random.default_rng(seed)``, so the split is reproducible and
    independent of global RNG state.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    labels = np.asarray(labels)
    if labels.size == 0:
        raise ValueError("cannot split an empty dataset")
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
