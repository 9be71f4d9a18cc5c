"""What every model shares: the neuron spec resolved to a per-layer factory, and the
`SpikingNet` container (an encoder followed by a sequence of blocks)."""
from __future__ import annotations

import copy
from typing import Callable

import torch
from torch import nn

from ..layers import Encoder
from ..neurons import neuron_factory
from ..neurons.base import MultiStepNeuron


class NeuronSpec:
    """A model's neuron choice: ``make(channels)`` builds one spiking layer, ``v_th`` is the
    threshold tdBN scales to (the ``v_th`` neuron kwarg, else the instance's, else 1.0).
    For a factory, ``neuron_kwargs`` may only give ``v_th``, since the factory builds the
    neuron itself."""

    def __init__(self, neuron="qif", neuron_kwargs: dict | None = None):
        kwargs = dict(neuron_kwargs or {})
        if isinstance(neuron, MultiStepNeuron):
            if kwargs:
                raise ValueError(f"neuron_kwargs {sorted(kwargs)} cannot be applied to a neuron "
                                 f"instance; configure the instance instead")
            template = neuron
            self._make: Callable[[int], nn.Module] = lambda channels: copy.deepcopy(template)
            self.v_th = float(getattr(neuron, "v_th", 1.0))
        elif isinstance(neuron, nn.Module):
            raise TypeError(f"neuron must be a name, a factory or a MultiStepNeuron, "
                            f"got the module {type(neuron).__name__}")
        elif callable(neuron) and set(kwargs) - {"v_th"}:
            # A factory is called as factory(channels); only v_th (for tdBN) can apply.
            raise ValueError(f"neuron_kwargs for a neuron factory may only hold 'v_th' (the "
                             f"tdBN scale); got {sorted(kwargs)}")
        else:
            self._make = neuron_factory(neuron, **kwargs)
            self.v_th = float(kwargs.get("v_th", 1.0))

    def make(self, channels: int) -> nn.Module:
        return self._make(channels)


class SpikingNet(nn.Module):
    """``encoder`` then ``body``: input ``[N, C, H, W]`` or ``[T, N, C, H, W]``, output
    logits ``[T, N, num_classes]``. ``body`` is an nn.Sequential of blocks; every block maps
    a time-major tensor to a time-major tensor and keeps no state between calls."""

    def __init__(self, encoder: Encoder, body: nn.Sequential, num_classes: int):
        super().__init__()
        self.encoder, self.body, self.num_classes = encoder, body, num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.encoder(x))
