"""Surrogate windows derived from a QIF neuron's parameters (derivations in
docs/surrogate-window.md).

- `band` (default): centre v_th, half-width v_th - u2: w = 2 (v_th - u2), o = 0.
- `band-below`: the band [u2, v_th] only: w = v_th - u2, o = -(v_th - u2)/2.
- `noise`: w = sqrt(2 pi) sigma / f'(v_th), f' the slope of the discretization's map
  (Euler: 1 + a (2 v_th - u1 - u2)); sigma is the tdBN input scale (alpha * v_th; v_th when
  not given).
"""
from __future__ import annotations

import math
from typing import Union

import torch

from ..errors import ParameterError
from .params import DISCRETIZATIONS
from .surrogate import SHAPES, Scalar, Window

QIF_RULES = ("band", "band-below", "noise")


def _detached(v: Scalar) -> Scalar:
    return v.detach() if isinstance(v, torch.Tensor) else v


def qif_window(rule: str, a: Scalar, u1: Scalar, u2: Scalar, v_th: Scalar,
               sigma: float | None = None, shape: str = "rect",
               discretization: str = "euler") -> Window:
    """The window of a QIF rule from the current parameter values (no gradient flows into it);
    `discretization` names the map whose slope the noise rule uses."""
    a, u1, u2, v_th = (_detached(v) for v in (a, u1, u2, v_th))
    if rule == "band":
        return Window(shape, 2 * (v_th - u2), 0.0)
    if rule == "band-below":
        return Window(shape, v_th - u2, -(v_th - u2) / 2)
    if rule == "noise":
        s = v_th if sigma is None else sigma
        if not isinstance(s, torch.Tensor) and (isinstance(s, bool) or not isinstance(
                s, (int, float)) or not s > 0):
            raise ParameterError(f"the noise window needs sigma > 0, got sigma={sigma!r}")
        slope = DISCRETIZATIONS[discretization](a, u1, u2).slope(v_th)
        return Window(shape, math.sqrt(2 * math.pi) * s / slope, 0.0)
    raise ParameterError(f"unknown QIF window rule {rule!r}; expected one of {QIF_RULES} "
                     f"or a shape in {SHAPES}")


def parse_surrogate(spec: Union[str, Window], width: float) -> tuple[str | None, Window | None]:
    """Split a user's surrogate spec into (QIF rule, fixed window); exactly one is not None."""
    if isinstance(spec, Window):
        return None, spec
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0 \
            or not math.isfinite(width):
        raise ParameterError(f"surrogate_width must be a finite number > 0, got {width!r}")
    if spec in QIF_RULES:
        return spec, None
    if spec in SHAPES:
        return None, Window(spec, width)
    raise ParameterError(f"surrogate must be a rule {QIF_RULES}, a shape {SHAPES} or a Window; "
                     f"got {spec!r}")
