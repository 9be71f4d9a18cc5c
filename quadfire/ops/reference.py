"""The reference multi-step path: a plain loop of the step functions over ``x.unbind(0)``.

This is the ground truth every fused kernel is tested against. Half-precision inputs are
computed with float32 state (as the kernels do) and the spikes are returned in the input dtype.
"""
from __future__ import annotations

import torch

from ..functional import LIFParams, QIFParams, fire_reset, lif_charge, qif_charge, rest_potential


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; every other float type runs with float32 state."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def rest_state(p: QIFParams | LIFParams, shape: torch.Size, dtype: torch.dtype,
               device: torch.device) -> torch.Tensor:
    """The resting membrane [N, ...] of params `p` for one step of that shape, in the compute
    dtype of `dtype`. No gradient flows into it (a run starts from rest, not from u1)."""
    dt = compute_dtype(dtype)
    rest = rest_potential(p)
    if isinstance(rest, torch.Tensor):
        return torch.zeros(shape, dtype=dt, device=device) + rest.detach()
    return torch.full(shape, rest, dtype=dt, device=device)


def floor_state(u: torch.Tensor, p: QIFParams | LIFParams) -> torch.Tensor:
    """The starting state floored at v_min like every later state (`fire_reset`), so that no
    given state below the floor can make inhibition cause a spike."""
    v_min = getattr(p, "v_min", None)
    return u if v_min is None else torch.clamp(u, min=v_min)


def multistep(x: torch.Tensor, p: QIFParams | LIFParams, u0: torch.Tensor | None,
              trace: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Run ``x [T, N, ...]`` from state ``u0 [N, ...]`` (None: rest).

    Returns (spikes [T, N, ...] in x.dtype, final state [N, ...], H trace [T, N, ...] or None).
    """
    charge = qif_charge if isinstance(p, QIFParams) else lif_charge
    cdt = compute_dtype(x.dtype)
    u = rest_state(p, x.shape[1:], x.dtype, x.device) if u0 is None else u0.to(cdt)
    u = floor_state(u, p)
    xc = x.to(cdt)
    if x.shape[0] == 0:  # T = 0: nothing to step, but the outputs stay part of the graph
        empty = xc * 0
        return empty.to(x.dtype), u, (empty if trace else None)
    spikes, hs = [], []
    for xt in xc.unbind(0):
        h = charge(xt, u, p)
        s, u = fire_reset(h, p)
        spikes.append(s)
        if trace:
            hs.append(h)
    out = torch.stack(spikes).to(x.dtype)
    return out, u, (torch.stack(hs) if trace else None)
