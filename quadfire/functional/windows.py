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

import functools
import math
from typing import Union

import numpy
import torch

from ..errors import ParameterError
from .moments import COARSE, cached_moment_width
from .params import DISCRETIZATIONS
from .surrogate import SHAPES, Scalar, Window

QIF_RULES = ("band", "band-below", "noise", "moment")
# Learnable parameters enter the moment rule rounded to this grid (a: relative, potentials: in
# units of v_th), so its width is a function of the parameters, cached, and recomputed only
# when a parameter moves to a new grid point (docs/surrogate-window.md, "The moment rule").
# 5%: a 5% move of any parameter changes the width by at most 2%, and the mismatch is flat to
# 0.001 within 10% of the best width, so rounding costs nothing measurable; a finer grid only
# multiplies the recomputations (2% computed about 4 times as many channels while training).
_MOMENT_GRID = 5e-2


def _detached(v: Scalar) -> Scalar:
    return v.detach() if isinstance(v, torch.Tensor) else v


def _moment(discretization: str, a, u1, u2, v_th, v_reset, v_min, soft, sigma, samples, rho):
    cls = DISCRETIZATIONS[discretization]
    values = (a, u1, u2, v_th, v_reset, v_min, soft)
    moving = tuple(i for i in (0, 1, 2, 4, 5) if isinstance(values[i], torch.Tensor))
    if not moving:
        return cached_moment_width(cls, values, sigma, samples, rho)[0]
    # learnable values (scalar or per channel), all rounded together: a on a relative grid, the
    # potentials in units of v_th (qif_window has detached them)
    q = _MOMENT_GRID
    x = torch.stack(torch.broadcast_tensors(*(values[i] for i in moving)))
    # numpy from here: these arrays are small, and a numpy call costs a tenth of a torch call
    shape, x = x.shape[1:], x.flatten(1).cpu().double().numpy()               # [fields, C]
    index = x / (q * v_th)                     # a floor at -inf (no floor) stays -inf
    if moving[0] == 0:
        index[0] = numpy.log(x[0]) / q          # a > 0 by construction
    like = values[moving[0]]
    fixed = tuple(None if i in moving else v for i, v in enumerate(values))
    return _layer_widths(cls, numpy.round(index).tobytes(), moving, fixed, shape, sigma, samples,
                         rho, like.dtype, like.device)


@functools.lru_cache(maxsize=1024)
def _layer_widths(cls, index: bytes, moving: tuple, fixed: tuple, shape: torch.Size,
                  sigma, samples, rho, dtype, device) -> torch.Tensor:
    """The widths of a layer whose learnable fields `moving` sit at the grid points `index`
    (float64 bytes, [fields, C]). One lookup per layer and forward while its rounded parameters
    stand still (most steps): a key per channel cost more than the rest of the neuron's
    bookkeeping. On a change, the distinct grid points (channels start equal and move slowly)
    go to the per-neuron cache, and only new ones are computed."""
    # numpy.unique(axis=1) takes twice as long as this for a layer's few hundred channels
    rows: dict = {}
    inverse = [rows.setdefault(r, len(rows))
               for r in zip(*numpy.frombuffer(index).reshape(len(moving), -1).tolist())]
    index = numpy.array(list(rows)).T                                          # [fields, U]
    grid = index * (_MOMENT_GRID * fixed[3])
    if moving[0] == 0:
        grid[0] = numpy.exp(index[0] * _MOMENT_GRID)
    columns = list(fixed)
    for i, row in zip(moving, grid.tolist()):
        columns[i] = tuple(row)
    widths = numpy.array(cached_moment_width(cls, tuple(columns), sigma, samples, rho, COARSE))
    return torch.from_numpy(widths[inverse]).to(device, dtype).reshape(shape)


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
