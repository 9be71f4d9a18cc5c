"""Fire and reset, shared by every neuron model, and the step functions over one time step.

Each model's charge H[t] = charge(X[t], U[t-1]) is written once, in its parameter class
(`quadfire.functional.params`: QIF in three discretizations, LIF/PLIF/IF). Then, per element::

    S[t] = Heaviside(H[t] - v_th)          (fires at H >= v_th)  fire
    U[t] = H[t] (1 - S[t]) + v_reset S[t]                        hard reset
      or   H[t] - v_th S[t]                                      soft reset
    U[t] = max(U[t], v_min)                                      floor (when the model has one)

The backward pass of S uses the params' surrogate window (`quadfire.functional.surrogate`);
by default the gradient flows through the reset too, so dU/dH = (1 - S) + (v_reset - H) g
(soft: 1 - v_th g). With ``detach_reset`` the reset uses S's value but not its gradient,
dU/dH = 1 - S (soft: 1): the through-time factor no longer carries the surrogate across a
spike, which bounds QIF's gradient growth with T (docs/neuron.md, "Gradients through time").
"""
from __future__ import annotations

import torch

from .surrogate import spike


def fire_reset(h: torch.Tensor, p) -> tuple[torch.Tensor, torch.Tensor]:
    """(S, U) from the charged potential H: threshold, reset and the model's floor (`p.floor()`).

    Non-finite numbers (docs/neuron.md, "Non-finite inputs"): H is first clamped to the finite
    range of its dtype, ``Hc = clamp(H, -max, max)``, and the spike (``Hc >= v_th``), the reset
    and the floor use Hc. So +inf fires and resets (hard: to v_reset; soft: to max - v_th);
    -inf becomes -max, then the floor (Euler QIF) or, without one, a finite potential that the
    map moves on from. For finite H, Hc is H: nothing changes, bit for bit. The gradient passes
    where H is finite and is 0 at +-inf, as for a clamp. NaN stays NaN (in U, and for ever
    after) and never spikes; its gradient through the clamp is 0. Nothing is repaired
    silently: the trace of a run reports H as charged, before the clamp.
    """
    big = torch.finfo(h.dtype).max
    # where() rather than a bare clamp: torch.clamp's gradient is 0 *at* a float bound, and
    # H = +-max is finite; the clamp branch only decides +-inf and NaN
    hc = torch.where(h.abs() <= big, h, h.clamp(-big, big))
    s = spike(hc - p.v_th, p.window)
    sr = s.detach() if p.detach_reset else s  # the spike as the reset sees it
    u = hc - p.v_th * sr if p.soft else hc * (1 - sr) + p.v_reset * sr
    v_min = p.floor()
    if v_min is not None:
        # The floor keeps U on the increasing branch of the Euler QIF map: below u1 - 1/a it
        # throws the potential above u2, so strong inhibition would end in a spike.
        u = torch.clamp(u, min=v_min)
    return s, u


def neuron_step(x: torch.Tensor, u, p) -> tuple[torch.Tensor, torch.Tensor]:
    """One update of any model: (spike, next state)."""
    s, u, _ = p.step(x, u)
    return s, u


# The names of the paper's step functions; every model's step is the same call.
qif_step = lif_step = neuron_step


def qif_charge(x, u, p):
    """H = charge(X, U) of `p` (any model; named for the QIF analysis code that calls it)."""
    return p.charge(x, u)


def lif_charge(x, u, p):
    return p.charge(x, u)


def qif_slope(u, p):
    """dH/dU of `p`'s charge at U."""
    return p.slope(u)


def rest_potential(p):
    """U[0] of `p`."""
    return p.rest()
