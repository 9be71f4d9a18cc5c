"""Datasets and loaders: sklearn digits (the embedded default), CIFAR-10/100, ImageNet and
CIFAR10-DVS. `build_loaders(DataConfig(...))` is the one entry point; see docs/data.md."""
from .config import DATASETS, DataConfig, DatasetInfo, dataset_info
from .loaders import ShardSampler, build_datasets, build_loaders, synthetic_loaders

__all__ = ["DATASETS", "DataConfig", "DatasetInfo", "ShardSampler", "build_datasets",
           "build_loaders", "dataset_info", "synthetic_loaders"]
