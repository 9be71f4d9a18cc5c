"""Thin multi-step module shared by every neuron: input checks, state, dispatch.

A neuron module runs a whole ``[T, N, ...]`` sequence per call, from rest unless the caller
passes a state: there is no hidden state to reset between batches.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from .. import ops
from ..errors import ParameterError
from ..functional import (NeuronOutput, NeuronParams, check_channels, check_state,
                          check_time_major, neuron_step)


def per_channel(v: torch.Tensor, ndim_step: int) -> torch.Tensor:
    """Shape a [C] parameter to broadcast against one step [N, C, ...] of ndim_step dims."""
    return v.view(v.shape + (1,) * (ndim_step - 2)) if v.dim() == 1 else v


class MultiStepNeuron(nn.Module):
    """Base class. Subclasses implement `params(ndim_step)`, returning their model's frozen
    `NeuronParams` (docs/neuron.md, "Your own neuron"); everything else is shared.

    ``forward(x)`` returns spikes only (so neurons fit in nn.Sequential); ``run`` also returns
    the final state and, on request, the charged-potential trace. Observers
    (`register_observer`) see the full `NeuronOutput` of every forward call, trace included,
    which is how monitors record a network's activity from the very run that gives its output.
    """

    channels: int | None = None
    backend: str | None = None  # None: let the dispatcher choose

    def __init__(self):
        super().__init__()
        self._observers: OrderedDict[int, Callable] = OrderedDict()

    def register_observer(self, fn: Callable) -> RemovableHandle:
        """Call ``fn(module, x, out)`` after each `forward`, with ``out`` the `NeuronOutput`
        of the call (run with ``trace=True`` while any observer is registered). Returns a
        handle whose ``remove()`` unregisters it; observers nest (each sees every call)."""
        handle = RemovableHandle(self._observers)
        self._observers[handle.id] = fn
        return handle

    def params(self, ndim_step: int = 2) -> NeuronParams:
        """The model's parameters for steps of `ndim_step` dims ([N, ...])."""
        raise NotImplementedError(f"{type(self).__name__} must implement params(ndim_step) and "
                                  f"return its NeuronParams (docs/neuron.md, 'Your own neuron')")

    def rest_state(self, x_step: torch.Tensor):
        """The resting state [N, ...] for one step of input (float32 for half inputs)."""
        return ops.rest_state(self.params(x_step.dim()), x_step.shape, x_step.dtype,
                              x_step.device)

    def run(self, x: torch.Tensor, state=None,
            trace: bool = False) -> NeuronOutput:
        """Run ``x [T, N, ...]`` from ``state [N, ...]`` (rest when None)."""
        check_time_major(x)
        check_channels(x, self.channels)
        if state is not None:
            for u in (state if isinstance(state, tuple) else (state,)):
                check_state(u, x)
        step_shape = x.shape[1:]
        # Built once per call: for learnable neurons this is several small kernels and, in
        # the window check, a device sync.
        p = self.params(len(step_shape))
        # state None: the kernels start from rest themselves, with no [N, ...] tensor to fill
        return ops.dispatch(x, p, state, trace=trace, backend=self.backend)

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        if not self._observers:
            return self.run(x, state).spikes
        out = self.run(x, state, trace=True)
        for fn in list(self._observers.values()):
            fn(self, x, out)
        return out.spikes

    def step(self, x: torch.Tensor, u) -> tuple[torch.Tensor, torch.Tensor]:
        """One time step ``x [N, ...]``: (spike, next state), by the model's step function."""
        return neuron_step(x, u, self.params(x.dim()))


def reset_kind(reset: str) -> bool:
    """True for soft reset; validates the name."""
    if reset not in ("hard", "soft"):
        raise ParameterError(f"reset must be 'hard' or 'soft', got {reset!r}")
    return reset == "soft"


def check_flag(name: str, value) -> bool:
    """A boolean option, or a ParameterError naming it (a YAML 'no' is False, "false" is not)."""
    if not isinstance(value, bool):
        raise ParameterError(f"{name} must be true or false, got {value!r}")
    return value


def check_learnable(learnable, channels: int | None) -> str | None:
    """Normalise the `learnable` option (False / "scalar" / "channel")."""
    if learnable in (False, None):
        return None
    if learnable is True:
        learnable = "scalar"
    if learnable not in ("scalar", "channel"):
        raise ParameterError(f"learnable must be False, 'scalar' or 'channel', got {learnable!r}")
    if learnable == "channel" and not (isinstance(channels, int) and channels > 0):
        raise ParameterError(f"learnable='channel' needs channels=<positive int>, got channels={channels!r}")
    return learnable
