"""MNIST (LeCun et al., 1998) and Fashion-MNIST (Xiao et al., 2017) from the original IDX files.

Both datasets ship as the same four files, each raw or gzip-compressed (``.gz``)::

    train-images-idx3-ubyte  train-labels-idx1-ubyte  t10k-images-idx3-ubyte  t10k-labels-idx1-ubyte

IDX layout (big-endian): a 4-byte magic number (0x00000803 for uint8 images with 3 dims,
0x00000801 for uint8 labels with 1 dim), one uint32 per dimension, then the uint8 body, row-major.
Images are ``[N, 28, 28]`` (0 is background), labels ``[N]`` in 0..9.

Resolution order (the first folder holding all four files wins):

1. under ``data.root``: torchvision's layout ``<root>/FashionMNIST/raw`` (``MNIST/raw``), then a
   flat folder ``<root>/fashion-mnist`` (``<root>/mnist``), then ``<root>`` itself;
2. the folder of a system package (Debian's ``dataset-fashion-mnist`` installs
   ``/usr/share/datasets/fashion-mnist``; MNIST has none), only when ``data.root`` is the
   default and none of its folders holds any of the files: a location the user named, or an
   incomplete copy, is never silently replaced by another copy;
3. with ``data.download=true``, torchvision fetches the files into ``<root>/<Name>/raw``.

Otherwise it is a DataNotFoundError that names every folder searched and, for a folder that
holds some of the files, the ones it lacks.

torchvision 0.29's ``MNIST``/``FashionMNIST`` classes only read the extracted files under
``<root>/<Name>/raw`` and their IDX reader opens files as raw bytes (a ``.gz`` fails an
``assert``; a short body fails in ``view``), so they are used here for downloading only, and
the reader below validates every file and names it in its errors.

Samples: images float32 ``[1, 28, 28]`` standardised with the training set's mean and std
(`transforms.NORMALIZATION`), labels int. The ``-rows`` variants present each image as a
sequence of its 28 rows, ``[T=28, 28]`` per sample, so batches are time-major ``[28, N, 28]``.
"""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError, DataNotFoundError
from .config import DataConfig
from .registry import DatasetEntry, DatasetInfo, register_dataset
from .transforms import NORMALIZATION, Cutout

SIDE = 28
NUM_CLASSES = 10
SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
FILES = SPLITS["train"] + SPLITS["test"]
# Magic numbers: 0x08 = unsigned byte, then the number of dimensions.
MAGIC = {n: 0x00000800 | n for n in (1, 2, 3)}
# The base dataset of each name ("-rows": the row-sequential presentation of the same files).
BASE = {"mnist": "mnist", "fashion-mnist": "fashion-mnist",
        "mnist-rows": "mnist", "fashion-mnist-rows": "fashion-mnist"}
