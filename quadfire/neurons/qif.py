"""The discretized QIF neuron module. Equations: `quadfire.functional.steps`."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ParameterError
from ..functional import (DISCRETIZATIONS, QIFParams, hybrid_floor, parse_surrogate,
                          qif_default_floor, qif_window, validate_qif)
from .base import MultiStepNeuron, check_flag, check_learnable, per_channel, reset_kind

# Keeps the reparameterized values strictly inside their intervals in float32, where a
# sigmoid saturates to exactly 1 for arguments above ~17. A parameter set closer than _EPS to
# an edge gets a margin of half its distance instead, so every valid set can be represented
# exactly; below _MIN_MARGIN float32 can no longer keep the value off the edge.
_EPS = 1e-3
_MIN_MARGIN = 1e-6


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _inv_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


def _margins(frac: float) -> tuple[float, float]:
    """(low, high) margins for a fraction in (0, 1): _EPS, or half the distance to the edge."""
    return min(_EPS, frac / 2), min(_EPS, (1 - frac) / 2)


def _squash(raw, low: float, high: float):
    """sigmoid(raw) mapped into (low, 1 - high)."""
    return low + (1 - low - high) * torch.sigmoid(raw)


def _unsquash(frac: float, low: float, high: float) -> float:
    return _logit((frac - low) / (1 - low - high))


class QIF(MultiStepNeuron):
    """Discretized QIF neuron over ``[T, N, ...]`` sequences (docs/neuron.md).

    Args:
        discretization: "euler" (the paper's map, `QIFParams`), "exact" (the exact null-input
            flow over a step, `QIFExactParams`) or "hybrid" (Euler above rest, the matched LIF
            below, `QIFHybridParams`). Registered as the neurons "qif", "qif-exact" and
            "qif-hybrid".
        a, u1, u2, v_th: the map's curvature, rest, critical potential and threshold.
        reset: "hard" (to v_reset) or "soft" (subtract v_th).
        v_reset: hard-reset value; None means u1 (and follows u1 when learnable).
        v_min: lower bound on U: "vertex" (default: `qif_default_floor` for the Euler map, none
            for the exact one, which increases everywhere, `hybrid_floor` for the hybrid one:
            none while a d <= 1), a float in [u1 - 1/a, u1] (Euler), <= u1 (exact) or in
            [hybrid_floor, u1] (hybrid), or None for no bound.
        surrogate: a window rule ("band", "band-below", "noise", "moment"), a shape ("rect",
            "triangle", "sigmoid", "atan") used with `surrogate_width`, or a `Window`.
        sigma: tdBN input scale for the "noise" and "moment" rules (default v_th).
        samples, rho: the "moment" rule's samples per gradient entry and drive share
            (docs/surrogate-window.md, "The moment rule").
        detach_reset: no gradient through the reset's spike (dU/dH = 1 - S): bounds the
            gradient's growth with T (docs/neuron.md, "Gradients through time").
        learnable: False, "scalar" or "channel" (then `channels` is required): a, u1, u2 are
            trained through a reparameterization that keeps a > 0, u1 < u2 < v_th and
            a (u2 - u1) < 2 after any optimizer step; v_th stays fixed (tdBN scales to it).
            The initial values are represented exactly; the margins that keep them inside
            their intervals in float32 are _EPS, or half the distance to an edge when the
            initial value lies closer.
    """

    # the defaults are QIFParams' (a = 0.25, u1 = 0, u2 = 0.5, v_th = 1), written there once
    def __init__(self, a: float = QIFParams.a, u1: float = QIFParams.u1, u2: float = QIFParams.u2,
                 v_th: float = QIFParams.v_th, reset: str = "hard", v_reset: float | None = None,
                 v_min="vertex",
                 surrogate="band", surrogate_width: float = 1.0, sigma: float | None = None,
                 samples: int = 64, rho: float = 0.5, learnable=False, channels: int | None = None, discretization: str = "euler",
                 detach_reset: bool = False):
        super().__init__()
        self.detach_reset = check_flag("detach_reset", detach_reset)
        self.soft = reset_kind(reset)
        self.learnable = check_learnable(learnable, channels)
        self.channels = channels if self.learnable == "channel" else None
        self.rule, self.fixed_window = parse_surrogate(surrogate, surrogate_width)
        if sigma is not None and (isinstance(sigma, bool) or not isinstance(sigma, (int, float))
                                  or not math.isfinite(sigma) or sigma <= 0):
            raise ParameterError(f"QIF sigma (the tdBN input scale of the noise window) must be "
                                 f"a finite number > 0 or None, got {sigma!r}")
        self.sigma = sigma
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ParameterError(f"QIF samples (the moment rule's samples per gradient entry) "
                                 f"must be an integer >= 1, got {samples!r}")
        if isinstance(rho, bool) or not isinstance(rho, (int, float)) or not 0 <= rho < 1:
            raise ParameterError(f"QIF rho (the moment rule's drive share) must be a number in "
                                 f"[0, 1), got {rho!r}")
        self.samples, self.rho = samples, float(rho)
        self.v_reset_given = v_reset
        validate_qif(a, u1, u2, v_th, u1 if v_reset is None else v_reset, v_min, discretization)
        self.discretization = discretization
        self.v_min_mode = v_min
        self.v_th = float(v_th)
        if self.learnable:
            self._init_learnable(a, u1, u2, v_th, (channels,) if self.learnable == "channel" else ())
        else:
            self.a, self.u1, self.u2 = float(a), float(u1), float(u2)

    def _init_learnable(self, a: float, u1: float, u2: float, v_th: float, shape) -> None:
        """Raw parameters that `values` maps back to (a, u1, u2), with the margins (module
        constants) chosen so the initial values lie inside them."""
        # a d < 2: a stable rest for the Euler and hybrid maps; the exact flow needs no bound,
        # but keeps theirs so that variants are compared over the same range
        self._ad_max = 2.0
        gap, d = v_th - u1, u2 - u1
        ratio, half_ad = d / gap, a * d / self._ad_max
        self._gap_margin = min(_EPS, gap / 2)
        self._d_margins, self._a_margins = _margins(ratio), _margins(half_ad)
        if min(self._d_margins[1], self._a_margins[1]) < _MIN_MARGIN:
            raise ParameterError(
                f"learnable QIF needs u2 - u1 < {1 - 2 * _MIN_MARGIN:g} (v_th - u1) and "
                f"a*(u2 - u1) < {self._ad_max * (1 - 2 * _MIN_MARGIN):g}, so that float32 keeps "
                f"them inside their limits; got u2={u2!r}, v_th={v_th!r}, "
                f"a*(u2 - u1)={self._ad_max * half_ad:g} (use "
                f"learnable=False for parameters this close to a limit)")
        init = {"raw_gap": _inv_softplus(gap - self._gap_margin),
                "raw_d": _unsquash(ratio, *self._d_margins),
                "raw_a": _unsquash(half_ad, *self._a_margins)}
        for name, val in init.items():
            self.register_parameter(name, nn.Parameter(torch.full(shape, val)))
        got = [float(v.detach().flatten()[0]) for v in self.values()]
        if not all(g > 0 for g in (got[0], got[2] - got[1], v_th - got[2])) or \
                not math.isfinite(got[0]):
            raise ParameterError(f"learnable QIF cannot represent a={a!r}, u1={u1!r}, u2={u2!r} "
                                 f"in float32 (it would hold a={got[0]:g}, u1={got[1]:g}, "
                                 f"u2={got[2]:g}); use learnable=False")

    def values(self):
        """Current (a, u1, u2) as floats (fixed) or tensors (learnable)."""
        if not self.learnable:
            return self.a, self.u1, self.u2
        # v_th - u1 >= the margin even when softplus underflows to 0 for very negative raw values
        gap = self._gap_margin + F.softplus(self.raw_gap)
        u1 = self.v_th - gap
        u2 = u1 + _squash(self.raw_d, *self._d_margins) * gap
        a = (self._ad_max / (u2 - u1)) * _squash(self.raw_a, *self._a_margins)
        return a, u1, u2

    def params(self, ndim_step: int = 2):
        """The frozen parameters of this discretization (`QIFParams`, `QIFExactParams` or
        `QIFHybridParams`) for steps of `ndim_step` dims."""
        a, u1, u2 = self.values()
        if self.learnable:
            a, u1, u2 = (per_channel(v, ndim_step) for v in (a, u1, u2))
        v_reset = u1 if self.v_reset_given is None else self.v_reset_given
        if self.v_min_mode == "vertex":
            v_min = {"euler": qif_default_floor, "exact": lambda *_: None,
                     "hybrid": hybrid_floor}[self.discretization](a, u1, u2)
            v_min = v_min.detach() if isinstance(v_min, torch.Tensor) else v_min
        else:
            v_min = self.v_min_mode
        window = self.fixed_window or qif_window(
            self.rule, a, u1, u2, self.v_th, self.sigma, discretization=self.discretization,
            v_reset=v_reset, v_min=v_min, soft=self.soft, samples=self.samples, rho=self.rho)
        cls = DISCRETIZATIONS[self.discretization]
        return cls(a, u1, u2, self.v_th, v_reset, v_min, self.soft, window, self.detach_reset)

    def extra_repr(self) -> str:
        a, u1, u2 = self.values()
        d = "" if self.discretization == "euler" else f"discretization={self.discretization!r}, "
        if self.learnable:
            return f"{d}learnable={self.learnable!r}, v_th={self.v_th}, soft={self.soft}"
        return (f"{d}a={a}, u1={u1}, u2={u2}, v_th={self.v_th}, soft={self.soft}, "
                f"surrogate={self.rule or self.fixed_window}")
