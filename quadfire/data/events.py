"""Event streams to frames: equal-count integration and mass-conserving area resizing.

Frames are float32 ``[T, C, H, W]`` event counts: channel ``c`` counts the events of polarity
``p = c`` (for DVS sensors channel 0 OFF, channel 1 ON), row 0 is the top of the image. This
is the one implementation of equal-count framing in quadfire: CIFAR10-DVS recordings and every
``tonic:<name>`` dataset (`quadfire.data.tonic_datasets`) are framed by it.
"""
from __future__ import annotations

import numpy as np

from .aedat import SENSOR_SIZE, Events
from ..errors import DataError


def equal_count_bins(n: int, T: int) -> np.ndarray:
    """The frame of each of `n` events (in stream order) for T frames of equal event count.

    Event i goes to frame floor(i T / n), so frame k holds the events k n / T <= i < (k+1) n / T:
    frame counts differ by at most one and no event is dropped. (Tonic's
    ``ToFrame(n_event_bins=T)`` puts events k c .. (k+1) c - 1, c = n // T, in frame k and drops
    the last n mod T; the two agree exactly when T divides n.)
    """
    if n < T:
        raise DataError(f"cannot split {n} events into T={T} frames of equal event count; "
                        f"expected at least {T} events")
    return (np.arange(n, dtype=np.int64) * T) // n


def count_events(frame: np.ndarray, channel: np.ndarray, row: np.ndarray, col: np.ndarray,
                 shape: tuple[int, int, int, int]) -> np.ndarray:
    """float32 counts ``[T, C, H, W]`` of the events at (frame, channel, row, col), each an int
    array ``[n]``; a coordinate outside `shape` is a ValueError naming the axis."""
    index = [np.asarray(a, dtype=np.int64) for a in (frame, channel, row, col)]
    for name, a, size in zip(("frame", "channel (polarity)", "row (y)", "column (x)"), index,
                             shape):
        if a.size and (a.min() < 0 or a.max() >= size):
            raise DataError(f"event {name} outside the sensor: values {a.min()}..{a.max()}, "
                            f"expected 0..{size - 1}")
    frame, channel, row, col = index
    T, C, H, W = shape
    flat = ((frame * C + channel) * H + row) * W + col
    return np.bincount(flat, minlength=T * C * H * W).reshape(shape).astype(np.float32)


def integrate_frames(events: Events, T: int, size: int = SENSOR_SIZE) -> np.ndarray:
    """Count DVS128 events into T frames ``[T, 2, size, size]`` holding equal numbers of events
    (`equal_count_bins`): each frame and polarity sum to its number of events. Rows flip
    jAER's bottom-left origin to the image convention: ``row = size - 1 - y``.
    """
    frame = equal_count_bins(len(events.t), T)
    return count_events(frame, events.p, size - 1 - events.y.astype(np.int64), events.x,
                        (T, 2, size, size))


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
