"""Single-neuron experiments behind `quadfire analyze neuron`: null-input orbits (cobweb),
f-I curves of QIF (any discretization) against LIF, and the bifurcation diagram over
a*(u2 - u1).

Closed forms (fixed points, rheobase, vertex) live in `quadfire.analysis.dynamics`; this file
only simulates. Orbits and f-I curves run the real neuron modules, so what is plotted is what
the network computes (threshold, reset and the v_min floor included).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError, ParameterError
from ..functional import DISCRETIZATIONS, QIFParams, fire_reset
from ..neurons import LIF, QIF
from ..neurons.base import MultiStepNeuron
from . import dynamics
from .dynamics import DEFAULTS

_DISCRETIZATION_OF = {cls.model: name for name, cls in DISCRETIZATIONS.items()}


def discretization_of(p) -> str:
    """"euler", "exact" or "hybrid": which QIF map the parameter object `p` belongs to."""
    try:
        return _DISCRETIZATION_OF[getattr(p, "model", None)]
    except KeyError:
        raise ParameterError(f"expected the parameters of a QIF map (one of "
                             f"{', '.join(c.__name__ for c in DISCRETIZATIONS.values())}), got "
                             f"{type(p).__name__}") from None


def qif_neuron(p) -> QIF:
    """The QIF module whose `params()` are `p` (a `QIFParams`, `QIFExactParams` or
    `QIFHybridParams` with float fields), validated as the module validates them."""
    return QIF(p.a, p.u1, p.u2, p.v_th, reset="soft" if p.soft else "hard", v_reset=p.v_reset,
               v_min=p.v_min, surrogate=p.window, discretization=discretization_of(p),
               detach_reset=p.detach_reset)


@dataclass(frozen=True)
class Orbit:
    """A neuron's trajectory under null input: u[t] = U before step t (u[0] = start),
    h[t] = H charged at step t, spikes[t] = S at step t; all float64 arrays of length `steps`."""

    u: np.ndarray
    h: np.ndarray
    spikes: np.ndarray


def null_orbit(neuron: MultiStepNeuron, u0: float, steps: int = 30) -> Orbit:
    """Run `neuron` for `steps` steps with zero input from membrane u0."""
    if steps < 1:
        raise ParameterError(f"steps must be >= 1, got {steps!r}")
    x = torch.zeros(steps, 1, dtype=torch.float64)
    out = neuron.run(x, state=torch.full((1,), float(u0), dtype=torch.float64), trace=True)
    h = out.trace[:, 0]
    _, u_after = fire_reset(h, neuron.params(1))
    u = torch.cat([torch.tensor([float(u0)], dtype=torch.float64), u_after[:-1]])
    return Orbit(u.numpy(), h.numpy(), out.spikes[:, 0].numpy())


def fi_curve(neuron: MultiStepNeuron, currents, steps: int = 1000) -> np.ndarray:
    """Firing rate (spikes per step, over `steps` steps from rest) for each constant input.

    With a hard reset to rest every inter-spike interval equals the first one, so the result
    is floor(steps / n) / steps, n = steps from rest to the first spike (tested against
    `dynamics.steps_to_threshold` and the LIF closed form).
    """
    I = torch.as_tensor(np.asarray(currents, dtype=np.float64))
    if I.dim() != 1:
        raise InputError(f"currents must be a 1-D sequence, got shape {tuple(I.shape)}")
    with torch.no_grad():
        s = neuron(I.unsqueeze(0).expand(steps, -1).contiguous())
    return s.mean(0).numpy()


def bifurcation(ad_values, p=DEFAULTS, burn_in: int = 2000, keep: int = 64,
                offset: float = 0.05) -> list[np.ndarray]:
    """Long-run values of the raw null-input Euler map u <- f(u) (no threshold) for each a*d.

    d = u2 - u1 (of `p`, any QIF discretization's parameters) stays fixed and a = ad / d varies. The orbit starts at u1 + offset*d
    (inside the basin of rest) and the last `keep` of `burn_in + keep` iterates are returned,
    rounded to 1e-9 and de-duplicated, so a fixed point gives one value and a period-p orbit p
    values. Rest is stable for ad < 2; at ad = 2 it loses stability by period doubling (the
    map is conjugate to the logistic map with r = 1 + ad, so chaos sets in near ad ~ 2.57).
    """
    u1, u2 = p.u1, p.u2
    d = u2 - u1
    if not d > 0:
        raise ParameterError(f"bifurcation needs u1 < u2, got u1={u1!r}, u2={u2!r}")
    ad = np.asarray(ad_values, dtype=np.float64)
    if ad.ndim != 1 or not (ad > 0).all() or not (ad <= 3).all():
        raise ParameterError(f"a*d values must be a 1-D sequence in (0, 3] (beyond 3 orbits "
                             f"escape), got {ad_values!r}")
    sweep = QIFParams(ad / d, u1, u2)  # the Euler map, one per a*d, elementwise
    u = np.full(ad.shape, u1 + offset * d)
    tail = np.empty((keep, ad.size))
    for t in range(burn_in + keep):
        u = dynamics.qif_map(u, sweep)
        if t >= burn_in:
            tail[t - burn_in] = u
    return [np.unique(np.round(tail[:, i], 9)) for i in range(ad.size)]


def summary(p=DEFAULTS, max_steps: int = 100_000) -> dict:
    """The numbers `analyze neuron` prints for the QIF neuron with parameters `p` (any
    discretization's; `QIF(...).params()`): fixed points and their stability, rheobase, the
    floor, the Euler map's vertex and throw point (the exact flow's blow-up point instead) and
    steps to threshold from rest (a count, "never", or "more than N" when the simulation cap
    was reached first). The Euler map's come from its closed forms (`dynamics`), the other
    discretizations' from their own charge and step, numerically."""
    discretization = discretization_of(p)
    qif_neuron(p)  # validates the parameters
    a, u1, u2 = p.a, p.u1, p.u2
    rheo = float(p.rheobase())
    probe = np.array([0.5, 1.1, 2.0, 4.0]) * rheo
    if discretization == "euler":
        fps = dynamics.fixed_points(p)
        steps = dynamics.steps_to_threshold(probe, p, max_steps=max_steps)
        rest = dynamics.rest_stability(p)
    else:
        fps = dynamics.model_fixed_points(p)
        steps = dynamics.model_steps_to_threshold(p, probe, max_steps=max_steps)
        s = float(p.slope(torch.tensor(float(u1), dtype=torch.float64)))
        rest = "monotone" if s >= 0 else ("oscillatory" if s > -1 else "unstable")
    out = {
        "params": {"a": a, "u1": u1, "u2": u2, "v_th": p.v_th, "a*d": a * (u2 - u1),
                   "discretization": discretization},
        "fixed_points": [{"u": fp.u, "slope": fp.slope, "stable": fp.stable} for fp in fps],
        "rest": rest,
        "rheobase": rheo,
        "v_min": None if p.floor() is None else float(p.floor()),
    }
    if discretization == "euler":
        out.update(vertex=dynamics.vertex(p), throw_point=dynamics.throw_point(p))
    if discretization == "exact":
        out["blowup"] = float(p.blowup())
    out["steps_to_threshold"] = {f"{i:.6g}": dynamics.format_steps(n, max_steps)
                                 for i, n in zip(probe, steps)}
    return out


def default_lif(v_th: float = 1.0) -> LIF:
    """The LIF baseline the f-I figure compares against (tau = 2, hard reset to 0)."""
    return LIF(tau=2.0, v_th=v_th)
