"""ImageNet ResNets (224 x 224 input): spiking ResNet-18/34 and SEW ResNet-18/34."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from ..layers import Encoder, TimeFold, conv_bn
from .blocks import BLOCKS, make_stage
from ..neurons import NeuronSpec
from .common import SpikingNet
from .registry import options_of, register_model
from ..errors import ConfigError

DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
WIDTHS = (64, 128, 256, 512)


def imagenet_resnet(block: str, depth: int, neuron="qif", T: int = 4, num_classes: int = 1000,
                    neuron_kwargs: dict | None = None, in_channels: int = 3) -> SpikingNet:
    """conv7x7/2 (64) + tdBN + spike + maxpool3x3/2; four stages of `block` ("spiking" or
    "sew") BasicBlocks at widths 64..512 (strides 1, 2, 2, 2); global average pool; FC.
    Accepts any input >= 32x32 (adaptive pooling); 224x224 is the ImageNet setting."""
    if block not in BLOCKS or depth not in DEPTHS:
        raise ConfigError(f"block must be one of {sorted(BLOCKS)} and depth one of {sorted(DEPTHS)}, "
                          f"got block={block!r}, depth={depth!r}")
    spec = NeuronSpec(neuron, neuron_kwargs)
    cls, stages, cin = BLOCKS[block], OrderedDict(), WIDTHS[0]
    for i, (width, n) in enumerate(zip(WIDTHS, DEPTHS[depth])):
        stages[f"layer{i + 1}"] = make_stage(cls, cin, width, n, 1 if i == 0 else 2, spec)
        cin = width
    body = nn.Sequential(OrderedDict(
        stem=conv_bn(in_channels, WIDTHS[0], 7, 2, 3, v_th=spec.v_th, encoding=True),
        stem_sn=spec.make(WIDTHS[0]),
        maxpool=TimeFold(nn.MaxPool2d(3, 2, 1)),
        **stages,
        pool=TimeFold(nn.AdaptiveAvgPool2d(1)), flatten=TimeFold(nn.Flatten()),
        fc=TimeFold(nn.Linear(cin, num_classes)),
    ))
    return SpikingNet(Encoder(T, in_channels), body, num_classes)


@register_model
@options_of(imagenet_resnet, "block", "depth")
def spiking_resnet18(**kw) -> SpikingNet:
    """Spiking ResNet-18 (neuron after the residual sum). See `imagenet_resnet`."""
    return imagenet_resnet("spiking", 18, **kw)


@register_model
@options_of(imagenet_resnet, "block", "depth")
def spiking_resnet34(**kw) -> SpikingNet:
    """Spiking ResNet-34 (neuron after the residual sum). See `imagenet_resnet`."""
    return imagenet_resnet("spiking", 34, **kw)


@register_model
@options_of(imagenet_resnet, "block", "depth")
def sew_resnet18(**kw) -> SpikingNet:
    """SEW ResNet-18 (ADD connection). See `imagenet_resnet`."""
    return imagenet_resnet("sew", 18, **kw)


@register_model
@options_of(imagenet_resnet, "block", "depth")
def sew_resnet34(**kw) -> SpikingNet:
    """SEW ResNet-34 (ADD connection). See `imagenet_resnet`."""
    return imagenet_resnet("sew", 34, **kw)
