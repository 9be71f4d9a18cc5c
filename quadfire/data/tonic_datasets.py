"""Any Tonic dataset as ``data.dataset: tonic:<Name>`` (``tonic:NMNIST``, ``tonic:DVSGesture``,
``tonic:SHD``, ...), framed into the run's T time-major frames and cached.

Tonic (``pip install 'quadfire[dvs]'``) owns each dataset's download and folder layout: its
class ``tonic.datasets.<Name>`` reads ``<data.root>/<Name>/...`` and, with ``data.download``,
fetches the files there first. Events are Tonic's structured arrays (fields x, y, t, p; audio
sets have no y) and pass through Tonic's own transforms, in this order:

- ``tonic.transforms.Denoise(filter_time=data.denoise_us)`` when ``denoise_us > 0``;
- ``tonic.transforms.Downsample`` to ``round(data.downsample * sensor)`` pixels (channels for
  audio sets) when ``downsample < 1``;
- framing into T frames: ``frame_by: events`` counts T frames of equal event count with
  quadfire's binning (`quadfire.data.events.equal_count_bins`, the one used for CIFAR10-DVS;
  Tonic's ``ToFrame(n_event_bins=T)`` gives the same frames when T divides the event count,
  docs/data.md); ``frame_by: time`` is Tonic's ``ToFrame(n_time_bins=T)``, T bins of equal
  duration from each recording's first to its last event.

A sample is float32 ``[T, P, H, W]`` (channel = polarity p, row = y, column = x, as Tonic's
frames) for cameras and ``[T, P*W]`` for 1-D sensors (SHD's 700 channels, P = 1); labels are
ints. The frames of each sample are cached as ``.npz`` (`quadfire.data.frame_cache`) under
``<data.root>/quadfire-frames/<Name>/<key>/<split>/`` (or ``data.cache_dir`` in place of
``<data.root>/quadfire-frames``); the key holds T and every framing option, and each file
records the fingerprint of the dataset's files (names, sizes, modification times), so
replacing a recording rebuilds the frames. Datasets that Tonic
publishes without a train/test split (CIFAR10DVS, NCALTECH101, ...) are split 9:1 per class,
seeded with ``data.seed``. The input shape and class count come from Tonic's class attributes
(`KNOWN` fills in what Tonic only reads from the files), so smoke runs need no data on disk.
"""
from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, DataNotFoundError, MissingExtraError, require_extra
from .common import stratified_split
from .config import DataConfig, frames_of
from .events import count_events, equal_count_bins
from .frame_cache import fingerprint, read_or_build
from .registry import DatasetEntry, DatasetInfo, register_namespace

PREFIX = "tonic"
TEST_FRACTION = 0.1
# Facts Tonic learns only from a dataset's files (or that vary per recording), needed to
# describe the input before anything is downloaded: class counts and the sensor (x, y, p).
KNOWN = {"SHD": {"classes": 20}, "SSC": {"classes": 35},
         "NCALTECH101": {"classes": 101, "sensor_size": (240, 180, 2)}}


def _tonic():
    return require_extra("tonic", "dvs", "data.dataset=tonic:<name>")


@dataclass(frozen=True)
class Spec:
    """What quadfire needs to know about one Tonic dataset class."""

    name: str
    cls: type
    sensor: tuple[int, int, int]     # Tonic's sensor_size (x, y, p)
    num_classes: int
    split: str                       # "train" (train=bool), "split" (split=str) or "none"

    def shape(self, downsample: float) -> tuple[int, int, int]:
        """(x, y, p) of the frames after Downsample."""
        w, h, p = self.sensor
        return (max(1, round(w * downsample)), 1 if h == 1 else max(1, round(h * downsample)), p)


def spec(name: str) -> Spec:
    """The `Spec` of ``tonic.datasets.<name>``, or a ConfigError saying why it cannot be used."""
    tonic = _tonic()
    cls = getattr(tonic.datasets, name, None)
    if not isinstance(cls, type):
        raise ConfigError(f"unknown Tonic dataset {name!r} (tonic {tonic.__version__}); expected "
                          f"one of {sorted(tonic.datasets.__all__)}")
    known = KNOWN.get(name, {})
    classes = known.get("classes", getattr(cls, "classes", None))
    sensor = known.get("sensor_size", getattr(cls, "sensor_size", None))
    num_classes = classes if isinstance(classes, int) else len(classes or ())
    if not num_classes or not (isinstance(sensor, tuple) and len(sensor) == 3):
        raise ConfigError(f"Tonic's {name} does not say its classes and sensor size before it is "
                          f"downloaded (classes={classes!r}, sensor_size={sensor!r}), so quadfire "
                          f"cannot describe its input; known classification sets include "
                          f"NMNIST, DVSGesture, SHD, SSC, CIFAR10DVS, NCALTECH101, POKERDVS")
    params = inspect.signature(cls.__init__).parameters
    split = "train" if "train" in params else "split" if "split" in params else "none"
    return Spec(name, cls, tuple(int(s) for s in sensor), num_classes, split)


