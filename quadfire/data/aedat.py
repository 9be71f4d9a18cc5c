"""Reader for jAER AEDAT 1.0 / 2.0 recordings of a DVS128 camera (the CIFAR10-DVS originals).

File layout: ASCII header lines that start with ``#`` (the first is ``#!AER-DAT2.0``, each ends
with CR LF), then a flat array of big-endian events with no framing:

- AEDAT 2.0: uint32 address, uint32 timestamp (8 bytes per event);
- AEDAT 1.0: uint16 address, uint32 timestamp (6 bytes per event).

Timestamps tick in microseconds. DVS128 address bits (jAER's DVS128 / Tmpdiff128 extractor):

- bit 0: event type; raw 0 is an ON (brightness increase) event, raw 1 an OFF event, so the
  polarity is ``p = 1 - bit0`` (jAER's "fliptype");
- bits 1-7: column, counted from the right edge: ``x = 127 - ((addr >> 1) & 0x7F)`` (jAER's
  "flipx");
- bits 8-14: row ``y = (addr >> 8) & 0x7F``, counted from the bottom edge (jAER's origin is the
  lower left corner; `quadfire.data.events` turns it into image rows);
- bit 15 marks a synchronisation (external input) event and bit 31 a special event in 32-bit
  addresses: neither is a pixel event, so both are dropped.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
from ..errors import DataError

SENSOR_SIZE = 128
MAGIC = b"#!AER-DAT"
SYNC_BIT = 0x8000
SPECIAL_BIT = 0x80000000


class Events(NamedTuple):
    """Pixel events in file order, each array ``[N]``: t (int64, microseconds), x (int16,
    column 0..127 from the left), y (int16, row 0..127 from the bottom), p (uint8, 1 = ON)."""

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: np.ndarray


def _split_header(data: bytes, path: Path) -> tuple[int, int]:
    """(major version, offset of the first event) from the '#' header lines."""
    if not data.startswith(MAGIC):
        raise DataError(f"{path} is not a jAER AEDAT recording: expected a first header line "
                        f"'#!AER-DAT2.0', got {data[:24]!r}")
    pos = 0
    version = data[len(MAGIC):data.find(b"\n")].strip().decode("ascii", "replace")
    # The first body byte is the top byte of a big-endian address, never '#' (0x23) for DVS128
    # pixel events, so header lines end at the first line that does not start with '#'.
    while data.startswith(b"#", pos):
        end = data.find(b"\n", pos)
        if end < 0:
            raise DataError(f"truncated AEDAT file {path}: header line at byte {pos} never ends")
        pos = end + 1
    try:
        major = int(float(version))
    except ValueError:
        raise DataError(f"{path}: unreadable AEDAT version {version!r} in the first header "
                        f"line") from None
    if major not in (1, 2):
        raise DataError(f"{path}: AEDAT {version} is not supported; expected the AEDAT 2.0 "
                        f"files CIFAR10-DVS was published in (1.0 is also read)")
    return major, pos


def read_aedat(path: str | Path) -> Events:
    """Decode the DVS128 pixel events of one AEDAT 1.0 / 2.0 file (see the module docstring)."""
    path = Path(path)
    data = path.read_bytes()
    major, start = _split_header(data, path)
    address = ">u4" if major == 2 else ">u2"
    dtype = np.dtype([("address", address), ("t", ">u4")])
    body = len(data) - start
    if body % dtype.itemsize:
        raise DataError(f"truncated AEDAT file {path}: {body} bytes of events is not a whole "
                        f"number of {dtype.itemsize}-byte events")
    raw = np.frombuffer(data, dtype=dtype, offset=start)
    addr = raw["address"].astype(np.uint32)
    keep = (addr & (SYNC_BIT | SPECIAL_BIT)) == 0
    addr = addr[keep]
    return Events(
        t=raw["t"][keep].astype(np.int64),
        x=(SENSOR_SIZE - 1 - ((addr >> 1) & 0x7F)).astype(np.int16),
        y=((addr >> 8) & 0x7F).astype(np.int16),
        p=(1 - (addr & 1)).astype(np.uint8),
    )
