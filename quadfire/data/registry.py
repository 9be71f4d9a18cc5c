"""The dataset registry: each dataset module registers its name, the shape of its samples and
how to build its splits, so `build_loaders`, smoke runs and configs all find it by name.

A dataset registers a `DatasetEntry`; names may also be resolved by a namespace prefix
(``"<prefix>:<name>"``, for example a family of datasets read through another library), whose
resolver returns the entry on first use.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch.utils.data import Dataset

from ..errors import ConfigError


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about its input.

    ``step_shape`` is one sample at one time step: ``(C, H, W)`` for images and event frames,
    ``(features,)`` for sequences. Static data (``frames`` None) arrives as ``[N, *step_shape]``
    and the model repeats it T times (direct encoding); time-major data (event frames,
    sequences) arrives as ``[frames, N, *step_shape]``. Labels are int64 ``[N]`` in
    ``0 .. num_classes - 1``.
    """

    name: str
    num_classes: int
    step_shape: tuple[int, ...]
    frames: int | None = None


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset.

    info(cfg, T) -> DatasetInfo without reading any data (smoke runs, checks);
    build(cfg, T) -> (train, test, info), reading `cfg.root` (info may refine the class count
    from the files, as ImageNet's class folders do); download(cfg), when the dataset can be
    fetched, is called once per run before `build` when ``cfg.download`` is set.
    """

    name: str
    info: Callable[..., DatasetInfo]
    build: Callable[..., tuple[Dataset, Dataset, DatasetInfo]]
    download: Callable | None = None
    description: str = ""


_DATASETS: dict[str, DatasetEntry] = {}
_NAMESPACES: dict[str, Callable[[str], DatasetEntry]] = {}


def register_dataset(entry: DatasetEntry) -> DatasetEntry:
    if entry.name in _DATASETS and _DATASETS[entry.name] != entry:
        raise ValueError(f"a dataset named {entry.name!r} is already registered")
    _DATASETS[entry.name] = entry
    return entry


def register_namespace(prefix: str, resolver: Callable[[str], DatasetEntry]) -> None:
    """Names ``"<prefix>:<rest>"`` are resolved by ``resolver(rest)`` (which raises
    ConfigError for an unknown rest)."""
    _NAMESPACES[prefix] = resolver


def list_datasets() -> list[str]:
    """Registered dataset names (namespaces as ``"<prefix>:<name>"``)."""
    return sorted(_DATASETS) + [f"{p}:<name>" for p in sorted(_NAMESPACES)]


def get_dataset(name: str) -> DatasetEntry:
    """The entry registered as `name`, or a ConfigError naming the valid ones."""
    if not isinstance(name, str):
        raise ConfigError(f"data.dataset must be a dataset name, got {name!r}")
    if name in _DATASETS:
        return _DATASETS[name]
    prefix, sep, rest = name.partition(":")
    if sep and prefix in _NAMESPACES:
        return _NAMESPACES[prefix](rest)
    raise ConfigError(f"unknown dataset {name!r}; expected one of {list_datasets()}")
