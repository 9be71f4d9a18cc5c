"""The data section of a run config: what to load and how."""
from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import ConfigError
from .registry import get_dataset

MAX_WORKERS = 256  # DataLoader processes per rank; more is a typo, not a setting
MAX_SIZE = 1 << 20  # bound on batch sizes and pixel sizes, which size tensors


FRAME_BY = ("events", "time")
TONIC_OPTIONS = ("frame_by", "denoise_us", "downsample")


@dataclass
class DataConfig:
    """The data section of a run config. Field names are stable: run configs embed them.
    The number of time steps is the run's ``T`` (event data is framed into T frames)."""

    dataset: str = "digits"       # a registered name (`quadfire.data.list_datasets()`)
    root: str = "data"            # parent folder holding each dataset's standard layout
    download: bool = False        # fetch the dataset if missing (where it can be fetched)
    batch_size: int = 64          # training batch per process (per rank when distributed)
    eval_batch_size: int = 256    # evaluation batch per process
    workers: int = 0              # DataLoader worker processes per rank (0: load in-process)
    pin_memory: bool = True       # page-locked host batches; only takes effect when CUDA exists
    frame_size: int = 48          # side of the resized event frames (cifar10dvs)
    autoaugment: bool = False     # AutoAugment (CIFAR / ImageNet policy) on training images
    cutout: int = 0               # side in pixels of the Cutout square on training images; 0: off
    crop_padding: int = 0         # (Fashion-)MNIST: random 28x28 training crop of the image
                                  # zero-padded by this many pixels; 0: off (CIFAR always uses 4)
    seed: int = 0                 # seeds the digits / cifar10dvs splits and the shuffling
    cache_dir: str = ""           # event-frame cache; "": next to the recordings (tonic: root)
    # Options of the tonic:<name> datasets (quadfire.data.tonic_datasets).
    frame_by: str = "events"      # "events": T frames of equal event count; "time": of equal time
    denoise_us: float = 0.0       # Tonic's Denoise: drop events with no neighbour this recent; 0: off
    downsample: float = 1.0       # Tonic's Downsample: scale the sensor's x (and y), in (0, 1]
    # Random inputs of the dataset's shape in place of its data (the registered dataset
    # synthetic:<dataset>, `quadfire.data.synthetic`): what a smoke run trains on.
    synthetic: bool = False

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first field that is out of range."""
        get_dataset(self.dataset)
        for name in ("batch_size", "eval_batch_size", "frame_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"data.{name} must be a positive int, got {value!r}")
        for name in ("workers", "cutout", "crop_padding", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"data.{name} must be a non-negative int, got {value!r}")
        for name, limit in (("workers", MAX_WORKERS), ("seed", 2**32 - 1),
                            ("batch_size", MAX_SIZE), ("eval_batch_size", MAX_SIZE),
                            ("frame_size", MAX_SIZE), ("cutout", MAX_SIZE),
                            ("crop_padding", MAX_SIZE)):
            if getattr(self, name) > limit:
                raise ConfigError(f"data.{name} must be at most {limit}, got {getattr(self, name)}")
        for name in ("root", "cache_dir"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"data.{name} must be a path string, got {getattr(self, name)!r}")
        for name in ("download", "pin_memory", "autoaugment", "synthetic"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"data.{name} must be a bool, got {getattr(self, name)!r}")
        self._validate_event_options()

    def _validate_event_options(self) -> None:
        if self.frame_by not in FRAME_BY:
            raise ConfigError(f"data.frame_by must be one of {FRAME_BY}, got {self.frame_by!r}")
        for name, ok, expected in (("denoise_us", lambda v: v >= 0, ">= 0"),
                                   ("downsample", lambda v: 0 < v <= 1, "in (0, 1]")):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not ok(value):
                raise ConfigError(f"data.{name} must be a number {expected}, got {value!r}")
        defaults = {f.name: f.default for f in fields(self)}
        changed = [f"{n}={getattr(self, n)!r}" for n in TONIC_OPTIONS
                   if getattr(self, n) != defaults[n]]
        if changed and not self.dataset.startswith("tonic:"):
            raise ConfigError(f"data.{', data.'.join(changed)} only apply to tonic:<name> "
                              f"datasets, not {self.dataset!r}")


def dataset_info(cfg: DataConfig, T: int | None = None):
    """The input description of `cfg.dataset` for a run of T steps (time-major data needs T),
    without reading data."""
    return get_dataset(cfg.dataset).info(cfg, T)


def frames_of(name: str, T: int | None) -> int:
    """T for a time-major dataset, which frames its samples into the run's T steps."""
    if not (isinstance(T, int) and not isinstance(T, bool) and T >= 1):
        raise ConfigError(f"{name} samples are time-major: pass the run's T (a positive int) to "
                          f"build its frames, got T={T!r}")
    return T
