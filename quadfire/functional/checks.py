"""Input checks at the public boundary, worded once for every caller.

Neuron modules, the functional op `quadfire.ops.neuron_multistep` and the time-folding layers
check their tensor arguments here, once per call, before any work; everything below them
trusts its inputs.
"""
from __future__ import annotations

import torch

from ..errors import InputError, InputTypeError


def check_time_major(x, min_dims: int = 2, what: str = "neuron") -> None:
    """Raise unless `x` is a floating-point tensor ``[T, N, ...]`` with >= `min_dims` dims."""
    if not isinstance(x, torch.Tensor):
        raise InputTypeError(f"{what} input must be a torch.Tensor [T, N, ...], "
                             f"got {type(x).__name__}")
    if not x.is_floating_point():
        raise InputTypeError(f"{what} input must be a floating-point tensor (float16/bfloat16/"
                             f"float32/float64), got {x.dtype}")
    if x.dim() < min_dims:
        raise InputError(f"{what} input must be time-major [T, N, ...] with at least "
                         f"{min_dims} dims, got shape {tuple(x.shape)}")


def check_channels(x: torch.Tensor, channels: int | None) -> None:
    """Per-channel neurons need input ``[T, N, channels, ...]``."""
    if channels is not None and (x.dim() < 3 or x.shape[2] != channels):
        raise InputError(f"this neuron has per-channel parameters for {channels} channels and "
                         f"expects input [T, N, {channels}, ...], got shape {tuple(x.shape)}")


def check_state(state, x: torch.Tensor) -> None:
    """A membrane state must be a floating-point tensor shaped like one step of `x`, on its
    device."""
    if not isinstance(state, torch.Tensor):
        raise InputTypeError(f"neuron state must be a torch.Tensor of shape "
                             f"{tuple(x.shape[1:])} (one time step of the input), "
                             f"got {type(state).__name__}")
    if not state.is_floating_point():
        raise InputTypeError(f"neuron state must be a floating-point tensor, got {state.dtype}")
    if tuple(state.shape) != tuple(x.shape[1:]):
        raise InputError(f"state must have the shape of one time step {tuple(x.shape[1:])}, "
                         f"got {tuple(state.shape)}")
    if state.device != x.device:
        raise InputError(f"state is on {state.device} but the input is on {x.device}")
