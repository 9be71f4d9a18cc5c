"""Dynamics of the discretized QIF maps (derivations in docs/neuron.md).

With constant input I the sub-threshold update is U <- g(U) = f(U) + I, where for the Euler map
f(u) = u + a (u - u1)(u - u2) and d = u2 - u1. The first half is the Euler map in closed form,
float64, for its parameters `p` (a `QIFParams`, default the paper's); the `model_*` functions
at the end handle any model (`NeuronParams`: the exact and hybrid QIF maps, a user's model)
numerically through its own charge and step. Tests check each
result against plain iteration of the map and the closed forms.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ParameterError
from ..functional import QIFParams, neuron_step, qif_charge, qif_vertex

# The paper's defaults (a = 0.25, u1 = 0, u2 = 0.5, v_th = 1, reset to u1, the vertex floor),
# written once, in `QIFParams`; `QIF(a=...).params()` gives any other neuron's.
DEFAULTS = QIFParams()


@dataclass(frozen=True)
class FixedPoint:
    """A fixed point u* of U <- f(U) + I with the slope f'(u*); stable iff abs(slope) < 1."""

    u: float
    slope: float

    @property
    def stable(self) -> bool:
        return abs(self.slope) < 1


def _euler(p) -> QIFParams:
    """`p` itself when it is the Euler map's parameters (the closed forms below are its)."""
    if getattr(p, "model", None) != QIFParams.model:
        raise ParameterError(f"the closed forms are those of the Euler QIF map (QIFParams); got "
                             f"{type(p).__name__}: use the model_* functions for other models")
    return p


def qif_map(u, p: QIFParams = DEFAULTS, I: float = 0.0):
    """g(u) = f(u) + I, the neuron's own charge (`QIFParams.charge`) with input I,
    elementwise on floats or numpy arrays (the fields of `p` may be arrays too)."""
    return qif_charge(I, u, _euler(p))


def slope(u, p: QIFParams = DEFAULTS):
    """f'(u) = 1 + a (2u - u1 - u2) (`QIFParams.slope`)."""
    return _euler(p).slope(u)


def rheobase(p: QIFParams = DEFAULTS) -> float:
    """Largest constant input with a fixed point, a d^2 / 4 (`QIFParams.rheobase`)."""
    return _euler(p).rheobase()


def vertex(p: QIFParams = DEFAULTS) -> float:
    """u_v = (u1 + u2)/2 - 1/(2a): f decreases below it (a discretization artefact);
    `quadfire.functional.qif_vertex`."""
    p = _euler(p)
    return qif_vertex(p.a, p.u1, p.u2)


def throw_point(p: QIFParams = DEFAULTS) -> float:
    """u1 - 1/a: below it f(u) > u2, so the map throws a very negative potential above the
    unstable point and the neuron fires without excitatory input. f(u) - u2 = (u - u2)(1 + a(u - u1))."""
    p = _euler(p)
    return p.u1 - 1 / p.a


def fixed_points(p: QIFParams = DEFAULTS, I: float = 0.0) -> list[FixedPoint]:
    """Roots of a (u - u1)(u - u2) + I = 0: u = (u1 + u2)/2 -+ sqrt(d^2/4 - I/a), lower first.

    Empty above the rheobase (the neuron then fires regardless of its start).
    With I = 0 these are u1 (slope 1 - a d) and u2 (slope 1 + a d).
    """
    p = _euler(p)
    a, u1, u2 = p.a, p.u1, p.u2
    disc = (u2 - u1) ** 2 / 4 - I / a
    if disc < 0:
        return []
    mid, r = (u1 + u2) / 2, math.sqrt(disc)
    roots = [mid - r] if r == 0 else [mid - r, mid + r]
    return [FixedPoint(u, slope(u, p)) for u in roots]


def rest_stability(p: QIFParams = DEFAULTS) -> str:
    """How rest behaves: 'monotone' (a d <= 1, LIF-like leak 1 - a d), 'oscillatory'
    (1 < a d < 2, decaying period-2 overshoot) or 'unstable' (a d >= 2, period doubling)."""
    p = _euler(p)
    ad = p.a * (p.u2 - p.u1)
    if ad <= 0:
        raise ParameterError(f"rest stability needs a*(u2 - u1) > 0, got {ad!r}")
    return "monotone" if ad <= 1 else ("oscillatory" if ad < 2 else "unstable")


