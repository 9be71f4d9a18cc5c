"""What a multi-step neuron run returns."""
from __future__ import annotations

from typing import NamedTuple

import torch


class NeuronOutput(NamedTuple):
    """spikes [T, N, ...]; state: membrane U after the last step [N, ...];
    trace: charged potential H[t] (the value compared with v_th) [T, N, ...], or None."""

    spikes: torch.Tensor
    state: torch.Tensor
    trace: torch.Tensor | None
