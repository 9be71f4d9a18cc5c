"""Frozen parameter objects for the neuron step functions, and their validation.

Each field is a Python float or a tensor broadcastable against one time step of the input
(``[N, C, ...]``); tensors appear when parameters are learnable. Validation of user-supplied
floats happens once, here, at construction (`validate_qif`, `validate_lif`); learnable tensors
are valid by construction (see `quadfire.neurons.qif.QIF.values`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import torch

from ..errors import ParameterError
from .surrogate import Window

Scalar = Union[float, torch.Tensor]


@dataclass(frozen=True)
class QIFParams:
    """Parameters of the discretized QIF map (equations in `quadfire.functional.steps`).

    a: curvature (> 0); u1: rest potential; u2: critical potential (unstable fixed point);
    v_th: threshold; v_reset: hard-reset value; v_min: lower bound on the membrane (None: no
    bound); soft: subtract v_th on a spike instead of resetting to v_reset; window: the
    surrogate used in place of dS/dH.
    """

    a: Scalar = 0.25
    u1: Scalar = 0.0
    u2: Scalar = 0.5
    v_th: Scalar = 1.0
    v_reset: Scalar = 0.0
    v_min: Scalar | None = -1.75
    soft: bool = False
    window: Window = Window("rect", 1.0)


@dataclass(frozen=True)
class LIFParams:
    """Parameters of the leaky map H = U - k (U - v_rest) + X (see `quadfire.functional.steps`).

    k = 1/tau is the leak per step, in [0, 1]: k = 0 is the IF neuron, k = 0.5 the tau = 2
    LIF of the TET/tdBN code. v_rest is also the initial potential.
    """

    k: Scalar = 0.5
    v_rest: Scalar = 0.0
    v_th: Scalar = 1.0
    v_reset: Scalar = 0.0
    soft: bool = False
    window: Window = Window("triangle", 1.0)


def qif_vertex(a: Scalar, u1: Scalar, u2: Scalar) -> Scalar:
    """Vertex of f(u) = u + a (u - u1)(u - u2): u_v = (u1 + u2)/2 - 1/(2a). f decreases below it."""
    return (u1 + u2) / 2 - 1 / (2 * a)


def qif_default_floor(a: Scalar, u1: Scalar, u2: Scalar) -> Scalar:
    """The `v_min="vertex"` guard: the vertex, or rest itself when the vertex lies above rest.

    For a*(u2 - u1) <= 1 the vertex is at or below u1 and is the natural floor: on [u_v, inf)
    the map is increasing, so more inhibition always means a lower potential. For a*d > 1 the
    vertex lies above rest; flooring at u1 keeps every potential in [u1 - 1/a, u2], where
    f(u) <= u2 < v_th, so inhibition still can never cause a spike (docs/neuron.md).
    """
    v = qif_vertex(a, u1, u2)
    if isinstance(v, torch.Tensor):
        return torch.minimum(v, torch.as_tensor(u1, dtype=v.dtype, device=v.device))
    return min(v, u1)


def _fmt(**kw) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kw.items())


def validate_qif(a: float, u1: float, u2: float, v_th: float, v_reset: float,
                 v_min: float | str | None) -> float | None:
    """Raise ParameterError naming the first violated condition (docs/neuron.md, section 1).

    Returns the resolved floor (`v_min="vertex"` becomes `qif_default_floor`)."""
    given = _fmt(a=a, u1=u1, u2=u2, v_th=v_th)
    for name, val in (("a", a), ("u1", u1), ("u2", u2), ("v_th", v_th), ("v_reset", v_reset)):
        if not isinstance(val, (int, float)) or val != val or abs(val) == float("inf"):
            raise ParameterError(f"QIF parameter {name} must be a finite number, got {val!r}")
    if not a > 0:
        raise ParameterError(f"QIF needs a > 0 (the map must curve upwards); got {given}")
    if not u1 < u2:
        raise ParameterError(f"QIF needs u1 < u2 (rest below the critical potential); got {given}")
    if not u2 < v_th:
        raise ParameterError(f"QIF needs u2 < v_th (critical potential below threshold); got {given}")
    if not a * (u2 - u1) < 2:
        raise ParameterError(
            f"QIF needs a*(u2 - u1) < 2 for a stable rest (period doubling at 2); "
            f"got a*(u2 - u1) = {a * (u2 - u1):g} with {given}")
    if not v_reset < v_th:
        raise ParameterError(f"QIF needs v_reset < v_th; got v_reset={v_reset!r}, v_th={v_th!r}")
    if v_min == "vertex":
        return qif_default_floor(a, u1, u2)
    if v_min is not None:
        if not isinstance(v_min, (int, float)) or v_min != v_min:
            raise ParameterError(f"v_min must be 'vertex', a float or None, got {v_min!r}")
        lo = u1 - 1 / a
        if not (lo <= v_min <= u1):
            raise ParameterError(
                f"QIF needs u1 - 1/a <= v_min <= u1 (below u1 - 1/a the map throws the potential "
                f"above u2, so inhibition could cause a spike); got v_min={v_min!r}, "
                f"allowed [{lo:g}, {u1:g}] for {given}")
    return v_min


def validate_lif(tau: float, v_th: float, v_reset: float, v_rest: float) -> None:
    """Raise ValueError naming the violated condition for a LIF/IF neuron."""
    for name, val in (("tau", tau), ("v_th", v_th), ("v_reset", v_reset), ("v_rest", v_rest)):
        if not isinstance(val, (int, float)) or val != val or (name != "tau" and abs(val) == float("inf")):
            raise ParameterError(f"LIF parameter {name} must be a number, got {val!r}")
    if not tau >= 1:
        raise ParameterError(f"LIF needs tau >= 1 (leak 1/tau in (0, 1]); got tau={tau!r}")
    if not v_reset < v_th:
        raise ParameterError(f"LIF needs v_reset < v_th; got v_reset={v_reset!r}, v_th={v_th!r}")
    if not v_rest < v_th:
        raise ParameterError(f"LIF needs v_rest < v_th; got v_rest={v_rest!r}, v_th={v_th!r}")
