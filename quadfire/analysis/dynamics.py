"""Dynamics of the discretized QIF map (derivations in docs/neuron.md).

With constant input I the sub-threshold update is U <- g(U) = f(U) + I, where
f(u) = u + a (u - u1)(u - u2) and d = u2 - u1. Everything here is closed form in float64;
tests check each result against plain iteration of the map.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..functional import QIFParams, qif_charge, qif_default_floor, qif_slope, qif_vertex
from ..errors import ParameterError


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point u* of U <- f(U) + I with the slope f'(u*); stable iff abs(slope) < 1."""

    u: float
    slope: float

    @property
    def stable(self) -> bool:
        return abs(self.slope) < 1


def qif_map(u, a: float = 0.25, u1: float = 0.0, u2: float = 0.5, I: float = 0.0):
    """g(u) = f(u) + I, the neuron's own charge (`quadfire.functional.qif_charge`) with input I,
    elementwise on floats or numpy arrays."""
    return qif_charge(I, u, QIFParams(a, u1, u2))


def slope(u, a: float = 0.25, u1: float = 0.0, u2: float = 0.5):
    """f'(u) = 1 + a (2u - u1 - u2) (`quadfire.functional.qif_slope`)."""
    return qif_slope(u, QIFParams(a, u1, u2))


def rheobase(a: float = 0.25, u1: float = 0.0, u2: float = 0.5) -> float:
    """Largest constant input with a fixed point: I* = a d^2 / 4 (saddle-node bifurcation)."""
    return a * (u2 - u1) ** 2 / 4


def vertex(a: float = 0.25, u1: float = 0.0, u2: float = 0.5) -> float:
    """u_v = (u1 + u2)/2 - 1/(2a): f decreases below it (a discretization artefact);
    `quadfire.functional.qif_vertex`."""
    return qif_vertex(a, u1, u2)


def throw_point(a: float = 0.25, u1: float = 0.0) -> float:
    """u1 - 1/a: below it f(u) > u2, so the map throws a very negative potential above the
    unstable point and the neuron fires without excitatory input. f(u) - u2 = (u - u2)(1 + a(u - u1))."""
    return u1 - 1 / a


def fixed_points(a: float = 0.25, u1: float = 0.0, u2: float = 0.5, I: float = 0.0) -> list[FixedPoint]:
    """Roots of a (u - u1)(u - u2) + I = 0: u = (u1 + u2)/2 -+ sqrt(d^2/4 - I/a), lower first.

    Empty above the rheobase (the neuron then fires regardless of its start).
    With I = 0 these are u1 (slope 1 - a d) and u2 (slope 1 + a d).
    """
    disc = (u2 - u1) ** 2 / 4 - I / a
    if disc < 0:
        return []
    mid, r = (u1 + u2) / 2, math.sqrt(disc)
    roots = [mid - r] if r == 0 else [mid - r, mid + r]
    return [FixedPoint(u, slope(u, a, u1, u2)) for u in roots]


def rest_stability(a: float = 0.25, u1: float = 0.0, u2: float = 0.5) -> str:
    """How rest behaves: 'monotone' (a d <= 1, LIF-like leak 1 - a d), 'oscillatory'
    (1 < a d < 2, decaying period-2 overshoot) or 'unstable' (a d >= 2, period doubling)."""
    ad = a * (u2 - u1)
    if ad <= 0:
        raise ParameterError(f"rest stability needs a*(u2 - u1) > 0, got {ad!r}")
    return "monotone" if ad <= 1 else ("oscillatory" if ad < 2 else "unstable")


def steps_to_threshold(I, a: float = 0.25, u1: float = 0.0, u2: float = 0.5, v_th: float = 1.0,
                       u0: float | None = None, max_steps: int = 100_000,
                       v_min: float | str | None = "vertex") -> np.ndarray:
    """Steps until the first spike (H >= v_th) under constant input I (scalar or array),
    starting from u0 (rest u1), with the neuron's floor U = max(H, v_min) ("vertex": the QIF
    default floor; None: the raw map). Returns float64: the step count where the neuron
    fires, inf where it never fires (proven from the fixed points, or the orbit settled within
    1e-12 of its stable fixed point or on the floor), and NaN where neither happened within `max_steps` (just above the rheobase
    the passage takes about pi / sqrt(a (I - I*)) steps, which can exceed any cap): the
    answer there is "more than max_steps", not "never" (`format_steps`)."""
    floor = qif_default_floor(a, u1, u2) if v_min == "vertex" else v_min
    I = np.asarray(I, dtype=np.float64)
    u = np.full(I.shape, u1 if u0 is None else u0, dtype=np.float64)
    out = np.full(I.shape, np.inf)
    fps = [fixed_points(a, u1, u2, float(i)) for i in I.ravel()]
    low = np.array([fp[0].u if fp else np.nan for fp in fps]).reshape(I.shape)
    high = np.array([fp[-1].u if fp else np.nan for fp in fps]).reshape(I.shape)
    # Proven silent without iterating: g is increasing above the vertex, so when u- and the
    # start u0 lie in [vertex, u+) the orbit moves monotonically towards u- and never exceeds
    # max(u0, u-); the floor stays inactive when it lies at or below min(u0, u-).
    u_v = vertex(a, u1, u2)
    with np.errstate(invalid="ignore"):
        silent = (u >= u_v) & (low >= u_v) & (u < high) & (np.maximum(u, low) < v_th)
        if floor is not None:
            silent &= floor <= np.minimum(u, low)
    live = ~silent
    for t in range(1, max_steps + 1):
        h = qif_map(u, a, u1, u2, I)
        fired = live & (h >= v_th)
        out[fired] = t
        live &= ~fired
        if floor is not None:
            h = np.maximum(h, floor)
        # settled: at the stable point, or held exactly in place (e.g. on the floor)
        live &= ~((np.abs(h - low) < 1e-12) | (h == u))
        if not live.any():
            break
        u = np.where(live, h, u)  # frozen once decided, so fired elements cannot overflow
    out[live] = np.nan  # undecided within max_steps
    return out


def format_steps(steps: float, max_steps: int = 100_000) -> int | str:
    """A `steps_to_threshold` value for people: the count, "never", or "more than N"."""
    if np.isnan(steps):
        return f"more than {max_steps}"
    if np.isinf(steps):
        return "never"
    return int(steps)


def firing_rate(I, a: float = 0.25, u1: float = 0.0, u2: float = 0.5, v_th: float = 1.0,
                v_reset: float | None = None) -> np.ndarray:
    """Steady firing rate (spikes per step) under constant input with hard reset to v_reset
    (u1): 1 / steps-to-threshold from the reset value, 0 where the neuron never fires or
    does not fire within `steps_to_threshold`'s cap (a rate below 1e-5)."""
    steps = steps_to_threshold(I, a, u1, u2, v_th, u0=u1 if v_reset is None else v_reset)
    return np.where(np.isfinite(steps), 1.0 / steps, 0.0)
