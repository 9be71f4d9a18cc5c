"""Surrogate-gradient windows: the backward pass of the spike S = Heaviside(H - v_th).

A window is a shape, a width w and an offset o. With z = (H - v_th) - o it replaces dS/dH by
g(z) = (1/w) phi(z/w), where phi has unit area and peak 1, so **the width is 1/peak** for every
shape and every window integrates to 1 (a spike is worth one unit of potential). The shapes::

    | shape    | g(z)                                      | primitive G(z) (g = G')          |
    |----------|-------------------------------------------|----------------------------------|
    | rect     | 1/w on abs(z) < w/2                       | clamp(z/w + 1/2, 0, 1)           |
    | triangle | max(0, 1/w - abs(z)/w^2)  (support 2w)    | piecewise quadratic, 0 -> 1      |
    | sigmoid  | k s (1 - s), s = sigmoid(k z), k = 4/w    | sigmoid(k z)                     |
    | atan     | (1/w) / (1 + (pi z / w)^2)                | atan(pi z / w)/pi + 1/2          |

The triangle of width 1 is the TET/tdBN baseline (`(gamma - abs(x))/gamma^2`, gamma = 1).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import torch

from ..errors import ParameterError

Scalar = Union[float, torch.Tensor]

SHAPES = ("rect", "triangle", "sigmoid", "atan")


@dataclass(frozen=True)
class Window:
    """A surrogate window: `shape` in SHAPES, `width` = 1/peak (> 0), `offset` of the centre
    from the threshold. width and offset may be tensors broadcastable against one time step
    (per-channel windows of learnable neurons); they never carry gradient."""

    shape: str = "rect"
    width: Scalar = 1.0
    offset: Scalar = 0.0

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ParameterError(f"surrogate shape must be one of {SHAPES}, got {self.shape!r}")
        w = self.width
        if isinstance(w, torch.Tensor):
            # under torch.compile a data-dependent check would break the graph; tensor widths
            # come from qif_window on validated parameters, so eager checking is enough
            ok = torch.compiler.is_compiling() or bool((w > 0).all())
        else:
            ok = isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) \
                and w > 0
        if not ok:
            raise ParameterError(f"surrogate width must be a finite number > 0, got {w!r}")
        o = self.offset
        if not isinstance(o, torch.Tensor) and (isinstance(o, bool) or not isinstance(
                o, (int, float)) or not math.isfinite(o)):
            raise ParameterError(f"surrogate offset must be a finite number, got {o!r}")

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """g(x - offset) for x = H - v_th."""
        w, z = self.width, x - self.offset
        if self.shape == "rect":
            return (z.abs() < w / 2).to(x.dtype) / w
        if self.shape == "triangle":
            return torch.clamp(1 / w - z.abs() / (w * w), min=0)
        if self.shape == "sigmoid":
            k = 4 / w
            s = torch.sigmoid(k * z)
            return k * s * (1 - s)
        return (1 / w) / (1 + (math.pi * z / w) ** 2)

    def primitive(self, x: torch.Tensor) -> torch.Tensor:
        """G(x - offset), the smooth step whose derivative is `grad` (for finite-difference tests)."""
        w, z = self.width, x - self.offset
        if self.shape == "rect":
            return torch.clamp(z / w + 0.5, 0, 1)
        if self.shape == "triangle":
            zc = torch.clamp(z / w, -1, 1)
            return torch.where(zc < 0, (zc + 1) ** 2 / 2, 1 - (1 - zc) ** 2 / 2)
        if self.shape == "sigmoid":
            return torch.sigmoid(4 * z / w)
        return torch.atan(math.pi * z / w) / math.pi + 0.5


class _SpikeFn(torch.autograd.Function):
    """Heaviside forward (fires at x >= 0), window backward."""

    @staticmethod
    def forward(ctx, x, window):
        ctx.save_for_backward(x)
        ctx.window = window
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.window.grad(x), None


def spike(x: torch.Tensor, window: Window) -> torch.Tensor:
    """S = Heaviside(x) with surrogate gradient window.grad(x); x = H - v_th."""
    return _SpikeFn.apply(x, window)
