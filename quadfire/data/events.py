"""Event streams to frames: equal-count integration and mass-conserving area resizing.

Frames are float32 ``[T, 2, H, W]``: channel 0 counts OFF events, channel 1 ON events
(``channel = p``), row 0 is the top of the image.
"""
from __future__ import annotations

import numpy as np

from .aedat import SENSOR_SIZE, Events
from ..errors import DataError


def integrate_frames(events: Events, T: int, size: int = SENSOR_SIZE) -> np.ndarray:
    """Count events into T frames ``[T, 2, size, size]`` holding equal numbers of events.

    Event i (in stream order) goes to frame floor(i T / N), so frame counts differ by at most
    one and no event is dropped: each frame and polarity sum to its number of events. Rows
    flip jAER's bottom-left origin to the image convention: ``row = size - 1 - y``.
    """
    n = len(events.t)
    if n < T:
        raise DataError(f"cannot split {n} events into T={T} frames of equal event count; "
                        f"expected at least {T} events")
    frame = (np.arange(n, dtype=np.int64) * T) // n
    row = size - 1 - events.y.astype(np.int64)
    col = events.x.astype(np.int64)
    flat = ((frame * 2 + events.p.astype(np.int64)) * size + row) * size + col
    counts = np.bincount(flat, minlength=T * 2 * size * size)
    return counts.reshape(T, 2, size, size).astype(np.float32)


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` overlap of output cell i (``[i s, (i+1) s)``, s = n_in / n_out, in
    input pixels) with input pixel j (``[j, j+1)``). Each column sums to one."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo = np.maximum(edges[:-1, None], np.arange(n_in)[None, :])
    hi = np.minimum(edges[1:, None], np.arange(1, n_in + 1)[None, :])
    return np.clip(hi - lo, 0.0, None)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """Area-resample ``[..., H, W]`` to ``[..., size, size]``, conserving every frame's total.

    Each input pixel's count is shared among the output pixels it overlaps in proportion to
    the overlapping area, so an output pixel holds the number of events that fell on its
    footprint (interpolation would instead average and lose the count). ``out = A F B^T``
    with the `area_weights` matrices A (rows, ``[size, H]``) and B (columns, ``[size, W]``).
    """
    *lead, h, w = frames.shape
    rows = area_weights(h, size).astype(np.float32)
    cols = area_weights(w, size).astype(np.float32)
    # Two plain 2-D matmuls: batched small matmuls are far slower in numpy's BLAS.
    out = frames.reshape(-1, w).astype(np.float32) @ cols.T              # [(..., h), size_w]
    out = out.reshape(-1, h, size).transpose(0, 2, 1).reshape(-1, h) @ rows.T
    return np.ascontiguousarray(out.reshape(-1, size, size).transpose(0, 2, 1)).reshape(
        *lead, size, size)
