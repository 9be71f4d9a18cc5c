"""`seq_mlp`: a feedforward spiking MLP for sequences of feature vectors ``[T, N, features]``
(e.g. SHD's 700 cochlea channels per time bin). No recurrent weights: what the network
remembers of earlier steps lives in the membrane potentials alone."""
from __future__ import annotations

from torch import nn

from ..layers import ConvBN, Encoder, TdBN, TimeFold
from ..neurons import NeuronSpec
from .common import SpikingNet
from .registry import register_model


@register_model
def seq_mlp(neuron="qif", T: int = 28, num_classes: int = 10, neuron_kwargs: dict | None = None,
            in_channels: int = 28, hidden: int = 256, layers: int = 2) -> SpikingNet:
    """`layers` times (linear ->hidden, tdBN, spike), then linear hidden->classes. The first
    linear is the encoding layer (it sees the input, counted in MACs).

    Input: sequences ``[T', N, in_channels]`` (T' from the input) or vectors
    ``[N, in_channels]`` (repeated T times). Output: logits ``[T', N, num_classes]``.
    """
    if not isinstance(layers, int) or isinstance(layers, bool) or layers < 1:
        raise ValueError(f"seq_mlp needs layers >= 1 hidden layers, got {layers!r}")
    spec = NeuronSpec(neuron, neuron_kwargs)
    body, width = [], in_channels
    for i in range(layers):
        body += [ConvBN(nn.Linear(width, hidden, bias=False), TdBN(hidden, v_th=spec.v_th),
                        encoding=i == 0),
                 spec.make(hidden)]
        width = hidden
    body.append(TimeFold(nn.Linear(hidden, num_classes), spike_input=True))
    return SpikingNet(Encoder(T, in_channels, spatial_dims=0), nn.Sequential(*body), num_classes)