TORCHVISION_NAME = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
# Folders installed by system packages, searched after data.root (tests monkeypatch this).
SYSTEM_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
DEBIAN_PACKAGE = {"fashion-mnist": "dataset-fashion-mnist"}
DEFAULT_ROOT = DataConfig.root  # data.root left as it is: the system folder may be searched


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """One IDX file (raw or gzip) -> uint8 array of `ndim` dims, shape as in its header."""
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
            data = gzip.decompress(data)
    except (PermissionError, IsADirectoryError):
        raise  # the user's file system: one line with the path, as it is
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"corrupt or truncated gzip file {path}: expected a gzip-compressed "
                         f"IDX file ({type(e).__name__}: {e})") from e
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"truncated IDX file {path}: expected a {header}-byte header, got "
                         f"{len(data)} bytes")
    magic = struct.unpack(">I", data[:4])[0]
    if magic != MAGIC[ndim]:
        raise DataError(f"not an IDX file of uint8 with {ndim} dims: {path} starts with magic "
                         f"0x{magic:08x}, expected 0x{MAGIC[ndim]:08x}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(shape))
    body = len(data) - header
    if body != expected:
        what = "truncated" if body < expected else "oversized"
        raise DataError(f"{what} IDX file {path}: header says {list(shape)}, so expected "
                         f"{expected} bytes after the {header}-byte header, got {body}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_split(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 images ``[N, 28, 28]``, int64 labels ``[N]``) of `split` in `folder`, validated."""
    image_name, label_name = SPLITS[split]
    image_path, label_path = _existing(folder, image_name), _existing(folder, label_name)
    images, labels = read_idx(image_path, 3), read_idx(label_path, 1)
    if images.shape[1:] != (SIDE, SIDE):
        raise DataError(f"{image_path}: expected {SIDE}x{SIDE} images, got "
                         f"{images.shape[1]}x{images.shape[2]}")
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{image_path} holds {images.shape[0]} images but {label_path} holds "
                         f"{labels.shape[0]} labels; expected equal counts")
    if images.shape[0] == 0:
        raise DataError(f"empty split: {image_path} holds no images")
    if labels.max() >= NUM_CLASSES:
        raise DataError(f"{label_path}: labels must lie in 0..{NUM_CLASSES - 1}, got "
                         f"{labels.min()}..{labels.max()}")
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def _existing(folder: Path, name: str) -> Path:
    """`folder/name`, or `folder/name.gz` when only the compressed file is there."""
    raw = folder / name
    return raw if raw.is_file() else folder / f"{name}.gz"


def _complete(folder: Path) -> bool:
    return all(_existing(folder, name).is_file() for name in FILES)


def candidate_dirs(dataset: str, root: str | Path, system: bool = True) -> list[Path]:
    """Folders searched for `dataset` ("mnist" or "fashion-mnist"), in order; with `system`,
    the system package's folder last."""
    root = Path(root)
    dirs = [root / TORCHVISION_NAME[dataset] / "raw", root / dataset, root]
    if system and dataset in SYSTEM_DIRS:
        dirs.append(Path(SYSTEM_DIRS[dataset]))
    return list(dict.fromkeys(dirs))  # data.root may be one of the others


def find_dataset(dataset: str, root: str | Path, download: bool = False,
                 named: bool = True) -> Path:
    """The folder holding the four files of `dataset` (see the module docstring for the order).
    `named`: the user chose `root` (data.root set), so the system folder is not searched."""
    dirs = candidate_dirs(dataset, root, system=False)
    for folder in dirs:
        if _complete(folder):
            return folder
    partial = [f"{d} (has {', '.join(n for n in FILES if _existing(d, n).is_file())}; lacks "
               f"{', '.join(n for n in FILES if not _existing(d, n).is_file())})"
               for d in dirs if any(_existing(d, n).is_file() for n in FILES)]
    system = candidate_dirs(dataset, root)[len(dirs):]
    searched = dirs + system if not (named or partial) else dirs
    if searched != dirs and _complete(system[0]):
        return system[0]
    if download:
        download_mnist(dataset, root)
        return dirs[0]
    note = ""
    if searched == dirs and system and _complete(system[0]):
        why = "of the incomplete copy above" if partial else "data.root names another folder"
        note = f"The system copy in {system[0]} is not used, because {why}. "
    raise DataNotFoundError(_missing_message(dataset, root, searched, partial) + note
                            + "Ways to get it: " + _ways(dataset, root))


def _ways(dataset: str, root: str | Path, download: bool = True) -> str:
    """The ways to get `dataset`, numbered, for an error message."""
    raw = Path(root) / TORCHVISION_NAME[dataset] / "raw"
    ways = []
    if dataset in DEBIAN_PACKAGE:
        ways.append(f"install the system package: `make fmnist` or `sudo apt-get install "
                    f"{DEBIAN_PACKAGE[dataset]}` (Debian/Ubuntu, files in {SYSTEM_DIRS[dataset]})")
    if download:
        ways.append(f"fetch it with torchvision: rerun with --download (--set "
                    f"data.download=true), which writes {raw}")
    ways.append(f"copy the four files (raw or .gz) into {Path(root) / dataset} or {raw}")
    return "; ".join(f"({i}) {w}" for i, w in enumerate(ways, 1))


def _missing_message(dataset: str, root: str | Path, dirs: list[Path], partial: list[str]) -> str:
    text = (f"{dataset} not found: expected the IDX files {', '.join(FILES)} (each raw or .gz) "
            f"in one of {', '.join(str(d) for d in dirs)}. ")
    if partial:
        text += f"Incomplete folders: {'; '.join(partial)}. "
    if dataset not in DEBIAN_PACKAGE:
        text += "There is no system package for it. "
    return text


def download_mnist(dataset: str, root: str | Path) -> None:
    """Fetch the four files with torchvision (md5-checked) into ``<root>/<Name>/raw``; no
    network, a refused connection or a damaged file is a DataNotFoundError."""
    import torchvision

    cls = torchvision.datasets.FashionMNIST if dataset == "fashion-mnist" else \
        torchvision.datasets.MNIST
    try:
        cls(str(root), train=True, download=True)
    except (PermissionError, FileExistsError, NotADirectoryError, IsADirectoryError):
        raise  # the user's folder: one line with the path, as it is
    except (OSError, RuntimeError, EOFError, ValueError) as e:  # URLError is an OSError
        raise DataNotFoundError(
            f"could not download {dataset} into {root} ({type(e).__name__}: "
            f"{' '.join(str(e).split())[:200]}); check the network connection, or get it "
            f"another way: {_ways(dataset, root, download=False)}") from e


class MnistImages(Dataset):
    """Images ``[N, 28, 28]`` (uint8 in, standardised float32 held in memory) and labels ``[N]``.

    Training samples may be randomly cropped back to 28x28 from the image zero-padded by
    `crop_padding` pixels (the padding is background, 0, before standardisation) and get a
    Cutout square (after it, so the cut is at the mean). `rows` returns ``[28, 28]`` (row t is
    time step t) instead of ``[1, 28, 28]``. Standardising once up front keeps a sample read
    to one slice (per-sample arithmetic made data loading a visible share of an epoch).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: float, std: float,
                 crop_padding: int = 0, cutout: int = 0, rows: bool = False):
        self.pad = crop_padding
        if crop_padding:
            images = torch.nn.functional.pad(images, (crop_padding,) * 4)
        self.images = (images.float() / 255 - mean) / std
        self.labels, self.rows = labels, rows
        self.cutout = Cutout(cutout) if cutout else None

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.images[i]
        if self.pad:
            dy, dx = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
            x = x[dy:dy + SIDE, dx:dx + SIDE]
        if self.cutout is not None:
            x = self.cutout(x)
        return (x if self.rows else x.unsqueeze(0)), int(self.labels[i])


def mnist_datasets(cfg: DataConfig) -> tuple[MnistImages, MnistImages]:
    """(train, test) for cfg.dataset in {"mnist", "fashion-mnist"} and their "-rows" variants."""
    base, rows = BASE[cfg.dataset], cfg.dataset.endswith("-rows")
    if cfg.autoaugment:
        raise ConfigError(f"data.autoaugment has no policy for {cfg.dataset} (AutoAugment's are "
                         f"for CIFAR and ImageNet); use data.crop_padding or data.cutout")
    folder = find_dataset(base, cfg.root, cfg.download, named=cfg.root != DEFAULT_ROOT)
    (mean,), (std,) = NORMALIZATION[base]
    train = MnistImages(*read_split(folder, "train"), mean, std, cfg.crop_padding, cfg.cutout,
                        rows)
    test = MnistImages(*read_split(folder, "test"), mean, std, rows=rows)
    return train, test


ROWS_T = SIDE  # the -rows variants: one image row per time step


def _entry(name: str) -> DatasetEntry:
    base, rows = BASE[name], name.endswith("-rows")

    def info(cfg, T: int | None = None) -> DatasetInfo:
        if rows:
            return DatasetInfo(name, NUM_CLASSES, (SIDE,), frames=ROWS_T)
        return DatasetInfo(name, NUM_CLASSES, (1, SIDE, SIDE))

    def build(cfg, T: int | None = None):
        if rows and T is not None and T != ROWS_T:
            raise ConfigError(f"{name} presents an image as its {ROWS_T} rows, one per time "
                              f"step, so T must be {ROWS_T}, got {T}")
        return (*mnist_datasets(cfg), info(cfg, T))

    def download(cfg) -> None:
        find_dataset(base, cfg.root, download=True, named=cfg.root != DEFAULT_ROOT)

    title = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}[base]
    how = "one 28-pixel row per time step, T = 28" if rows else "28x28 grey images"
    return DatasetEntry(name, info, build, download, f"{title} (IDX files; {how})")


for _name in BASE:
    register_dataset(_entry(_name))
