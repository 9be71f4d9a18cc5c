"""Datasets and loaders behind one registry: sklearn digits (the embedded default),
CIFAR-10/100, ImageNet, CIFAR10-DVS, MNIST and Fashion-MNIST (also row by row) and any Tonic
dataset as ``tonic:<Name>``.
`build_loaders(DataConfig(...), T)` is the one entry point; `list_datasets()` names every
registered dataset. See docs/data.md."""
from . import (cifar, cifar10dvs, digits, imagenet, mnist, synthetic,  # noqa: F401  (register)
               tonic_datasets)
from .config import DataConfig, dataset_info
from .loaders import (Loader, ShardSampler, build_datasets, build_loaders, download,
                      synthetic_loaders)
from .registry import (DatasetEntry, DatasetInfo, get_dataset, list_datasets, register_dataset,
                       register_namespace)

__all__ = ["DataConfig", "DatasetInfo", "DatasetEntry", "Loader", "ShardSampler", "build_datasets",
           "build_loaders", "dataset_info", "download", "get_dataset", "list_datasets",
           "register_dataset", "register_namespace", "synthetic_loaders"]
