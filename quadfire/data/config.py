"""What to load and how: the data section of a run config, and what the model needs to know."""
from __future__ import annotations

from dataclasses import dataclass

DATASETS = ("digits", "cifar10", "cifar100", "imagenet", "cifar10dvs")


@dataclass
class DataConfig:
    """The data section of a run config. Field names are stable: run configs embed them."""

    dataset: str = "digits"       # one of DATASETS
    root: str = "data"            # parent folder holding each dataset's standard layout
    download: bool = False        # fetch CIFAR-10/100 through torchvision if missing
    batch_size: int = 64          # training batch per process (per rank when distributed)
    eval_batch_size: int = 256    # evaluation batch per process
    workers: int = 0              # DataLoader worker processes per rank (0: load in-process)
    pin_memory: bool = True       # page-locked host batches; only takes effect when CUDA exists
    T: int = 10                   # frames per event sample (cifar10dvs); static images ignore it
    frame_size: int = 48          # side of the resized event frames (cifar10dvs)
    autoaugment: bool = False     # AutoAugment (CIFAR / ImageNet policy) on training images
    cutout: int = 0               # side in pixels of the Cutout square on training images; 0: off
    seed: int = 0                 # seeds the digits / cifar10dvs splits and the shuffling
    cache_dir: str = ""           # cifar10dvs frame cache; "": next to the recordings

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first field that is out of range."""
        if self.dataset not in DATASETS:
            raise ValueError(f"data.dataset must be one of {DATASETS}, got {self.dataset!r}")
        for name in ("batch_size", "eval_batch_size", "T", "frame_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"data.{name} must be a positive int, got {value!r}")
        for name in ("workers", "cutout"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"data.{name} must be a non-negative int, got {value!r}")
        for name in ("download", "pin_memory", "autoaugment"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"data.{name} must be a bool, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class DatasetInfo:
    """What a model needs to know about its input.

    Static images arrive as ``[N, in_channels, image_size, image_size]``; event data
    (``frames`` not None) arrives time-major as ``[frames, N, in_channels, image_size,
    image_size]``. Labels are int64 ``[N]`` in ``0 .. num_classes - 1``.
    """

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    frames: int | None = None


def dataset_info(cfg: DataConfig, num_classes: int | None = None) -> DatasetInfo:
    """The input description of `cfg.dataset`; `num_classes` overrides the standard count
    (an ImageFolder tree defines its own)."""
    standard = {
        "digits": (10, 1, 8, None),
        "cifar10": (10, 3, 32, None),
        "cifar100": (100, 3, 32, None),
        "imagenet": (1000, 3, 224, None),
        "cifar10dvs": (10, 2, cfg.frame_size, cfg.T),
    }[cfg.dataset]
    classes, channels, size, frames = standard
    return DatasetInfo(cfg.dataset, num_classes or classes, channels, size, frames)
