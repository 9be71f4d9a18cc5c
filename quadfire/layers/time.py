"""Fold time into the batch for stateless layers.

A stateless layer (conv, linear, pooling, BN, dropout, flatten) treats every time step the
same, so on a time-major ``[T, N, ...]`` tensor it runs once on ``[T*N, ...]``: one big call
instead of T small ones, and no per-layer re-wrapping of torch modules.
"""
from __future__ import annotations

import torch
from torch import nn

from ..functional import check_time_major
from .spikes import saved_as_uint8
from ..errors import InputError, ParameterError


def fold_time(x: torch.Tensor) -> torch.Tensor:
    """[T, N, ...] -> [T*N, ...] (a view when x is contiguous)."""
    return x.flatten(0, 1)


def unfold_time(y: torch.Tensor, T: int) -> torch.Tensor:
    """[T*N, ...] -> [T, N, ...] (T >= 1: with no time step the batch size is unknown)."""
    if T < 1:
        raise InputError(f"a time-major tensor needs at least one time step, got T={T}")
    return y.unflatten(0, (T, y.shape[0] // T))


class TimeFold(nn.Module):
    """Run a stateless `module` on ``x [T, N, ...]`` as ``module(x [T*N, ...])``.

    The wrapped module stays reachable as ``.module`` (an ordinary nn.Conv2d, nn.Linear, ...),
    so exporters and monitors see the torch layer itself. With ``spike_input=True`` (for
    layers fed by spiking neurons) the input saved for backward is stored as uint8 when that
    is exact (`quadfire.layers.spikes`); results and gradients are unchanged. ``encoding=True``
    marks the layer that sees the network's analogue input (its operations count as MACs, not
    synaptic operations, in `quadfire.analysis.monitor`).
    """

    def __init__(self, module: nn.Module, spike_input: bool = False, encoding: bool = False):
        super().__init__()
        if spike_input and encoding:
            raise ParameterError("an encoding layer sees the analogue input, not spikes: "
                                 "spike_input and encoding cannot both be True")
        self.module, self.spike_input, self.encoding = module, spike_input, encoding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_time_major(x, 3, f"TimeFold({type(self.module).__name__})")
        if x.shape[0] == 0:
            raise InputError(f"TimeFold({type(self.module).__name__}) input [T, N, ...] needs "
                             f"T >= 1, got shape {tuple(x.shape)}")
        folded = fold_time(x)
        if not self.spike_input:
            return unfold_time(self.module(folded), x.shape[0])
        with saved_as_uint8(folded):
            return unfold_time(self.module(folded), x.shape[0])

    def extra_repr(self) -> str:
        return "spike_input=True" if self.spike_input else ("encoding=True" if self.encoding else "")
