"""`resnet19`: the CIFAR ResNet-19 of tdBN (Zheng et al. 2021) and TET (Deng et al. 2022)."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..layers import Encoder, TimeFold, conv_bn
from .blocks import SpikingBlock, make_stage
from ..neurons import NeuronSpec
from .common import SpikingNet
from .registry import register_model


@register_model
def resnet19(neuron="qif", T: int = 4, num_classes: int = 10, neuron_kwargs: dict | None = None,
             in_channels: int = 3, stem_width: int = 128) -> SpikingNet:
    """conv3x3 stem (128) + tdBN + spike; spiking BasicBlock stages [3, 3, 2] at widths
    128, 256, 512 (strides 1, 2, 2); global average pool; FC 512->256, spike, FC 256->classes.
    About 12.6-12.7 M parameters for 10 classes. Any input size >= 4x4 (adaptive pooling)."""
    spec = NeuronSpec(neuron, neuron_kwargs)
    body = nn.Sequential(OrderedDict(
        stem=conv_bn(in_channels, stem_width, v_th=spec.v_th, encoding=True),
        stem_sn=spec.make(stem_width),
        layer1=make_stage(SpikingBlock, stem_width, 128, 3, 1, spec),
        layer2=make_stage(SpikingBlock, 128, 256, 3, 2, spec),
        layer3=make_stage(SpikingBlock, 256, 512, 2, 2, spec),
        pool=TimeFold(nn.AdaptiveAvgPool2d(1)), flatten=TimeFold(nn.Flatten()),
        fc1=TimeFold(nn.Linear(512, 256)), fc1_sn=spec.make(256),
        fc2=TimeFold(nn.Linear(256, num_classes), spike_input=True),
    ))
    return SpikingNet(Encoder(T, in_channels), body, num_classes)
