"""`convnet`: a small spiking CNN for 8x8 one-channel images (scikit-learn's digits demo)."""
from __future__ import annotations

from torch import nn

from ..layers import ConvBN, Encoder, TdBN, TimeFold, conv_bn
from ..neurons import NeuronSpec
from .common import SpikingNet
from .registry import register_model
from ..errors import ConfigError


@register_model
def convnet(neuron="qif", T: int = 4, num_classes: int = 10, neuron_kwargs: dict | None = None,
            in_channels: int = 1, image_size: int = 8, width: int = 32,
            hidden: int = 128) -> SpikingNet:
    """conv3x3 in->w, tdBN, spike; conv3x3 w->2w, tdBN, spike; avg-pool 2; flatten;
    linear->hidden, tdBN, spike; linear->classes. Input ``image_size`` x ``image_size`` (even)."""
    if image_size < 2 or image_size % 2:
        raise ConfigError(f"convnet needs an even image_size >= 2, got {image_size!r}")
    spec = NeuronSpec(neuron, neuron_kwargs)
    w2 = 2 * width
    body = nn.Sequential(
        conv_bn(in_channels, width, v_th=spec.v_th, encoding=True), spec.make(width),
        conv_bn(width, w2, v_th=spec.v_th), spec.make(w2),
        TimeFold(nn.AvgPool2d(2)),
        TimeFold(nn.Flatten()),
        ConvBN(nn.Linear(w2 * (image_size // 2) ** 2, hidden, bias=False),
               TdBN(hidden, v_th=spec.v_th)),
        spec.make(hidden),
        TimeFold(nn.Linear(hidden, num_classes), spike_input=True),
    )
    return SpikingNet(Encoder(T, in_channels, image_size), body, num_classes)
