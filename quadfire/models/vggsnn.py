"""`vggsnn`: the VGGSNN of TET (Deng et al. 2022) for CIFAR10-DVS frames (2 x 48 x 48)."""
from __future__ import annotations

from torch import nn

from ..layers import Encoder, TimeFold, conv_bn
from ..neurons import NeuronSpec
from .common import SpikingNet
from .registry import register_model
from ..errors import ConfigError

# Channel plan; "P" is a 2x2 average pool.
PLAN = (64, 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P")


@register_model
def vggsnn(neuron="qif", T: int = 10, num_classes: int = 10, neuron_kwargs: dict | None = None,
           in_channels: int = 2, image_size: int = 48) -> SpikingNet:
    """conv3x3 + tdBN + spike per number in PLAN, 2x2 average pools at "P", then one linear
    classifier on the 512 x (image_size/16)^2 features. image_size must be a multiple of 16."""
    if image_size < 16 or image_size % 16:
        raise ConfigError(f"vggsnn needs image_size a positive multiple of 16 (4 pools), "
                          f"got {image_size!r}")
    spec = NeuronSpec(neuron, neuron_kwargs)
    layers, c, after_neuron = [], in_channels, False
    for item in PLAN:
        if item == "P":
            layers.append(TimeFold(nn.AvgPool2d(2)))
        else:
            # A conv right after a neuron sees spikes; after the input or a pool it sees
            # fractional values, which stay float.
            layers += [conv_bn(c, item, v_th=spec.v_th, spike_input=after_neuron,
                               encoding=not layers), spec.make(item)]
            c = item
        after_neuron = item != "P"
    side = image_size // 16
    layers += [TimeFold(nn.Flatten()), TimeFold(nn.Linear(c * side * side, num_classes))]
    return SpikingNet(Encoder(T, in_channels, image_size), nn.Sequential(*layers),
                      num_classes)
