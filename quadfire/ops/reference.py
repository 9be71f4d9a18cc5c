"""The reference multi-step path: a plain loop of the step functions over ``x.unbind(0)``.

This is the ground truth every fused kernel is tested against. Half-precision inputs are
computed with float32 state (as the kernels do) and the spikes are returned in the input dtype.
"""
from __future__ import annotations

import torch

from ..functional import LIFParams, QIFParams, fire_reset, lif_charge, qif_charge


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; every other float type runs with float32 state."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def multistep(x: torch.Tensor, p: QIFParams | LIFParams, u0: torch.Tensor,
              trace: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Run ``x [T, N, ...]`` from state ``u0 [N, ...]``.

    Returns (spikes [T, N, ...] in x.dtype, final state [N, ...], H trace [T, N, ...] or None).
    """
    charge = qif_charge if isinstance(p, QIFParams) else lif_charge
    cdt = compute_dtype(x.dtype)
    u = u0.to(cdt)
    spikes, hs = [], []
    for xt in x.to(cdt).unbind(0):
        h = charge(xt, u, p)
        s, u = fire_reset(h, p)
        spikes.append(s)
        if trace:
            hs.append(h)
    if not spikes:  # T = 0: nothing to stack
        empty = x.new_empty(x.shape)
        return empty, u, (empty.to(cdt) if trace else None)
    out = torch.stack(spikes).to(x.dtype)
    return out, u, (torch.stack(hs) if trace else None)