def step_shape(s: Spec, cfg: DataConfig) -> tuple[int, ...]:
    w, h, p = s.shape(cfg.downsample)
    return (p * w,) if h == 1 else (p, h, w)


class EqualCountFrames:
    """Tonic-style transform: events -> float32 ``[T, P, H, W]`` of equal event count
    (`quadfire.data.events`); 1-D sensors (no y field) have H = 1."""

    def __init__(self, sensor: tuple[int, int, int], T: int):
        self.sensor, self.T = sensor, T

    def __call__(self, events: np.ndarray) -> np.ndarray:
        w, h, p = self.sensor
        names = events.dtype.names
        row = events["y"] if "y" in names else np.zeros(len(events), np.int64)
        channel = events["p"].astype(np.int64) if p > 1 else np.zeros(len(events), np.int64)
        frame = equal_count_bins(len(events), self.T)
        return count_events(frame, channel, row, events["x"], (self.T, p, h, w))


def transforms(s: Spec, cfg: DataConfig, T: int):
    """Tonic's Compose of the configured Denoise, Downsample and framing (module doc)."""
    tf = _tonic().transforms
    steps = []
    if cfg.denoise_us > 0:
        if s.sensor[1] == 1:
            raise ConfigError(f"data.denoise_us needs a 2-D sensor; {s.name} has sensor size "
                              f"{s.sensor}")
        steps.append(tf.Denoise(filter_time=cfg.denoise_us))
    shape = s.shape(cfg.downsample)
    if shape != s.sensor:
        steps.append(tf.Downsample(sensor_size=s.sensor, target_size=shape[:2]))
    steps.append(EqualCountFrames(shape, T) if cfg.frame_by == "events"
                 else tf.ToFrame(sensor_size=shape, n_time_bins=T))
    return tf.Compose(steps)


def _not_found(self) -> None:
    archive = getattr(self, "filename", "its archive")
    raise DataNotFoundError(f"Tonic's {type(self).__name__} is missing or incomplete under "
                            f"{self.location_on_system} (Tonic's layout: {archive} and its "
                            f"extracted files); set data.download=true to let Tonic fetch it, or "
                            f"data.root to the folder that holds {type(self).__name__}/")


def open_split(s: Spec, root: str, part: str, transform=None, download: bool = False):
    """Tonic's dataset object for `part` ("train", "test" or "all"). Tonic downloads in the
    constructor when files are missing; without `download` that is a DataNotFoundError."""
    kwargs = {"train": {"train": part == "train"}, "split": {"split": part}}.get(s.split, {})
    if download:
        try:
            return s.cls(root, transform=transform, **kwargs)
        except (PermissionError, FileExistsError, NotADirectoryError, IsADirectoryError):
            raise  # the user's folder: one line with the path, as it is
        except OSError as e:  # urllib's URLError (offline, a refused connection) is one
            reason = " ".join(str(getattr(e, "reason", None) or e).split())[:200]
            raise DataNotFoundError(
                f"could not download Tonic's {s.name} into {Path(root) / s.name} "
                f"({type(e).__name__}: {reason}); check the network connection, or put the "
                f"files there in Tonic's layout and drop data.download") from e
    # Same class name, so Tonic looks in the same folder; only its download is refused.
    offline = type(s.cls.__name__, (s.cls,), {"download": _not_found})
    data = offline(root, transform=transform, **kwargs)
    data.__class__ = s.cls  # files found: back to Tonic's own (picklable) class
    return data


def _label(target, names) -> int:
    if isinstance(target, (str, bytes)):
        return names[target]
    return int(np.asarray(target).reshape(()))


