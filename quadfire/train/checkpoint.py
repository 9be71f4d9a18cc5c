"""Atomic checkpoints with everything exact resumption needs.

A checkpoint holds the model, optimizer, scheduler and AMP-scaler states, the position in
training (next epoch, step), the RNG states of torch (CPU and CUDA), numpy and Python, and the
resolved config. Files are written to a temporary name in the same directory, fsync'ed and
renamed over the target (`os.replace` is atomic on POSIX and Windows), so a crash or a kill
mid-write leaves the previous checkpoint intact.
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import CheckpointError
from .stop import signals_deferred

FORMAT = "quadfire-checkpoint-v1"
REQUIRED = ("format", "model", "optimizer", "epoch", "rng")


def rng_state() -> dict:
    """The RNG states that training consumes (numpy's as plain lists, for weights_only loads)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
            "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def save(state: dict, path: str | Path) -> Path:
    """Write `state` to `path` atomically (temp file in the same directory, then rename).

    SIGINT, SIGTERM and SIGCHLD (a DataLoader worker dying) are held back until the file is
    renamed into place (`stop.signals_deferred`), so a signal can neither abort the write
    half-way nor leave the run without a checkpoint; the previous file stays until then."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with signals_deferred():
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                try:
                    torch.save({"format": FORMAT, **state}, f)
                except RuntimeError as e:
                    # torch's zip writer reports a failed write (ENOSPC: a full disk, EDQUOT)
                    # as "[enforce fail at inline_container.cc:...] unexpected pos ..."
                    if "inline_container" not in str(e):
                        raise
                    raise CheckpointError(
                        f"could not write the checkpoint {path}: the file system accepted only "
                        f"part of it ({str(e).splitlines()[0]}; {_free(path.parent)} free "
                        f"there): is the disk full or the quota used up? The previous "
                        f"checkpoint, if any, is untouched") from None
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
    return path


def _free(folder: Path) -> str:
    """The space left on `folder`'s file system, for a message."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return "unknown space"
    return f"{st.f_bavail * st.f_frsize / 2**20:.1f} MiB"


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (a crash right after it keeps the new file)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # e.g. Windows, where directories cannot be opened
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load(path: str | Path, map_location="cpu") -> dict:
    """Read a checkpoint written by `save`; any defect is a `CheckpointError` naming the file."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; expected a checkpoint file such as "
                              f"{path / 'last.pt'}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises several types for truncated/garbled zip archives
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated and cannot be read ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); it was left untouched - delete it or "
            f"resume from another file") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path} is not a quadfire checkpoint: expected format {FORMAT!r}, "
                              f"found {found!r}")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks the entries {missing}")
    return state
