"""CIFAR-10 and CIFAR-100 from the "python version" pickles (Krizhevsky, 2009).

On-disk layout under ``root`` (what torchvision's ``download=True`` extracts)::

    cifar-10-batches-py/data_batch_1 .. data_batch_5, test_batch
    cifar-100-python/train, test

Each file is a pickled dict with ``data``: uint8 ``[N, 3072]`` (the 1024 red, then green, then
blue values of a 32x32 image, row-major) and ``labels`` (CIFAR-10) or ``fine_labels``
(CIFAR-100). Samples come out as float32 ``[3, 32, 32]`` after `transforms.cifar_transforms`.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from .config import DataConfig
from .registry import DatasetEntry, DatasetInfo, register_dataset
from .transforms import cifar_transforms
from ..errors import DataError, DataNotFoundError

HOME = "https://www.cs.toronto.edu/~kriz/cifar.html"
LAYOUT = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
                "labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels"),
}


class CifarImages(Dataset):
    """uint8 images ``[N, 3, 32, 32]`` and labels ``[N]``, transformed on access."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[i]), int(self.labels[i])


def _latin1_bytes(text, encoding="latin1"):
    """``_codecs.encode``, as Python 3 pickles bytes at protocol 2, for latin1 only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"_codecs.encode({type(text).__name__}, {encoding!r}) is "
                                     f"not part of a CIFAR batch")
    return text.encode("latin1")


def _integer_dtype(name, align=False, copy=True) -> np.dtype:
    """``numpy.dtype``, for the integer types a CIFAR batch holds (uint8 pixels) only."""
    dtype = np.dtype(name, align, copy)
    if dtype.kind not in "ui":
        raise pickle.UnpicklingError(f"dtype {dtype} is not part of a CIFAR batch")
    return dtype


_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(0))[0]  # numpy's ndarray reconstructor
# Every global a CIFAR batch refers to. The original files (cPickle, Python 2, numpy 1) name
# numpy.core.multiarray._reconstruct, numpy.ndarray and numpy.dtype; numpy 2 spells the first
# numpy._core; Python 3 copies written at protocol 2 store bytes through _codecs.encode (an
# empty bytes object as a call to bytes).
CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _integer_dtype,
    ("_codecs", "encode"): _latin1_bytes,
    ("__builtin__", "bytes"): bytes,
    ("builtins", "bytes"): bytes,
}


class CifarUnpickler(pickle._Unpickler):
    """Unpickles what a CIFAR batch holds (dicts, lists, strings, ints and integer numpy
    arrays) and nothing else: any other global is refused, so a damaged or foreign file
    cannot import a module or call a function, and a dtype's state must be the plain one
    (numpy trusts it: damaged flags crash it later, outside any try). The Python version of
    the unpickler, whose BUILD step can be checked; a batch is one large string and some
    lists, which it reads quickly."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str):
        try:
            return CIFAR_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not part of a CIFAR "
                                         f"batch") from None

    def load_build(self):
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, np.dtype) and state != np.dtype(inst.str).__reduce__()[2]:
            raise pickle.UnpicklingError(f"dtype state {state!r} is not a plain {inst}")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build


def read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickle file -> (uint8 images ``[N, 3, 32, 32]``, int64 labels ``[N]``)."""
    try:
        with open(path, "rb") as f:
            # The files were pickled by Python 2: latin1 maps its byte strings 1:1.
            entry = CifarUnpickler(f, encoding="latin1").load()
        if not isinstance(entry, dict):
            raise TypeError(f"the file holds a {type(entry).__name__}, not a dict")
        entry = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}
        data, labels = entry["data"], entry[label_key]
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
            raise TypeError(f"'data' is {type(data).__name__} "
                            f"{getattr(data, 'dtype', '')}, expected a uint8 array")
        if not (isinstance(labels, (list, np.ndarray))
                and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                        for v in labels)):
            raise TypeError(f"'{label_key}' must be a list of ints")
        labels = np.asarray(labels, dtype=np.int64)
    except OSError:
        raise
    except Exception as e:  # a damaged pickle can raise nearly anything (MemoryError included)
        raise DataError(f"corrupt or truncated CIFAR file {path}: expected a pickled dict "
                        f"with 'data' and '{label_key}' ({type(e).__name__}: "
                        f"{str(e)[:200]})") from e
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != labels.shape[0]:
        raise DataError(f"corrupt CIFAR file {path}: expected data [N, 3072] and N labels, got "
                        f"data {list(data.shape)} and {labels.shape[0]} labels")
    return data.reshape(-1, 3, 32, 32), labels


def _read_split(folder: Path, files: list[str], label_key: str, num_classes: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
    parts = [read_batch(folder / name, label_key) for name in files]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if images.shape[0] == 0:
        raise DataError(f"empty CIFAR split: {', '.join(files)} in {folder} hold no images")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise DataError(f"labels in {folder} ({', '.join(files)}) must lie in "
                        f"0..{num_classes - 1}, got {labels.min()}..{labels.max()}")
    return torch.from_numpy(images), torch.from_numpy(labels)


def download_cifar(cfg: DataConfig) -> None:
    """Fetch and extract the archive with torchvision (md5-checked) unless already present;
    no network, a refused connection or a damaged archive is a DataNotFoundError."""
    import torchvision

    cls = torchvision.datasets.CIFAR10 if cfg.dataset == "cifar10" else torchvision.datasets.CIFAR100
    try:
        cls(cfg.root, train=True, download=True)
    except (PermissionError, FileExistsError, NotADirectoryError, IsADirectoryError):
        raise  # the user's folder: one line with the path, as it is
    except (OSError, RuntimeError, EOFError, ValueError) as e:  # URLError is an OSError
        folder = Path(cfg.root) / LAYOUT[cfg.dataset][0]
        raise DataNotFoundError(
            f"could not download {cfg.dataset} into {cfg.root} ({type(e).__name__}: "
            f"{' '.join(str(e).split())[:200]}); check the network connection, or fetch the "
            f"python version from {HOME} yourself and extract it so that {folder} exists") from e


def cifar_datasets(cfg: DataConfig) -> tuple[CifarImages, CifarImages]:
    """(train, test) for cfg.dataset in {"cifar10", "cifar100"} under cfg.root."""
    folder_name, train_files, test_files, label_key = LAYOUT[cfg.dataset]
    folder = Path(cfg.root) / folder_name
    missing = [n for n in train_files + test_files if not (folder / n).is_file()]
    if missing:
        raise DataNotFoundError(
            f"{cfg.dataset} not found: expected the python-version batches {missing} in "
            f"{folder} ({HOME}); rerun with --download "
            f"(data.download=true) to fetch them")
    num_classes = 10 if cfg.dataset == "cifar10" else 100
    train_tf, test_tf = cifar_transforms(cfg.dataset, cfg.autoaugment, cfg.cutout)
    train = CifarImages(*_read_split(folder, train_files, label_key, num_classes), train_tf)
    test = CifarImages(*_read_split(folder, test_files, label_key, num_classes), test_tf)
    return train, test


def _entry(name: str, classes: int) -> DatasetEntry:
    def info(cfg, T: int) -> DatasetInfo:
        return DatasetInfo(name, classes, (3, 32, 32))

    def build(cfg, T: int):
        return (*cifar_datasets(cfg), info(cfg, T))

    return DatasetEntry(name, info, build, download_cifar,
                        f"CIFAR-{classes} (python-version pickles)")


register_dataset(_entry("cifar10", 10))
register_dataset(_entry("cifar100", 100))