class TonicFrames(Dataset):
    """Samples `indices` of a Tonic dataset (with its transform set to `transforms`) as
    float32 frames ``[T, *step_shape]`` and int labels, cached per sample under `cache`."""

    def __init__(self, source, indices, shape: tuple[int, ...], cache: Path, names: dict,
                 stamp: int | None = None):
        if len(indices) == 0:
            raise ValueError(f"empty split of Tonic's {type(source).__name__}")
        self.source, self.indices, self.shape = source, list(indices), shape
        self.cache, self.names, self.stamp = cache, names, stamp

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        j = self.indices[i]
        where = f"{type(self.source).__name__} sample {j}"

        def build() -> dict[str, np.ndarray]:
            try:
                frames, target = self.source[j]
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from e
            frames = np.asarray(frames, dtype=np.float32).reshape(self.shape)
            return {"frames": frames, "label": np.int64(_label(target, self.names))}

        arrays = read_or_build(self.cache / f"{j}.npz", self.shape, build, where,
                               keys=("frames", "label"), stamp=self.stamp)
        return torch.from_numpy(arrays["frames"]), int(arrays["label"])


def cache_base(cfg: DataConfig) -> Path:
    return Path(cfg.cache_dir) if cfg.cache_dir else Path(cfg.root) / "quadfire-frames"


def cache_folder(s: Spec, cfg: DataConfig, T: int, part: str) -> Path:
    key = f"T{T}_{cfg.frame_by}_dn{cfg.denoise_us:g}_ds{cfg.downsample:g}"
    return cache_base(cfg) / s.name / key / part


def source_stamp(source, cfg: DataConfig) -> int:
    """The `fingerprint` of every file of a Tonic dataset (its folder, the cache left out):
    Tonic does not say which file a sample comes from, so replacing any recording rebuilds
    the dataset's cached frames."""
    folder = Path(source.location_on_system).resolve()
    skip = cache_base(cfg).resolve()
    files = [Path(d) / f for d, dirs, names in os.walk(folder)
             if not Path(d).resolve().is_relative_to(skip) for f in names]
    return fingerprint(files, folder)


def _names(source, s: Spec) -> dict:
    """String targets (NCALTECH101's folder names) -> class indices."""
    classes = getattr(s.cls, "classes", None)
    if isinstance(classes, dict):
        return dict(classes)
    if isinstance(classes, (list, tuple)):
        return {c: i for i, c in enumerate(classes)}
    return {c: i for i, c in enumerate(sorted({t for t in source.targets if isinstance(t, str)}))}


def entry(name: str) -> DatasetEntry:
    """The registry entry of ``tonic:<name>`` (the namespace resolver).

    With Tonic installed the name is checked here, when a config names it. Without Tonic the
    entry is still returned, so configs and recipes load and list (``quadfire recipes``), and
    describing or reading the data raises the MissingExtraError that names the extra.
    """
    try:
        spec(name)
    except MissingExtraError:
        pass
    full = f"{PREFIX}:{name}"

    def info(cfg: DataConfig, T: int | None) -> DatasetInfo:
        s = spec(name)
        return DatasetInfo(full, s.num_classes, step_shape(s, cfg), frames_of(full, T))

    def build(cfg: DataConfig, T: int | None):
        meta, s = info(cfg, T), spec(name)
        shape = (meta.frames,) + meta.step_shape
        tf = transforms(s, cfg, meta.frames)
        if s.split == "none":
            source = open_split(s, cfg.root, "all", tf)
            names = _names(source, s)
            labels = [_label(t, names) for t in source.targets]
            train_idx, test_idx = stratified_split(labels, TEST_FRACTION, cfg.seed)
            cache, stamp = cache_folder(s, cfg, meta.frames, "all"), source_stamp(source, cfg)
            return (TonicFrames(source, train_idx, shape, cache, names, stamp),
                    TonicFrames(source, test_idx, shape, cache, names, stamp), meta)
        parts = []
        for part in ("train", "test"):
            source = open_split(s, cfg.root, part, tf)
            parts.append(TonicFrames(source, range(len(source)), shape,
                                     cache_folder(s, cfg, meta.frames, part), _names(source, s),
                                     source_stamp(source, cfg)))
        return (*parts, meta)

    def download(cfg: DataConfig) -> None:
        s = spec(name)
        for part in ("all",) if s.split == "none" else ("train", "test"):
            open_split(s, cfg.root, part, download=True)

    return DatasetEntry(full, info, build, download, description=f"Tonic's {name}")


register_namespace(PREFIX, entry)
