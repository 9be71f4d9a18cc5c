"""Surrogate windows derived from a QIF neuron's parameters (derivations in
docs/surrogate-window.md).

- `band` (default): centre v_th, half-width v_th - u2: w = 2 (v_th - u2), o = 0.
- `band-below`: the band [u2, v_th] only: w = v_th - u2, o = -(v_th - u2)/2.
- `noise`: w = sqrt(2 pi) sigma / f'(v_th), f' the slope of the discretization's map
  (Euler: 1 + a (2 v_th - u1 - u2)); sigma is the tdBN input scale (alpha * v_th; v_th when
  not given).
- `moment`: the rect width that minimises the mean squared error of the surrogate as an
  estimate of the firing probability's derivative, under the stationary law of H that the
  neuron's own map, reset and floor produce for tdBN input N(0, sigma^2), with `samples`
  samples per gradient entry and drive share `rho` (`quadfire.functional.moments`).
"""
from __future__ import annotations

import math
from typing import Union

import torch

from ..errors import ParameterError
from .moments import cached_moment_width
from .params import DISCRETIZATIONS
from .surrogate import SHAPES, Scalar, Window

QIF_RULES = ("band", "band-below", "noise", "moment")
# Learnable parameters enter the moment rule rounded to this grid (a: relative, potentials: in
# units of v_th), so its width is a function of the parameters, cached, and recomputed only
# when a parameter moves to a new grid point (docs/surrogate-window.md, "The moment rule").
_MOMENT_GRID = 2e-2


def _detached(v: Scalar) -> Scalar:
    return v.detach() if isinstance(v, torch.Tensor) else v


def _moment(discretization: str, a, u1, u2, v_th, v_reset, v_min, soft, sigma, samples, rho):
    cls = DISCRETIZATIONS[discretization]
    tensors = [v for v in (a, u1, u2, v_reset, v_min) if isinstance(v, torch.Tensor)]
    if not tensors:
        return cached_moment_width(cls, (a, u1, u2, v_th, v_reset, v_min, soft), sigma, samples,
                                   rho)[0]
    # learnable values (scalar or per channel): one cached computation per rounded set
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    q = _MOMENT_GRID

    def rounded(v, relative: bool):
        if not isinstance(v, torch.Tensor):
            return v
        v = v.detach().double().expand(shape).flatten()
        v = torch.exp(torch.round(v.log() / q) * q) if relative else \
            torch.round(v / (q * v_th)) * (q * v_th)
        return tuple(v.tolist())
    columns = (rounded(a, True), *(rounded(v, False) for v in (u1, u2)), v_th,
               *(rounded(v, False) for v in (v_reset, v_min)), soft)
    widths = cached_moment_width(cls, columns, sigma, samples, rho)
    like = tensors[0]
    return torch.tensor(widths, dtype=like.dtype, device=like.device).reshape(shape)


def qif_window(rule: str, a: Scalar, u1: Scalar, u2: Scalar, v_th: Scalar,
               sigma: float | None = None, shape: str = "rect",
               discretization: str = "euler", v_reset: Scalar | None = None,
               v_min: Scalar | None = None, soft: bool = False, samples: int = 64,
               rho: float = 0.5) -> Window:
    """The window of a QIF rule from the current parameter values (no gradient flows into it);
    `discretization` names the map whose slope the noise rule uses. The moment rule also reads
    the reset (v_reset, default u1; soft), the floor v_min, and its `samples` and `rho`."""
    a, u1, u2, v_th, v_reset, v_min = (_detached(v) for v in (a, u1, u2, v_th, v_reset, v_min))
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
    if rule == "moment":
        s = v_th if sigma is None else sigma
        v_reset = u1 if v_reset is None else v_reset
        return Window(shape, _moment(discretization, a, u1, u2, v_th, v_reset, v_min, soft, s,
                                     samples, rho), 0.0)
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
