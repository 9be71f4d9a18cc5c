"""The discretized QIF neuron module. Equations: `quadfire.functional.steps`."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..functional import (QIFParams, parse_surrogate, qif_default_floor, qif_step, qif_window,
                          validate_qif)
from .base import MultiStepNeuron, check_learnable, per_channel, reset_kind

# Keeps the reparameterized values strictly inside their intervals in float32, where a
# sigmoid saturates to exactly 1 for arguments above ~17.
_EPS = 1e-3


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _inv_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class QIF(MultiStepNeuron):
    """Discretized QIF neuron over ``[T, N, ...]`` sequences (docs/neuron.md).

    Args:
        a, u1, u2, v_th: the map's curvature, rest, critical potential and threshold.
        reset: "hard" (to v_reset) or "soft" (subtract v_th).
        v_reset: hard-reset value; None means u1 (and follows u1 when learnable).
        v_min: lower bound on U: "vertex" (default; see `qif_default_floor`), a float in
            [u1 - 1/a, u1], or None for no bound.
        surrogate: a window rule ("band", "band-below", "noise"), a shape ("rect", "triangle",
            "sigmoid", "atan") used with `surrogate_width`, or a `Window`.
        sigma: tdBN input scale for the "noise" rule (default v_th).
        learnable: False, "scalar" or "channel" (then `channels` is required): a, u1, u2 are
            trained through a reparameterization that keeps a > 0, u1 < u2 < v_th and
            a (u2 - u1) < 2 after any optimizer step; v_th stays fixed (tdBN scales to it).
    """

    def __init__(self, a: float = 0.25, u1: float = 0.0, u2: float = 0.5, v_th: float = 1.0,
                 reset: str = "hard", v_reset: float | None = None, v_min="vertex",
                 surrogate="band", surrogate_width: float = 1.0, sigma: float | None = None,
                 learnable=False, channels: int | None = None):
        super().__init__()
        self.soft = reset_kind(reset)
        self.learnable = check_learnable(learnable, channels)
        self.channels = channels if self.learnable == "channel" else None
        self.rule, self.fixed_window = parse_surrogate(surrogate, surrogate_width)
        self.sigma = sigma
        self.v_reset_given = v_reset
        validate_qif(a, u1, u2, v_th, u1 if v_reset is None else v_reset, v_min)
        self.v_min_mode = v_min
        self.v_th = float(v_th)
        if self.learnable:
            shape = (channels,) if self.learnable == "channel" else ()
            d = u2 - u1
            init = {"raw_gap": _inv_softplus(max(v_th - u1 - _EPS, _EPS)),
                    "raw_d": _logit((d / (v_th - u1) - _EPS) / (1 - 2 * _EPS)),
                    "raw_a": _logit((a * d / 2 - _EPS) / (1 - 2 * _EPS))}
            for name, val in init.items():
                self.register_parameter(name, nn.Parameter(torch.full(shape, val)))
        else:
            self.a, self.u1, self.u2 = float(a), float(u1), float(u2)

    def values(self):
        """Current (a, u1, u2) as floats (fixed) or tensors (learnable)."""
        if not self.learnable:
            return self.a, self.u1, self.u2
        # v_th - u1 >= _EPS even when softplus underflows to 0 for very negative raw values
        gap = _EPS + F.softplus(self.raw_gap)
        u1 = self.v_th - gap
        u2 = u1 + (_EPS + (1 - 2 * _EPS) * torch.sigmoid(self.raw_d)) * gap
        a = (2 / (u2 - u1)) * (_EPS + (1 - 2 * _EPS) * torch.sigmoid(self.raw_a))
        return a, u1, u2

    def params(self, ndim_step: int = 2) -> QIFParams:
        a, u1, u2 = self.values()
        if self.learnable:
            a, u1, u2 = (per_channel(v, ndim_step) for v in (a, u1, u2))
        window = self.fixed_window or qif_window(self.rule, a, u1, u2, self.v_th, self.sigma)
        v_reset = u1 if self.v_reset_given is None else self.v_reset_given
        if self.v_min_mode == "vertex":
            v_min = qif_default_floor(a, u1, u2)
            v_min = v_min.detach() if isinstance(v_min, torch.Tensor) else v_min
        else:
            v_min = self.v_min_mode
        return QIFParams(a, u1, u2, self.v_th, v_reset, v_min, self.soft, window)

    def step(self, x: torch.Tensor, u: torch.Tensor):
        return qif_step(x, u, self.params(x.dim()))

    def extra_repr(self) -> str:
        a, u1, u2 = self.values()
        if self.learnable:
            return f"learnable={self.learnable!r}, v_th={self.v_th}, soft={self.soft}"
        return f"a={a}, u1={u1}, u2={u2}, v_th={self.v_th}, soft={self.soft}, surrogate={self.rule or self.fixed_window}"
