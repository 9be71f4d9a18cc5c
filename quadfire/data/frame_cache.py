"""The ``.npz`` frame cache shared by every event dataset (CIFAR10-DVS, the tonic namespace).

Decoding and framing a recording costs far more than reading its frames back, so each
sample's frames are stored once with ``numpy.savez_compressed`` and read on later epochs. The
cache key (the file's path) is chosen by the dataset and must hold every option that changes
the frames (T, frame size, framing method, ...), so changing one builds a new cache. Each file
also stores the `fingerprint` of the recordings it was built from (their names, sizes and
modification times), so frames of a recording that was since replaced are rebuilt, never
served.
"""
from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError

_UNWRITABLE: set[Path] = set()  # cache folders found read-only in this process


def fingerprint(paths, root: Path | None = None) -> int:
    """A 63-bit digest of the files `paths` as they are now: each one's name (relative to
    `root` when given), size and modification time in ns. Replacing a file changes it."""
    h = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        st = path.stat()
        name = path.relative_to(root) if root is not None else path.name
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return int.from_bytes(h.digest()[:8], "little") >> 1


def read_or_build(cache: Path, shape: tuple[int, ...], build: Callable[[], dict[str, np.ndarray]],
                  source: str, keys: tuple[str, ...] = ("frames",),
                  stamp: int | None = None) -> dict[str, np.ndarray]:
    """The arrays stored at `cache`, or ``build()`` written there first.

    ``build()`` returns a dict of arrays holding every name in `keys`; its ``"frames"`` are
    float32 of `shape`. `stamp` is the `fingerprint` of the recordings the frames come from:
    a file stored with another one (or none) is stale and rebuilt. A cache file that is
    unreadable, lacks a key or holds frames of another shape or dtype is rebuilt with a
    RuntimeWarning naming `source` (what the frames come from). New files are written to a
    temporary name and renamed, so concurrent workers and ranks never read a half-written
    file. A cache that cannot be written (a read-only
    dataset folder, common on clusters) is skipped with one RuntimeWarning per folder: the
    frames are then built on every read.
    """
    if cache.exists():
        try:
            # Opened here, not by np.load, which leaks the handle when the zip is unreadable.
            with open(cache, "rb") as f, np.load(f) as stored:
                arrays = {k: stored[k] for k in keys}
                built_from = int(stored["source"]) if "source" in stored.files else None
            frames = arrays["frames"]
            if frames.shape != tuple(shape) or frames.dtype != np.float32:
                problem = f"holds frames {frames.shape} {frames.dtype}, expected {tuple(shape)}"
            elif stamp is not None and built_from != stamp:
                problem = None  # the recording changed since: rebuilding is the normal course
            else:
                return arrays
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as e:
            problem = f"is unreadable ({type(e).__name__}: {e})"
        if problem is not None:
            warnings.warn(f"frame cache {cache} {problem}; rebuilding it from {source}",
                          RuntimeWarning, stacklevel=3)
    arrays = build()
    frames = arrays["frames"]
    if frames.shape != tuple(shape) or frames.dtype != np.float32:
        raise DataError(f"{source}: built frames {frames.shape} {frames.dtype}, expected float32 "
                        f"{tuple(shape)}")
    if cache.parent in _UNWRITABLE:
        return arrays
    tmp = cache.with_name(f".{cache.stem}.{os.getpid()}.tmp.npz")
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(tmp, **arrays,
                            **({} if stamp is None else {"source": np.int64(stamp)}))
        os.replace(tmp, cache)
    except OSError as e:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        _UNWRITABLE.add(cache.parent)  # one warning and one failed attempt per folder
        warnings.warn(f"cannot write the frame cache {cache} ({type(e).__name__}: "
                      f"{e.strerror or e}); building the frames of {cache.parent} on every read "
                      f"instead, which is slower (set data.cache_dir to a writable folder to "
                      f"cache)", RuntimeWarning, stacklevel=3)
    return arrays
