"""LIF, PLIF and IF baseline modules. Equations: `quadfire.functional.steps`."""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ParameterError
from ..functional import QIF_RULES, LIFParams, parse_surrogate, validate_lif
from .base import MultiStepNeuron, check_flag, check_learnable, per_channel, reset_kind


def _fixed_window(surrogate, width):
    if isinstance(surrogate, str) and surrogate in QIF_RULES:
        raise ParameterError(f"window rule {surrogate!r} is derived from QIF parameters; LIF-family "
                         f"neurons take a shape ('rect', 'triangle', 'sigmoid', 'atan') or a Window")
    return parse_surrogate(surrogate, width)[1]


class LIF(MultiStepNeuron):
    """Leaky integrate-and-fire: H = U - (U - v_rest)/tau + X. The default (tau = 2, v_th = 1,
    hard reset to 0, triangle surrogate of width 1) is the TET/tdBN baseline."""

    def __init__(self, tau: float = 2.0, v_th: float = 1.0, reset: str = "hard",
                 v_reset: float = 0.0, v_rest: float = 0.0, surrogate="triangle",
                 surrogate_width: float = 1.0, detach_reset: bool = False):
        super().__init__()
        self.detach_reset = check_flag("detach_reset", detach_reset)
        validate_lif(tau, v_th, v_reset, v_rest)
        self.tau, self.v_th, self.v_reset, self.v_rest = float(tau), float(v_th), float(v_reset), float(v_rest)
        self.soft = reset_kind(reset)
        self.window = _fixed_window(surrogate, surrogate_width)

    def leak(self, ndim_step: int):
        return 1.0 / self.tau

    def params(self, ndim_step: int = 2) -> LIFParams:
        return LIFParams(self.leak(ndim_step), self.v_rest, self.v_th, self.v_reset, self.soft,
                         self.window, self.detach_reset)

    def extra_repr(self) -> str:
        return f"tau={self.tau}, v_th={self.v_th}, soft={self.soft}, window={self.window}"


class PLIF(LIF):
    """Parametric LIF: the leak k = 1/tau = sigmoid(w) is learned (scalar or per channel),
    which keeps it in (0, 1) after any optimizer step. `tau` is the initial value (> 1)."""

    def __init__(self, tau: float = 2.0, learnable="scalar", channels: int | None = None, **kw):
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not tau > 1:
            raise ParameterError(f"PLIF needs an initial tau > 1 (leak in (0, 1)); got tau={tau!r}")
        super().__init__(tau=tau, **kw)
        self.learnable = check_learnable(learnable, channels) or "scalar"
        self.channels = channels if self.learnable == "channel" else None
        shape = (channels,) if self.learnable == "channel" else ()
        self.w = nn.Parameter(torch.full(shape, -math.log(tau - 1)))

    def leak(self, ndim_step: int):
        return per_channel(torch.sigmoid(self.w), ndim_step)

    def extra_repr(self) -> str:
        return f"learnable={self.learnable!r}, v_th={self.v_th}, soft={self.soft}"


class IF(LIF):
    """Integrate-and-fire: no leak (H = U + X)."""

    def __init__(self, v_th: float = 1.0, reset: str = "hard", v_reset: float = 0.0,
                 surrogate="triangle", surrogate_width: float = 1.0, detach_reset: bool = False):
        super().__init__(1.0, v_th, reset, v_reset, 0.0, surrogate, surrogate_width, detach_reset)

    def leak(self, ndim_step: int):
        return 0.0
