"""What every model shares: the `SpikingNet` container (an encoder followed by a sequence of
blocks). A model's neuron choice is a `quadfire.neurons.NeuronSpec`."""
from __future__ import annotations

import torch
from torch import nn

from ..layers import Encoder


class SpikingNet(nn.Module):
    """``encoder`` then ``body``: input ``[N, C, H, W]`` or ``[T, N, C, H, W]``, output
    logits ``[T, N, num_classes]``. ``body`` is an nn.Sequential of blocks; every block maps
    a time-major tensor to a time-major tensor and keeps no state between calls."""

    def __init__(self, encoder: Encoder, body: nn.Sequential, num_classes: int):
        super().__init__()
        self.encoder, self.body, self.num_classes = encoder, body, num_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.encoder(x))
