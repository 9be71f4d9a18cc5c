"""The reference multi-step path: a plain loop of the model's step over ``x.unbind(0)``.

This is the ground truth every fused kernel is tested against, and the path that runs any
neuron model without a kernel (`NeuronParams.model` None). Half-precision inputs are computed
with float32 state (as the kernels do) and the spikes are returned in the input dtype.
"""
from __future__ import annotations

import torch

from ..functional import NeuronParams


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; every other float type runs with float32 state."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def rest_state(p: NeuronParams, shape: torch.Size, dtype: torch.dtype, device: torch.device):
    """The state [N, ...] of params `p` at rest (floored) for one step of that shape, in the
    compute dtype of `dtype`. No gradient flows into it (a run starts from rest, not from u1)."""
    return p.initial_state(shape, compute_dtype(dtype), device)


def _cast(state, dtype: torch.dtype):
    if isinstance(state, tuple):
        return tuple(s.to(dtype) for s in state)
    return state.to(dtype)


def multistep(x: torch.Tensor, p: NeuronParams, u0, trace: bool = False):
    """Run ``x [T, N, ...]`` from state ``u0 [N, ...]`` (None: rest).

    Returns (spikes [T, N, ...] in x.dtype, final state [N, ...], H trace [T, N, ...] or None).
    """
    cdt = compute_dtype(x.dtype)
    if u0 is None:
        u = rest_state(p, x.shape[1:], x.dtype, x.device)
    else:
        u = p.start(_cast(u0, cdt))
    xc = x.to(cdt)
    if x.shape[0] == 0:  # T = 0: nothing to step, but the outputs stay part of the graph
        empty = xc * 0
        return empty.to(x.dtype), u, (empty if trace else None)
    spikes, hs = [], []
    for xt in xc.unbind(0):
        s, u, h = p.step(xt, u)
        spikes.append(s)
        if trace:
            hs.append(h)
    out = torch.stack(spikes).to(x.dtype)
    return out, u, (torch.stack(hs) if trace else None)
