"""The neuron equations, once, as pure step functions on one time step ``[N, ...]``.

QIF (docs/neuron.md), per element:

    H[t] = U[t-1] + a (U[t-1] - u1)(U[t-1] - u2) + X[t]         charge
    S[t] = Heaviside(H[t] - v_th)          (fires at H >= v_th)  fire
    U[t] = H[t] (1 - S[t]) + v_reset S[t]                        hard reset
      or   H[t] - v_th S[t]                                      soft reset
    U[t] = max(U[t], v_min)                                      floor (when v_min is set)
    U[0] = u1

LIF / PLIF / IF: the same fire, reset and floor-free update with the linear charge

    H[t] = U[t-1] - k (U[t-1] - v_rest) + X[t],   k = 1/tau   (k = 0: IF),   U[0] = v_rest

which for k = 1/2, v_rest = 0 is the TET/tdBN code's ``mem * 0.5 + x``.
The backward pass of S uses the params' surrogate window (`quadfire.functional.surrogate`);
the gradient flows through the reset too (no detach), so dU/dH = (1 - S) + (v_reset - H) g.
"""
from __future__ import annotations

import torch

from .params import LIFParams, QIFParams
from .surrogate import spike


def qif_charge(x: torch.Tensor, u: torch.Tensor, p: QIFParams) -> torch.Tensor:
    """H = U + a (U - u1)(U - u2) + X."""
    return u + p.a * (u - p.u1) * (u - p.u2) + x


def qif_slope(u, p: QIFParams):
    """dH/dU of the QIF charge: f'(U) = 1 + a ((U - u1) + (U - u2))."""
    return 1 + p.a * ((u - p.u1) + (u - p.u2))


def lif_charge(x: torch.Tensor, u: torch.Tensor, p: LIFParams) -> torch.Tensor:
    """H = U - k (U - v_rest) + X."""
    return u - p.k * (u - p.v_rest) + x


def fire_reset(h: torch.Tensor, p: QIFParams | LIFParams) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, U) from the charged potential H: threshold, reset and, for QIF, the v_min floor.

    Non-finite numbers (docs/neuron.md, "Non-finite inputs"): H is first clamped to the finite
    range of its dtype, ``Hc = clamp(H, -max, max)``, and the spike (``Hc >= v_th``), the reset
    and the floor use Hc. So +inf fires and resets (hard: to v_reset; soft: to max - v_th);
    -inf becomes -max, then the floor (QIF) or, without one (LIF, ``v_min=None``), a finite
    potential that the map moves on from. For finite H, Hc is H: nothing changes, bit for bit.
    The gradient passes where H is finite and is 0 at +-inf, as for a clamp. NaN stays NaN (in
    U, and for ever after) and never spikes; its gradient through the clamp is 0. Nothing is
    repaired silently: the trace of a run reports H as charged, before the clamp.
    """
    big = torch.finfo(h.dtype).max
    # where() rather than a bare clamp: torch.clamp's gradient is 0 *at* a float bound, and
    # H = +-max is finite; the clamp branch only decides +-inf and NaN
    hc = torch.where(h.abs() <= big, h, h.clamp(-big, big))
    s = spike(hc - p.v_th, p.window)
    u = hc - p.v_th * s if p.soft else hc * (1 - s) + p.v_reset * s
    v_min = getattr(p, "v_min", None)
    if v_min is not None:
        # The floor keeps U on the increasing branch of the map: below u1 - 1/a the discrete
        # map throws the potential above u2, so strong inhibition would end in a spike.
        u = torch.clamp(u, min=v_min)
    return s, u


def qif_step(x: torch.Tensor, u: torch.Tensor, p: QIFParams) -> tuple[torch.Tensor, torch.Tensor]:
    """One QIF update: (spike, next membrane potential)."""
    return fire_reset(qif_charge(x, u, p), p)


def lif_step(x: torch.Tensor, u: torch.Tensor, p: LIFParams) -> tuple[torch.Tensor, torch.Tensor]:
    """One LIF/PLIF/IF update: (spike, next membrane potential)."""
    return fire_reset(lif_charge(x, u, p), p)


def rest_potential(p: QIFParams | LIFParams):
    """U[0]: u1 for QIF, v_rest for LIF."""
    return p.u1 if isinstance(p, QIFParams) else p.v_rest
