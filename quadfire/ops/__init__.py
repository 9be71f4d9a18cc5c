"""Multi-step neuron ops behind one dispatch point.

`neuron_multistep` is the only function neuron modules call. It picks a backend by device,
dtype and availability (or by the `backend=` override, for tests and benchmarks):

- ``"reference"``: the plain PyTorch loop (`quadfire.ops.reference`), always available.

Backends never differ in numerics beyond floating-point rounding; each is tested against the
reference on spikes and on every gradient.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from ..neurons.params import LIFParams, QIFParams
from . import reference

BACKENDS = ("reference",)


class NeuronOutput(NamedTuple):
    """spikes [T, N, ...]; state: membrane U after the last step [N, ...];
    trace: charged potential H[t] (the value compared with v_th) [T, N, ...], or None."""

    spikes: torch.Tensor
    state: torch.Tensor
    trace: torch.Tensor | None


def select_backend(x: torch.Tensor, backend: str | None = None) -> str:
    """The backend that will run `x`; an explicit choice is checked, never silently replaced."""
    if backend is None:
        return "reference"
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    return backend


def neuron_multistep(x: torch.Tensor, p: QIFParams | LIFParams, u0: torch.Tensor,
                     trace: bool = False, backend: str | None = None) -> NeuronOutput:
    """Run a QIF or LIF-family neuron over ``x [T, N, ...]`` from membrane state ``u0 [N, ...]``."""
    select_backend(x, backend)
    return NeuronOutput(*reference.multistep(x, p, u0, trace))
