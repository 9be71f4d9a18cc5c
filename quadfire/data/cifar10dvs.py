"""CIFAR10-DVS (Li et al., 2017) from the original recordings, framed and cached.

On-disk layout, as the dataset is distributed (one zip per class, extracted)::

    <root>/cifar10-dvs/airplane/cifar10_airplane_0.aedat ... (1000 per class)
    <root>/cifar10-dvs/automobile/...  ... <root>/cifar10-dvs/truck/...

Each recording (`quadfire.data.aedat`) becomes float32 frames ``[T, 2, S, S]`` (T frames of
equal event count, S = frame_size; `quadfire.data.events`). Frames are cached as compressed
``.npz`` files so later epochs skip decoding: next to each recording as
``<name>.T<T>_S<S>.npz``, or under ``cache_dir/T<T>_S<S>/<class>/`` when one is given. The
train/test split is 9:1 within each class, seeded.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from .aedat import read_aedat
from .common import stratified_split
from .config import DataConfig, frames_of
from .events import integrate_frames, resize_frames
from .frame_cache import fingerprint, read_or_build
from .registry import DatasetEntry, DatasetInfo, register_dataset
from .transforms import EventAugment
from ..errors import DataError, DataNotFoundError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
FOLDER = "cifar10-dvs"
TEST_FRACTION = 0.1


def list_recordings(base: Path) -> tuple[list[Path], list[int]]:
    """Sorted recording paths and their labels (index in CLASSES) under `base`."""
    expected = f"{base}/<class>/*.aedat for the 10 classes {', '.join(CLASSES)}"
    if not base.is_dir():
        raise DataNotFoundError(f"CIFAR10-DVS not found: expected {expected} (download the "
                                f"per-class zips of the original AEDAT recordings from "
                                f"https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 "
                                f"and extract them there)")
    missing = [c for c in CLASSES if not (base / c).is_dir()]
    if missing:
        raise DataNotFoundError(f"CIFAR10-DVS class folders {missing} missing: expected "
                                f"{expected}")
    paths, labels = [], []
    for label, name in enumerate(CLASSES):
        found = sorted((base / name).glob("*.aedat"))
        if not found:
            raise DataError(f"empty CIFAR10-DVS class folder {base / name}: expected .aedat "
                            f"recordings")
        paths += found
        labels += [label] * len(found)
    return paths, labels


def cache_file(recording: Path, T: int, size: int, cache_dir: str) -> Path:
    """Where the frames of `recording` for (T, size) are cached; the key holds both."""
    key = f"T{T}_S{size}"
    if not cache_dir:
        return recording.with_name(f"{recording.stem}.{key}.npz")
    return Path(cache_dir) / key / recording.parent.name / f"{recording.stem}.npz"


def load_frames(recording: Path, T: int, size: int, cache: Path) -> np.ndarray:
    """Frames ``[T, 2, size, size]`` of one recording, from `cache` when it holds them
    (`quadfire.data.frame_cache.read_or_build`: rebuilt when the recording changed since,
    with a warning when unreadable or mis-shaped, written atomically)."""

    def build() -> dict[str, np.ndarray]:
        events = read_aedat(recording)
        try:
            counts = integrate_frames(events, T)
        except ValueError as e:
            raise DataError(f"{recording}: {e}") from e
        return {"frames": resize_frames(counts, size)}

    return read_or_build(cache, (T, 2, size, size), build, str(recording),
                         stamp=fingerprint([recording]))["frames"]


class DVSFrames(Dataset):
    """Recordings as float32 frames ``[T, 2, size, size]`` with int labels."""

    def __init__(self, recordings: list[Path], labels: list[int], T: int, size: int,
                 cache_dir: str = "", transform: Callable | None = None):
        if not recordings:
            raise DataError("empty CIFAR10-DVS split: no recordings")
        self.recordings, self.labels = recordings, labels
        self.T, self.size, self.cache_dir, self.transform = T, size, cache_dir, transform

    def __len__(self) -> int:
        return len(self.recordings)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        rec = self.recordings[i]
        frames = load_frames(rec, self.T, self.size,
                             cache_file(rec, self.T, self.size, self.cache_dir))
        x = torch.from_numpy(frames)
        if self.transform is not None:
            x = self.transform(x)
        return x, self.labels[i]


def cifar10dvs_datasets(cfg: DataConfig, T: int) -> tuple[DVSFrames, DVSFrames]:
    """(train, test) of T frames per recording with the seeded 9:1 per-class split; training
    frames are flipped and rolled (`transforms.EventAugment`)."""
    paths, labels = list_recordings(Path(cfg.root) / FOLDER)
    train_idx, test_idx = stratified_split(labels, TEST_FRACTION, cfg.seed)

    def subset(idx, transform):
        return DVSFrames([paths[i] for i in idx], [labels[i] for i in idx], T,
                         cfg.frame_size, cfg.cache_dir, transform)

    return subset(train_idx, EventAugment(5)), subset(test_idx, None)


def _info(cfg, T: int | None) -> DatasetInfo:
    return DatasetInfo("cifar10dvs", len(CLASSES), (2, cfg.frame_size, cfg.frame_size),
                       frames_of("cifar10dvs", T))


def _build(cfg, T: int | None):
    info = _info(cfg, T)
    return (*cifar10dvs_datasets(cfg, info.frames), info)


register_dataset(DatasetEntry("cifar10dvs", _info, _build,
                              description="CIFAR10-DVS AEDAT recordings, framed and cached"))