def steps_to_threshold(I, p: QIFParams = DEFAULTS, u0: float | None = None,
                       max_steps: int = 100_000) -> np.ndarray:
    """Steps until the first spike (H >= p.v_th) under constant input I (scalar or array),
    starting from u0 (rest u1), with the neuron's floor U = max(H, p.v_min) (None: the raw
    map; `QIF(...).params()` carries the neuron's own floor). Returns float64: the step count
    where the neuron fires, inf where it never fires (proven from the fixed points, or the
    orbit settled within 1e-12 of its stable fixed point or on the floor), and NaN where
    neither happened within `max_steps` (just above the rheobase the passage takes about
    pi / sqrt(a (I - I*)) steps, which can exceed any cap): the answer there is "more than
    max_steps", not "never" (`format_steps`)."""
    p = _euler(p)
    u1, v_th, floor = p.u1, p.v_th, p.floor()
    I = np.asarray(I, dtype=np.float64)
    u = np.full(I.shape, u1 if u0 is None else u0, dtype=np.float64)
    out = np.full(I.shape, np.inf)
    fps = [fixed_points(p, float(i)) for i in I.ravel()]
    low = np.array([fp[0].u if fp else np.nan for fp in fps]).reshape(I.shape)
    high = np.array([fp[-1].u if fp else np.nan for fp in fps]).reshape(I.shape)
    # Proven silent without iterating: g is increasing above the vertex, so when u- and the
    # start u0 lie in [vertex, u+) the orbit moves monotonically towards u- and never exceeds
    # max(u0, u-); the floor stays inactive when it lies at or below min(u0, u-).
    u_v = vertex(p)
    with np.errstate(invalid="ignore"):
        silent = (u >= u_v) & (low >= u_v) & (u < high) & (np.maximum(u, low) < v_th)
        if floor is not None:
            silent &= floor <= np.minimum(u, low)
    live = ~silent
    for t in range(1, max_steps + 1):
        h = qif_map(u, p, I)
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


def firing_rate(I, p: QIFParams = DEFAULTS) -> np.ndarray:
    """Steady firing rate (spikes per step) under constant input with hard reset to
    p.v_reset: 1 / steps-to-threshold from the reset value, 0 where the neuron never fires
    or does not fire within `steps_to_threshold`'s cap (a rate below 1e-5)."""
    steps = steps_to_threshold(I, p, u0=p.v_reset)
    return np.where(np.isfinite(steps), 1.0 / steps, 0.0)


# -- any neuron model, numerically (the exact and hybrid QIF maps, a user's model) ------------

def model_map(p, u, I: float = 0.0) -> np.ndarray:
    """H = charge(I, U) of the model `p` (a `NeuronParams`) in float64, elementwise on floats
    or numpy arrays: its null-input map shifted by a constant input."""
    u = torch.as_tensor(np.asarray(u, dtype=np.float64))
    return p.charge(torch.full_like(u, float(I)), u).numpy()


def model_fixed_points(p, I: float = 0.0, lo: float | None = None, hi: float | None = None,
                       points: int = 20001) -> list[FixedPoint]:
    """Fixed points u* = charge(I, u*) of model `p` in [lo, hi] (default: 4 d around rest, d
    the distance from rest to the critical point or v_th), found as sign changes of
    charge(I, u) - u on a grid and refined by bisection to 1e-12; slope from `p.slope`.
    Tested against the closed forms of the Euler and exact QIF maps."""
    rest = float(p.rest())
    crit = p.critical()
    d = (float(crit) if crit is not None else float(p.v_th)) - rest
    lo = rest - 4 * d if lo is None else lo
    hi = rest + 4 * d if hi is None else hi
    grid = np.linspace(lo, hi, points)
    with np.errstate(invalid="ignore"):
        r = model_map(p, grid, I) - grid
    out = []
    for i in np.flatnonzero(np.isfinite(r[:-1]) & np.isfinite(r[1:]) &
                            ((r[:-1] == 0) | (np.sign(r[:-1]) != np.sign(r[1:])))):
        a, b = grid[i], grid[i + 1]
        if r[i] == 0:
            a = b = grid[i]
        for _ in range(100):
            if b - a <= 1e-12:
                break
            m = (a + b) / 2
            if np.sign(model_map(p, m, I) - m) == np.sign(r[i]):
                a = m
            else:
                b = m
        u = (a + b) / 2
        if not out or abs(out[-1].u - u) > 1e-9:
            out.append(FixedPoint(float(u), float(p.slope(torch.tensor(u, dtype=torch.float64)))))
    return out


def model_steps_to_threshold(p, I, u0: float | None = None, max_steps: int = 100_000) -> np.ndarray:
    """`steps_to_threshold` for any model by iteration of its own step (threshold, reset and
    floor included): the step count of the first spike under constant input I from u0 (rest),
    inf where the orbit settled (moved by less than 1e-12) without firing, NaN where neither
    happened within `max_steps`."""
    I = torch.as_tensor(np.asarray(I, dtype=np.float64))
    u = torch.full(I.shape, float(p.rest()) if u0 is None else float(u0), dtype=torch.float64)
    out = torch.full(I.shape, float("nan"), dtype=torch.float64)
    live = torch.ones(I.shape, dtype=torch.bool)
    with torch.no_grad():
        for t in range(1, max_steps + 1):
            s, nxt = neuron_step(I, u, p)
            fired = live & (s > 0)
            out[fired] = t
            live &= ~fired
            settled = live & ((nxt - u).abs() < 1e-12)
            out[settled] = float("inf")
            live &= ~settled
            if not live.any():
                break
            u = torch.where(live, nxt, u)
    return out.numpy()

